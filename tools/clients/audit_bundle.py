"""The auditor's evidence bundles: one file that repeats a log's verification offline.

Why: evidence must outlive the node that served it. ``childreg audit bundle`` verifies the
log (as :mod:`tools.clients.auditor` does), then writes everything
``childreg.audit.verify.verify_bundle`` needs: the signed checkpoint, every leaf, inclusion
proofs of the leaves asked for, and consistency proofs linking the checkpoint to the one
verified before and to those the witnesses hold. Inclusion proofs are computed here from the
verified leaves, so a bundle of any number of them costs the node no extra call (one call
per proof ran into the node's per-caller rate limit at about 100 leaves).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from childreg.audit import merkle
from childreg.audit.leaf import utc_now
from childreg.audit.note import NoteVerifier
from childreg.audit.verify import bundle_text, make_bundle
from tools.clients.auditor import Verified, WitnessRef, fetch_verified, size_of
from tools.clients.client import EXIT_USAGE, CliError, Endpoint


@dataclass(frozen=True)
class Bundled:
    """An evidence bundle written: the verification, where, and what it holds."""

    verified: Verified
    path: Path
    leaves: int
    proofs: int
    consistency: int = 0


def _links(verified: Verified, tree: merkle.MerkleTree) -> list[tuple[str, int, int, list[bytes]]]:
    """The other signed checkpoints the bundle carries, each with its consistency proof: the
    one verified before and every witnessed one (computed from the leaves when smaller, the
    node's proof when larger)."""
    size = tree.size
    notes: list[tuple[str, list[bytes] | None]] = []
    if verified.previous is not None:
        notes.append((verified.previous, None))
    if verified.witnessed is not None:
        notes += verified.witnessed.notes
    links = []
    for note, proof in notes:
        other = size_of(note)
        if other is None:
            continue
        if other <= size:
            links.append((note, other, size, tree.consistency_proof(other, size)))
        elif proof is not None:
            links.append((note, size, other, proof))
    return links


def write_bundle(
    endpoint: Endpoint,
    verifier: NoteVerifier,
    state: Path | None,
    leaves: Sequence[int],
    out_file: Path,
    *,
    witnesses: Sequence[WitnessRef] = (),
    progress: Console | None = None,
) -> Bundled:
    """Verify the log, add the inclusion proofs of ``leaves`` and the consistency proofs of
    the checkpoints held before and by the witnesses, write the bundle (even when the log did
    not verify: the bundle is the evidence).

    The inclusion proofs are computed here from the leaves fetched, one call for none of
    them (a proof per call ran into the node's rate limit at about 100 leaves): the root
    they lead to is the signed one exactly when the leaves verified, which the bundle's
    verifier checks again offline.
    """
    verified = fetch_verified(endpoint, verifier, state, witnesses, progress=progress)
    fetched = verified.fetched
    size = len(fetched.leaves)
    wanted = sorted(set(leaves))
    if any(not 0 <= i < size for i in wanted):
        raise CliError(f"--leaf: the log holds {size} leaves, numbered from 0", code=EXIT_USAGE)
    tree = merkle.MerkleTree()
    for leaf in fetched.leaves:
        tree.append(leaf)
    proofs = {i: tree.inclusion_proof(i, size) for i in wanted}
    links = _links(verified, tree)
    made = make_bundle(
        fetched.note,
        fetched.leaves,
        verifier,
        created=utc_now(),
        proofs=proofs,
        consistency=links,
        key_transitions=fetched.transitions,
    )
    tmp = out_file.with_name(out_file.name + ".tmp")
    tmp.write_text(bundle_text(made), encoding="utf-8")
    os.replace(tmp, out_file)
    return Bundled(verified, out_file, size, len(proofs), len(links))
