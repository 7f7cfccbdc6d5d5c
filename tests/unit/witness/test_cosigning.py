"""The cosigning decision: only consistent growth is cosigned; equivocation, rollback and
inconsistent proofs are refused with both signed notes kept as evidence."""

from __future__ import annotations

import threading

import pytest
from structlog.testing import capture_logs

from childreg.audit.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from childreg.audit.merkle import EMPTY_ROOT
from childreg.errors import FailedPrecondition, InvalidInput, PermissionDenied
from tests.unit.witness.logs import FORK, LOG, NODE, ORIGIN, OTHER, WITNESS, note_at, signer
from witness.cosigning import MAX_NOTE_BYTES, MAX_PROOF_HASHES, Witness, check_request


def test_first_contact_then_consistent_growth_is_cosigned(witness: Witness) -> None:
    """From the empty tree, then with a consistency proof, the checkpoint is cosigned and held."""
    first = witness.add_checkpoint(note_at(LOG, 3), 0, [])
    second = witness.add_checkpoint(note_at(LOG, 11), 3, LOG.consistency_proof(3, 11))
    cp, opened = open_checkpoint(second, [NODE.verifier(), WITNESS.verifier()], origin=ORIGIN)
    assert (cp.size, cp.root) == (11, LOG.root(11))
    assert opened.verified_by == [ORIGIN, WITNESS.name]
    assert open_checkpoint(first, WITNESS.verifier())[0].size == 3
    assert witness.state(ORIGIN) == second
    assert witness.state(OTHER) is None
    assert witness.evidence() == []
    assert opened.cosigned_at == {WITNESS.name: 1_700_000_000}  # a C2SP cosignature/v1


def test_an_idempotent_repeat_is_cosigned_again(witness: Witness) -> None:
    """The same checkpoint again returns the same cosigned note and keeps no evidence."""
    note = note_at(LOG, 5)
    first = witness.add_checkpoint(note, 0, [])
    assert witness.add_checkpoint(note, 0, []) == first
    assert witness.add_checkpoint(note, 5, []) == first
    assert witness.evidence() == []


def test_equivocation_is_refused_with_both_notes_kept(witness: Witness) -> None:
    """Two roots for one size: refused, both signed notes kept, an alert without leaf data."""
    witness.add_checkpoint(note_at(LOG, 6), 0, [])
    held = witness.state(ORIGIN)
    forked = note_at(FORK, 6)
    with capture_logs() as logs, pytest.raises(FailedPrecondition, match="equivocates"):
        witness.add_checkpoint(forked, 6, [])
    [ev] = witness.evidence()
    assert (ev.kind, ev.origin, ev.held_size, ev.submitted_size) == ("equivocation", ORIGIN, 6, 6)
    assert ev.held_note == held
    assert ev.submitted_note == forked
    roots = {open_checkpoint(n, NODE.verifier())[0].root for n in (ev.held_note, ev.submitted_note)}
    assert roots == {LOG.root(6), FORK.root(6)}  # both verify under the node's own key
    [alert] = [e for e in logs if e["event"] == "witness.equivocation"]
    assert alert["log_level"] == "warning"
    assert (alert["origin"], alert["held_size"], alert["submitted_size"]) == (ORIGIN, 6, 6)
    assert "honest" not in repr(logs)
    assert "forked" not in repr(logs)
    assert witness.state(ORIGIN) == held


def test_rollback_is_refused_with_both_notes_kept(witness: Witness) -> None:
    """A smaller size after a bigger one: refused and kept as evidence; the held one stays."""
    witness.add_checkpoint(note_at(LOG, 9), 0, [])
    held = witness.state(ORIGIN)
    with capture_logs() as logs, pytest.raises(FailedPrecondition, match="never shrinks"):
        witness.add_checkpoint(note_at(LOG, 4), 0, [])
    [ev] = witness.evidence()
    assert (ev.kind, ev.held_size, ev.submitted_size) == ("rollback", 9, 4)
    assert ev.submitted_note == note_at(LOG, 4)
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["witness.rollback"]
    assert witness.state(ORIGIN) == held


def test_a_wrong_proof_is_refused_and_kept(witness: Witness) -> None:
    """A proof that does not lead from the held root is refused; notes and proof are kept."""
    witness.add_checkpoint(note_at(LOG, 3), 0, [])
    bad = [bytes([p[0] ^ 1]) + p[1:] for p in LOG.consistency_proof(3, 8)]
    with pytest.raises(FailedPrecondition, match="does not verify"):
        witness.add_checkpoint(note_at(LOG, 8), 3, bad)
    with pytest.raises(FailedPrecondition, match="does not verify"):  # a rewritten history
        witness.add_checkpoint(note_at(FORK, 8), 3, FORK.consistency_proof(3, 8))
    kinds = [(e.kind, e.held_size, e.submitted_size) for e in witness.evidence()]
    assert kinds == [("inconsistent", 3, 8), ("inconsistent", 3, 8)]
    assert list(witness.evidence()[0].proof) == bad
    assert open_checkpoint(witness.state(ORIGIN) or "", NODE.verifier())[0].size == 3


def test_a_stale_old_size_is_refused_naming_the_held_size(witness: Witness) -> None:
    """old_size other than the held size: FailedPrecondition telling it, and no evidence."""
    witness.add_checkpoint(note_at(LOG, 5), 0, [])
    with pytest.raises(FailedPrecondition, match="holds size 5"):
        witness.add_checkpoint(note_at(LOG, 9), 3, LOG.consistency_proof(3, 9))
    assert witness.evidence() == []
    witness.add_checkpoint(note_at(LOG, 9), 5, LOG.consistency_proof(5, 9))


def test_first_contact_needs_old_size_zero_and_an_empty_proof(witness: Witness) -> None:
    """Holding nothing, the witness accepts a checkpoint only as growth from the empty tree."""
    with pytest.raises(FailedPrecondition, match="holds no checkpoint"):
        witness.add_checkpoint(note_at(LOG, 4), 2, LOG.consistency_proof(2, 4))
    with pytest.raises(FailedPrecondition, match="empty"):
        witness.add_checkpoint(note_at(LOG, 4), 0, [LOG.root(2)])
    bogus = sign_checkpoint(Checkpoint(ORIGIN, 0, LOG.root(1)), NODE)
    with pytest.raises(FailedPrecondition, match="empty tree's root"):
        witness.add_checkpoint(bogus, 0, [])
    empty = sign_checkpoint(Checkpoint(ORIGIN, 0, EMPTY_ROOT), NODE)
    witness.add_checkpoint(empty, 0, [])
    witness.add_checkpoint(note_at(LOG, 4), 0, [])  # growth from the empty tree needs no proof
    assert witness.evidence() == []


def test_unknown_origins_and_foreign_keys_are_refused(witness: Witness) -> None:
    """An origin not pinned, or a note not signed by the origin's pinned key, is refused."""
    with pytest.raises(PermissionDenied, match="does not witness"):
        witness.add_checkpoint(note_at(LOG, 2, by=signer(OTHER), origin=OTHER), 0, [])
    with pytest.raises(PermissionDenied):
        witness.add_checkpoint(note_at(LOG, 2, by=signer(ORIGIN)), 0, [])  # same name, other key
    with pytest.raises(PermissionDenied):
        witness.add_checkpoint(note_at(LOG, 2, by=WITNESS), 0, [])
    with pytest.raises(InvalidInput):
        witness.add_checkpoint("not a note\n", 0, [])
    assert witness.state(ORIGIN) is None
    assert witness.evidence() == []


def test_concurrent_submissions_are_serialised(witness: Witness) -> None:
    """Many threads submitting the same growth all get the same cosignature, no evidence."""
    witness.add_checkpoint(note_at(LOG, 2), 0, [])
    note, proof = note_at(LOG, 16), LOG.consistency_proof(2, 16)
    results: list[str] = []

    def submit() -> None:
        results.append(witness.add_checkpoint(note, 2, proof))

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8
    assert len(set(results)) == 1
    assert witness.evidence() == []


@pytest.mark.parametrize(
    ("note", "old_size", "proof", "field"),
    [
        ("", 0, [], "note"),
        ("x" * (MAX_NOTE_BYTES + 1), 0, [], "note"),
        ("n", -1, [], "old_size"),
        ("n", 1 << 64, [], "old_size"),
        ("n", 0, [b"\x00" * 31], "consistency"),
        ("n", 0, [b"\x00" * 32] * (MAX_PROOF_HASHES + 1), "consistency"),
    ],
)
def test_request_fields_are_bounded(
    note: str, old_size: int, proof: list[bytes], field: str
) -> None:
    """Oversized notes, impossible sizes and malformed proofs are refused, naming the field."""
    with pytest.raises(InvalidInput) as caught:
        check_request(note, old_size, proof)
    assert [v.field for v in caught.value.violations] == [field]
