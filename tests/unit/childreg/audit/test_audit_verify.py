"""The auditor's verdict on a node's log: good logs verify, each kind of tampering is named."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from nacl.signing import SigningKey

from childreg.audit import merkle
from childreg.audit.checkpoint import Checkpoint, sign_checkpoint
from childreg.audit.leaf import AuditEvent
from childreg.audit.note import NoteSigner, NoteVerifier
from childreg.audit.verify import (
    BAD_INCLUSION,
    BAD_LEAF,
    BAD_PREVIOUS,
    BAD_SIGNATURE,
    KEY_MISMATCH,
    LOG_REWRITTEN,
    MALFORMED_BUNDLE,
    MALFORMED_CHECKPOINT,
    NODE_MISMATCH,
    ROOT_MISMATCH,
    SEQ_MISMATCH,
    SIZE_MISMATCH,
    WRONG_ORIGIN,
    VerificationReport,
    bundle_text,
    make_bundle,
    verify_bundle,
    verify_log,
)
from node.audit.log import AuditLog
from node.store.memory import MemoryStore

FEDERATION = "test.childreg"
ORIGIN = "childreg.test.childreg/alpha"
NOW = "2026-01-05T09:30:00Z"
STAFF = "spiffe://test.childreg/department-staff/alpha.registrar-1"
SUBJECT = bytes(range(32))


def new_log(seed: bytes = bytes(32), department: str = "alpha") -> tuple[AuditLog, MemoryStore]:
    """An empty log over a memory store, with a fixed clock."""
    store = MemoryStore()
    log = AuditLog(store, seed, federation=FEDERATION, department=department, clock=lambda: NOW)
    return log, store


def fill(log: AuditLog, n: int, actor: str = STAFF) -> None:
    """Append ``n`` varied leaves."""
    actions = ("child.read", "child.update", "denied", "statistics.release")
    for i in range(n):
        action = actions[i % len(actions)]
        log.append(
            actor=actor,
            action=action,
            subject=SUBJECT if action.startswith("child") else None,
            request=f"request {i}".encode(),
            purpose="case work",
            outcome="PERMISSION_DENIED" if action == "denied" else "OK",
        )


def snapshot(log: AuditLog) -> tuple[str, list[bytes]]:
    """The log's signed checkpoint and every leaf under it."""
    note = log.checkpoint()
    size = log.size
    return note, [
        leaf for i in range(0, size, 1000) for leaf in log.entries(i, min(size, i + 1000))
    ]


def key(log: AuditLog) -> NoteVerifier:
    """The pinned verifier of a log."""
    return NoteVerifier.from_key_string(log.verifier_key)


def codes(report: VerificationReport) -> set[str]:
    """The problem codes of a report."""
    return {p.code for p in report.problems}


def test_a_good_log_verifies() -> None:
    """A node's honest log verifies: size, root and every parsed event are reported."""
    log, _ = new_log()
    fill(log, 11)
    note, leaves = snapshot(log)
    report = verify_log(note, leaves, key(log))
    assert report.ok, report.problems
    assert (report.origin, report.size, report.root) == (ORIGIN, 11, log.root(11))
    assert [e.seq for e in report.events] == list(range(11))
    assert report.to_dict()["root"] == base64.b64encode(log.root(11)).decode()


def test_an_empty_log_verifies() -> None:
    """A log with no leaves has the empty root and verifies."""
    log, _ = new_log()
    report = verify_log(log.checkpoint(), [], key(log))
    assert report.ok
    assert (report.size, report.root) == (0, merkle.EMPTY_ROOT)


@pytest.mark.parametrize("index", [0, 5, 9])
def test_an_insider_edit_of_a_leaf_is_detected(index: int) -> None:
    """A leaf rewritten in the database (still a well-formed event) breaks the signed root."""
    log, store = new_log()
    fill(log, 10)
    event = AuditEvent.from_bytes(store._state.leaves[index])
    forged = replace(event, actor="spiffe://test.childreg/auditor/someone")
    store._state.leaves[index] = forged.to_bytes()
    report = verify_log(*snapshot(log), key(log))
    assert codes(report) == {ROOT_MISMATCH}


def test_a_garbled_leaf_is_named() -> None:
    """Bytes that are not a canonical event are named by index, besides the root mismatch."""
    log, store = new_log()
    fill(log, 4)
    store._state.leaves[2] = store._state.leaves[2].replace(b'"v":1', b'"v": 1')
    report = verify_log(*snapshot(log), key(log))
    assert codes(report) == {ROOT_MISMATCH, BAD_LEAF}
    assert "leaves 2 " in next(p.message for p in report.problems if p.code == BAD_LEAF)


@pytest.mark.parametrize("cut", [lambda ls: ls[:-1], lambda ls: ls[1:], lambda ls: [*ls, ls[0]]])
def test_a_truncated_or_padded_log_is_detected(cut: Callable[[list[bytes]], list[bytes]]) -> None:
    """Fewer or more leaves than the signed size are refused."""
    log, _ = new_log()
    fill(log, 6)
    note, leaves = snapshot(log)
    assert SIZE_MISMATCH in codes(verify_log(note, cut(leaves), key(log)))


def test_a_checkpoint_signed_by_another_key_is_refused() -> None:
    """The same origin signed with another key is not the node's checkpoint."""
    log, _ = new_log()
    impostor, _ = new_log(seed=bytes([7]) * 32)
    fill(log, 3)
    fill(impostor, 3)
    report = verify_log(*snapshot(impostor), key(log))
    assert codes(report) == {BAD_SIGNATURE}
    assert (report.size, report.root, report.events) == (None, None, ())


def test_a_checkpoint_of_another_log_is_refused() -> None:
    """A checkpoint for another origin is refused even when its key is trusted."""
    beta, _ = new_log(department="beta")
    fill(beta, 2)
    report = verify_log(*snapshot(beta), key(beta), origin=ORIGIN)
    assert codes(report) == {WRONG_ORIGIN}


def test_a_malformed_note_is_named() -> None:
    """A note that is not a signed checkpoint is refused as malformed."""
    log, _ = new_log()
    assert codes(verify_log("not a note", [], key(log))) == {MALFORMED_CHECKPOINT}


def signed(leaves: list[bytes]) -> str:
    """A checkpoint over ``leaves`` signed with the alpha log's key (a node signing anything)."""
    signer = NoteSigner(ORIGIN, SigningKey(bytes(32)))
    return sign_checkpoint(Checkpoint(ORIGIN, len(leaves), merkle.root_from_leaves(leaves)), signer)


def test_a_node_that_signs_leaves_out_of_order_is_caught() -> None:
    """A signed root over leaves whose seq is not their index, or of another node, fails."""
    log, _ = new_log()
    leaves = [
        AuditEvent(node=node, seq=seq, time=NOW, actor=STAFF, action="child.read").to_bytes()
        for node, seq in (("alpha", 0), ("alpha", 5), ("beta", 2))
    ]
    report = verify_log(signed(leaves), leaves, key(log))
    assert codes(report) == {SEQ_MISMATCH, NODE_MISMATCH}


def forked(common: int, first: int, second: int) -> tuple[AuditLog, AuditLog]:
    """Two logs of one node sharing ``common`` leaves, then going different ways."""
    one, _ = new_log()
    two, _ = new_log()
    fill(one, common)
    fill(two, common)
    fill(one, first, actor="spiffe://test.childreg/auditor/one")
    fill(two, second, actor="spiffe://test.childreg/auditor/two")
    return one, two


@pytest.mark.parametrize("with_proof", [True, False])
def test_a_forked_history_is_a_rewritten_log(with_proof: bool) -> None:
    """A later checkpoint that does not extend the one verified before is 'log rewritten'."""
    one, two = forked(5, 3, 6)
    previous = one.checkpoint()
    note, leaves = snapshot(two)
    proof = two.consistency_proof(8, 11) if with_proof else None
    report = verify_log(note, leaves, key(two), previous=previous, consistency=proof)
    assert codes(report) == {LOG_REWRITTEN}
    assert report.rewritten
    assert report.previous_size == 8


def test_an_honest_extension_is_consistent() -> None:
    """The same log grown since the last check verifies against the saved checkpoint."""
    log, _ = new_log()
    fill(log, 5)
    previous = log.checkpoint()
    fill(log, 1500)
    note, leaves = snapshot(log)
    for proof in (log.consistency_proof(5, 1505), None):
        report = verify_log(note, leaves, key(log), previous=previous, consistency=proof)
        assert report.ok, report.problems
        assert report.previous_size == 5


def test_a_shrunk_log_and_two_roots_for_one_size_are_rewrites() -> None:
    """A smaller size after a bigger one, or another root at the same size, is a rewrite."""
    one, two = forked(4, 3, 3)
    note, leaves = snapshot(two)
    assert verify_log(note, leaves, key(two), previous=one.checkpoint(), consistency=[]).rewritten
    shorter, _ = new_log()
    fill(shorter, 2)
    shrunk = verify_log(*snapshot(shorter), key(shorter), previous=one.checkpoint())
    assert shrunk.rewritten
    assert "shrank from 7 to 2" in shrunk.problems[0].message


def test_a_previous_checkpoint_by_another_key_is_named() -> None:
    """A saved checkpoint that does not open under the pinned key is reported, not trusted."""
    log, _ = new_log()
    other, _ = new_log(seed=bytes([9]) * 32)
    fill(log, 2)
    fill(other, 1)
    report = verify_log(*snapshot(log), key(log), previous=other.checkpoint())
    assert codes(report) == {BAD_PREVIOUS}


def a_bundle(log: AuditLog, proofs_for: tuple[int, ...] = (0, 3, 6)) -> dict[str, Any]:
    """An evidence bundle of the whole log with a few inclusion proofs."""
    note, leaves = snapshot(log)
    proofs = {i: log.inclusion_proof(i, len(leaves)) for i in proofs_for}
    return make_bundle(note, leaves, key(log), created=NOW, proofs=proofs)


def test_a_bundle_round_trips_and_verifies_offline() -> None:
    """A bundle written as JSON verifies with nothing but the pinned key."""
    log, _ = new_log()
    fill(log, 7)
    text = bundle_text(a_bundle(log))
    data = json.loads(text)
    assert data["format"] == "childreg-audit-bundle/1"
    assert data["origin"] == ORIGIN
    assert data["verifier_key"] == log.verifier_key
    report = verify_bundle(text, key(log))
    assert report.ok, report.problems
    assert report.size == 7


def test_a_flipped_byte_in_any_leaf_of_a_bundle_fails() -> None:
    """Every leaf, flipped at its first, middle and last byte, makes the bundle fail."""
    log, _ = new_log()
    fill(log, 7)
    bundle = a_bundle(log)
    leaves = [base64.b64decode(v) for v in bundle["leaves"]]
    for i, leaf in enumerate(leaves):
        for pos in (0, len(leaf) // 2, len(leaf) - 1):
            bent = bytearray(leaf)
            bent[pos] ^= 0x01
            copy = {**bundle, "leaves": list(bundle["leaves"])}
            copy["leaves"][i] = base64.b64encode(bytes(bent)).decode()
            report = verify_bundle(bundle_text(copy), key(log))
            assert ROOT_MISMATCH in codes(report), (i, pos)


def test_a_bent_inclusion_proof_or_another_key_fails() -> None:
    """A proof hash changed, or a bundle naming another key, is reported."""
    log, _ = new_log()
    fill(log, 7)
    bundle = a_bundle(log)
    proof = bundle["inclusion_proofs"][1]
    proof["hashes"][0] = base64.b64encode(bytes(32)).decode()
    assert codes(verify_bundle(bundle_text(bundle), key(log))) == {BAD_INCLUSION}
    other, _ = new_log(seed=bytes([3]) * 32)
    renamed = {**a_bundle(log), "verifier_key": other.verifier_key}
    assert codes(verify_bundle(bundle_text(renamed), key(log))) == {KEY_MISMATCH}
    assert BAD_SIGNATURE in codes(verify_bundle(bundle_text(a_bundle(log)), key(other)))


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        json.dumps({"format": "something else"}),
        json.dumps({"format": "childreg-audit-bundle/1", "origin": ORIGIN}),
    ],
)
def test_a_malformed_bundle_is_refused(text: str) -> None:
    """Anything but a well-formed bundle is refused as malformed, without an exception."""
    log, _ = new_log()
    assert codes(verify_bundle(text, key(log))) == {MALFORMED_BUNDLE}


def test_bad_base64_in_a_bundle_is_malformed() -> None:
    """A leaf that is not base64 makes the bundle malformed."""
    log, _ = new_log()
    fill(log, 2)
    bundle = {**a_bundle(log, ()), "leaves": ["***"]}
    assert codes(verify_bundle(bundle_text(bundle), key(log))) == {MALFORMED_BUNDLE}


def test_a_bundles_consistency_proofs_link_its_other_checkpoints() -> None:
    """A bundle carrying an older and a newer signed checkpoint, each with its consistency
    proof, verifies; a wrong proof, wrong sizes or a checkpoint by another key fail it; a
    bundle written before these proofs existed (no field) still verifies."""
    log, _ = new_log()
    fill(log, 3)
    older = log.checkpoint()
    fill(log, 4)
    note, leaves = snapshot(log)
    fill(log, 2)
    newer = log.checkpoint()
    links = [
        (older, 3, 7, log.consistency_proof(3, 7)),
        (newer, 7, 9, log.consistency_proof(7, 9)),
    ]
    made = make_bundle(note, leaves, key(log), created=NOW, consistency=links)
    assert verify_bundle(bundle_text(made), key(log)).ok
    other, _ = new_log(seed=bytes([9]) * 32)
    fill(other, 3)
    for bad in (
        (older, 3, 7, log.consistency_proof(2, 7)),
        (older, 2, 7, log.consistency_proof(3, 7)),
        (other.checkpoint(), 3, 7, log.consistency_proof(3, 7)),
    ):
        broken = make_bundle(note, leaves, key(log), created=NOW, consistency=[bad])
        assert "bad-consistency-proof" in codes(verify_bundle(bundle_text(broken), key(log)))
    del made["consistency_proofs"]
    assert verify_bundle(bundle_text(made), key(log)).ok
