"""The duplicate warning's recall and precision on 2,000 synthetic children (issue 16).

A SQLCipher node holds 2,000 children imported in bulk (so the import path's tokens are
what is searched). 200 duplicates of held children are then checked, each changed as
registrations go wrong — a typo, the names written in the other script, given and family
names swapped, the birth date's day and month swapped or a day or two off — together
with 200 genuinely new children. Recall: duplicates whose original is flagged. Precision:
of all flagged candidates (for duplicates and new children alike), those that are the
true original. Both are printed (``pytest -s``).
"""

from __future__ import annotations

import datetime as dt
import random  # noqa: TID251 -- reproducible synthetic data, nothing security-relevant
from pathlib import Path

from childreg.models import ChildIn
from node.crypto.keys import Keyring
from node.records.registry import Registry
from node.records.search import swapped
from tests.contract.stores import open_sqlcipher
from tools.dev.people import import_record, other_script, random_child, typo

HELD = 2_000
DUPLICATES = 200
KINDS = ("typo", "other script", "names swapped", "day and month swapped", "days off")


def _duplicate(original: ChildIn, kind: str, child_id: str, rng: random.Random) -> ChildIn:
    """A new registration of ``original`` gone wrong in the way ``kind`` says."""
    given, family, born = original.given_name, original.family_name, original.date_of_birth
    if kind == "typo":
        if rng.random() < 0.5:
            given = typo(given, rng)
        else:
            family = typo(family, rng)
    elif kind == "other script":
        given, family = other_script(given), other_script(family)
    elif kind == "names swapped":
        given, family = family, given
    elif kind == "day and month swapped":
        born = swapped(born) or born + dt.timedelta(days=1)
    else:
        born += dt.timedelta(days=rng.choice((-2, -1, 1, 2)))
    return original.model_copy(
        update={
            "child_id": child_id,
            "national_id": None,
            "given_name": given,
            "family_name": family,
            "date_of_birth": born,
        }
    )


def test_duplicate_warning_recall_and_precision(tmp_path: Path, keyring: Keyring) -> None:
    """likely_duplicates finds >= 95 % of injected duplicates with >= 90 % precision."""
    rng = random.Random(16)
    store = open_sqlcipher(tmp_path)
    try:
        registry = Registry(store, keyring)
        held = [random_child(rng, f"H{i:05d}", national_id=f"AZ{i:08d}") for i in range(HELD)]
        registry.import_records(import_record(c, i + 2) for i, c in enumerate(held))
        originals = rng.sample(held, DUPLICATES)
        dups = [
            (o, _duplicate(o, KINDS[i % len(KINDS)], f"D{i:05d}", rng))
            for i, o in enumerate(originals)
        ]
        new = [random_child(rng, f"N{i:05d}", national_id=None) for i in range(DUPLICATES)]
        found = false = 0
        missed: dict[str, int] = {}
        for original, dup in dups:
            flagged = {c.hit.child_id for c in registry.likely_duplicates(dup)}
            if original.child_id in flagged:
                found += 1
            else:
                kind = KINDS[dups.index((original, dup)) % len(KINDS)]
                missed[kind] = missed.get(kind, 0) + 1
            false += len(flagged - {original.child_id})
        for child in new:
            false += len(registry.likely_duplicates(child))
    finally:
        store.close()
    recall = found / DUPLICATES
    precision = found / (found + false) if found + false else 1.0
    print(
        f"\nduplicate warning on {HELD} children: recall {recall:.3f} "
        f"({found}/{DUPLICATES}; missed by kind {missed}), precision {precision:.3f} "
        f"({false} false candidates over {DUPLICATES} duplicates and {DUPLICATES} new)"
    )
    assert recall >= 0.95
    assert precision >= 0.9
