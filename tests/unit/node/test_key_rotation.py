"""Rotating the node's signing keys (node/key_rotation.py), on both stores: the announcement
lets whoever pinned the old key verify old material and follow to the new key."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from childreg.audit.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from childreg.audit.leaf import AuditEvent
from childreg.audit.note import NoteSigner, NoteVerifier, note_text
from childreg.errors import InvalidInput, PermissionDenied
from childreg.extract_format import open_extract
from childreg.key_transition import KeyTransition, LogKeys, follow, sign_transition
from node.audit.actor import Actor
from node.audit.log import AuditLog
from node.consent.extract import ExtractDesk, extract_verify_key
from node.crypto.keys import Keyring
from node.key_rotation import rotate_signing_key, signing_generations, transitions_of, with_signing
from node.statistics.aggregation import roster_entry
from node.store.base import RecordStore
from tests.unit.node.consent.test_extract import NOW, SCHOOL, Node
from witness.cosigning import Witness
from witness.store import WitnessStore

FEDERATION, DEPARTMENT = "fed.test", "d1"
ORIGIN = f"childreg.{FEDERATION}/{DEPARTMENT}"
OPERATOR = Actor.operator(DEPARTMENT, "ops-1")


def log_of(store: RecordStore, keyring: Keyring) -> AuditLog:
    """The node's audit log signed with the keyring's audit key in use."""
    return AuditLog(
        store, keyring.audit_signing_seed(), federation=FEDERATION, department=DEPARTMENT
    )


def grow(log: AuditLog, n: int) -> None:
    """Append ``n`` leaves."""
    for _ in range(n):
        log.append(actor=OPERATOR.name, action="audit.read")


def rotate(store: RecordStore, keyring: Keyring, which: str) -> Keyring:
    """Rotate ``which`` and return the keyring with the generations now in use."""
    rotate_signing_key(
        store, keyring, which, federation=FEDERATION, department=DEPARTMENT, actor=OPERATOR
    )
    return with_signing(keyring, store)


def test_an_audit_key_rotation_announces_the_new_key_from_the_next_size(
    store: RecordStore, keyring: Keyring
) -> None:
    """After rotating the audit key the log signs with a new key, the latest checkpoint is
    the new key's, the old checkpoint still verifies with the old key, the statement leads
    from the old key to the new one from the size including the rotation's leaf, and one
    keys.rotate_signing leaf names the operator."""
    old_log = log_of(store, keyring)
    old_key = NoteVerifier.from_key_string(old_log.verifier_key)
    grow(old_log, 5)
    old_note = old_log.checkpoint()
    rotated = rotate(store, keyring, "audit")
    assert signing_generations(store)["audit"] == 2
    new_log = log_of(store, rotated)
    new_key = NoteVerifier.from_key_string(new_log.verifier_key)
    assert new_key != old_key
    assert new_key.name == old_key.name == ORIGIN

    latest = new_log.latest_checkpoint()
    assert latest is not None
    assert open_checkpoint(latest, new_key)[0].size == 6
    with pytest.raises(PermissionDenied):
        open_checkpoint(latest, old_key)
    assert open_checkpoint(old_note, old_key)[0].size == 5
    (transition,) = follow(old_key.public_key, new_log.key_transitions(), "audit", ORIGIN)
    assert (transition.new, transition.from_size) == (new_key.public_key, 6)
    keys = LogKeys(old_key, new_log.key_transitions())
    assert (keys.at(5), keys.at(6)) == (old_key, new_key)
    assert set(new_log.verifiers()) == {old_key, new_key}
    leaf = AuditEvent.from_bytes(new_log.entries(5, 6)[0])
    assert (leaf.action, leaf.actor, leaf.outcome) == ("keys.rotate_signing", OPERATOR.name, "OK")


def test_a_witness_pinned_to_the_old_key_keeps_cosigning_after_a_rotation(
    store: RecordStore, keyring: Keyring, tmp_path: Path
) -> None:
    """A witness that pinned the node's first audit key cosigns a checkpoint of the second
    key when the node sends its transition statements, and refuses it without them."""
    log = log_of(store, keyring)
    pinned = NoteVerifier.from_key_string(log.verifier_key)
    witness_store = WitnessStore(tmp_path / "witness.db")
    witness = Witness(
        witness_store, NoteSigner("witness.test", SigningKey(b"w" * 32)), {ORIGIN: pinned}
    )
    try:
        grow(log, 3)
        witness.add_checkpoint(log.checkpoint(), 0, [])
        rotated = rotate(store, keyring, "audit")
        new_log = log_of(store, rotated)
        grow(new_log, 2)
        note = new_log.checkpoint()
        proof = new_log.consistency_proof(3, 6)
        with pytest.raises(PermissionDenied):
            witness.add_checkpoint(note, 3, proof)
        cosigned = witness.add_checkpoint(note, 3, proof, new_log.key_transitions())
        size = open_checkpoint(cosigned, [witness.verifier])[0].size
        assert size == Checkpoint.parse(note_text(note)).size == 6
        # past the transition the old key signs nothing the witness takes (a leaked old key)
        grow(new_log, 1)
        old_signer = NoteSigner(ORIGIN, SigningKey(keyring.audit_signing_seed(1)))
        stale = sign_checkpoint(Checkpoint(ORIGIN, 7, new_log.root(7)), old_signer)
        with pytest.raises(PermissionDenied):
            witness.add_checkpoint(
                stale, 6, new_log.consistency_proof(6, 7), new_log.key_transitions()
            )
    finally:
        witness_store.close()


def test_a_second_rotation_makes_a_chain_a_first_pin_follows(
    store: RecordStore, keyring: Keyring
) -> None:
    """Two audit-key rotations leave generation 3, and the first key's pin follows both
    statements to the third key."""
    first = NoteVerifier.from_key_string(log_of(store, keyring).verifier_key)
    rotated = rotate(store, rotate(store, keyring, "audit"), "audit")
    assert rotated.signing_generation("audit") == 3
    log = log_of(store, rotated)
    chain = follow(first.public_key, log.key_transitions(), "audit", ORIGIN)
    assert chain[-1].new == NoteVerifier.from_key_string(log.verifier_key).public_key
    assert len(chain) == 2


def test_a_school_that_pinned_the_old_extract_key_opens_an_extract_of_the_new_one(
    store: RecordStore, keyring: Keyring
) -> None:
    """After the extract key is rotated, an extract signed by the new key opens with the old
    pinned key through the statement the envelope carries, and is refused without it."""
    node = Node(store, keyring)
    pinned = extract_verify_key(keyring)
    rotated = rotate(store, keyring, "extract")
    assert extract_verify_key(rotated) != pinned
    desk = ExtractDesk(
        store,
        rotated,
        origin=ORIGIN,
        guard=lambda: None,
        clock=lambda: NOW,
        transitions=transitions_of(store, "extract"),
    )
    sealed, _, _ = desk.extract(node.grant, node.public, SCHOOL)
    body = open_extract(sealed, node.school_key, pinned, SCHOOL, NOW)
    assert body["child"]["given_name"] == "Aysel"
    assert open_extract(sealed, node.school_key, extract_verify_key(rotated), SCHOOL, NOW)
    bare = ExtractDesk(store, rotated, origin=ORIGIN, guard=lambda: None, clock=lambda: NOW)
    unannounced = bare.extract(node.grant, node.public, SCHOOL)[0]
    with pytest.raises(PermissionDenied, match="another key"):
        open_extract(unannounced, node.school_key, pinned, SCHOOL, NOW)


def test_an_upload_key_rotation_changes_the_roster_entry_only(
    store: RecordStore, keyring: Keyring
) -> None:
    """Rotating the upload key changes the roster entry's upload key (the authority signs
    the new entry into the roster) and leaves the masking, audit and extract keys as they
    were."""
    before = roster_entry(keyring, federation=FEDERATION, department=DEPARTMENT)
    rotated = rotate(store, keyring, "upload")
    after = roster_entry(rotated, federation=FEDERATION, department=DEPARTMENT)
    assert after["upload_key"] != before["upload_key"]
    assert after["masking_key"] == before["masking_key"]
    assert extract_verify_key(rotated) == extract_verify_key(keyring)
    assert rotated.audit_signing_seed() == keyring.audit_signing_seed()
    (note,) = transitions_of(store, "upload")
    (transition,) = follow(base64.b64decode(before["upload_key"]), [note], "upload")
    assert base64.b64encode(transition.new).decode() == after["upload_key"]


def test_an_unknown_key_is_refused_and_nothing_changes(
    store: RecordStore, keyring: Keyring
) -> None:
    """Rotating a key that is not audit, extract or upload is refused naming the field, and
    no statement or leaf is kept."""
    with pytest.raises(InvalidInput) as refused:
        rotate(store, keyring, "masking")
    assert refused.value.violations[0].field == "which"
    assert store.key_transitions() == []
    assert store.audit_size() == 0


def test_a_witness_remembers_the_transition_it_followed_and_refuses_a_rival(
    store: RecordStore, keyring: Keyring, tmp_path: Path
) -> None:
    """Once a witness followed the node's statement, a later checkpoint of the new key is
    cosigned without statements, and a rival statement signed by the old key (leaked) to a
    key of someone else's is refused, with what the rival key signs."""
    log = log_of(store, keyring)
    pinned = NoteVerifier.from_key_string(log.verifier_key)
    witness_store = WitnessStore(tmp_path / "witness.db")
    witness = Witness(
        witness_store, NoteSigner("witness.test", SigningKey(b"w" * 32)), {ORIGIN: pinned}
    )
    try:
        grow(log, 2)
        witness.add_checkpoint(log.checkpoint(), 0, [])
        new_log = log_of(store, rotate(store, keyring, "audit"))
        witness.add_checkpoint(
            new_log.checkpoint(), 2, new_log.consistency_proof(2, 3), new_log.key_transitions()
        )
        grow(new_log, 1)
        witness.add_checkpoint(new_log.checkpoint(), 3, new_log.consistency_proof(3, 4))

        old_signer = NoteSigner(ORIGIN, SigningKey(keyring.audit_signing_seed(1)))
        thief = NoteSigner(ORIGIN, SigningKey(b"t" * 32))
        rival = sign_transition(
            KeyTransition("audit", ORIGIN, pinned.public_key, thief.verifier().public_key, 5, "t"),
            old_signer,
            thief,
        )
        grow(new_log, 1)
        forged = sign_checkpoint(Checkpoint(ORIGIN, 5, new_log.root(5)), thief)
        with pytest.raises(PermissionDenied, match="may have leaked"):
            witness.add_checkpoint(forged, 4, new_log.consistency_proof(4, 5), [rival])
    finally:
        witness_store.close()
