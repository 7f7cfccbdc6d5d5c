"""`childreg bench`, KEK rotation: rewrapping every child key of a node under a new KEK.

(j) The time of ``childreg node rotate-kek``'s work (node/kek_rotation.py) on a real
    SQLCipher store of ``n`` children imported through the registry (so every child has a
    wrapped data key and sealed fields): the new keyring written beside the old, every
    child key unwrapped and rewrapped in one transaction with the ``keys.rotate`` leaf,
    the commit, the switch. Goal: 100,000 children in ≤ 30 s; below 100,000 the figure
    is extrapolated linearly (the work is one pass over the child rows).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from childreg.models import ImportRecord
from node.audit.actor import Actor
from node.audit.log import AuditLog
from node.audit.service import Audited
from node.crypto.keys import KekSource, Keyring, generate_key_file
from node.kek_rotation import rotate_kek
from node.records.registry import Registry
from node.store.sqlcipher import SqlCipherStore
from tools.dev.federation import Say

GOAL_CHILDREN: Final = 100_000
GOAL_SECONDS: Final = 30.0
_BATCH: Final = 5_000  # children per import transaction while building the store


def measure_kek_rotation(records: Sequence[ImportRecord], root: Path, say: Say) -> dict[str, Any]:
    """Rotate once the KEK of a fresh node holding ``records`` (new children, e.g.
    tools.dev.bench.scaled); the seconds it took and the extrapolation to 100,000."""
    n = len(records)
    work = root / "kek-rotation"
    work.mkdir(parents=True, exist_ok=True)
    old_file, new_file = work / "old.key", work / "new.key"
    generate_key_file(old_file)
    generate_key_file(new_file)
    keyring_path, db_path = work / "keyring.json", work / "node.db"
    keyring = Keyring.create(keyring_path, KekSource.from_key_file(old_file))
    say(f"(j) importing {n:,} children for the KEK rotation")
    store = SqlCipherStore.open(db_path, keyring.db_key_hex(), create=True)
    try:
        registry = Registry(store, keyring)
        for start in range(0, n, _BATCH):
            registry.import_records(records[start : start + _BATCH])
    finally:
        store.close()
    say(f"(j) rotating the KEK of {n:,} children")

    def audited(s: SqlCipherStore, k: Keyring) -> Audited:
        return Audited(
            s, k, AuditLog(s, k.audit_signing_seed(), federation="bench.test", department="b")
        )

    started = time.perf_counter()
    rotation = rotate_kek(
        keyring_path,
        db_path,
        KekSource.from_key_file(old_file),
        KekSource.from_key_file(new_file),
        audited=audited,
        actor=Actor.operator("b", "bench"),
    )
    seconds = time.perf_counter() - started
    assert rotation.children == n
    extrapolated = seconds * GOAL_CHILDREN / n
    return {
        "children": n,
        "seconds": round(seconds, 3),
        "children_per_second": round(n / seconds),
        "seconds_for_100000": round(extrapolated, 2),
        "goal_seconds_for_100000": GOAL_SECONDS,
        "meets_goal": extrapolated <= GOAL_SECONDS,
    }
