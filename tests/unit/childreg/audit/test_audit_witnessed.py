"""An auditor with no saved state still catches a node that shows another history than
the one its witnesses cosigned (childreg/audit/verify.check_witnessed)."""

from __future__ import annotations

from childreg.audit.note import NoteSigner, NoteVerifier, add_signatures, generate_signer
from childreg.audit.verify import BAD_SIGNATURE, LOG_REWRITTEN, check_witnessed
from node.audit.log import AuditLog
from node.store.memory import MemoryStore

ACTOR = "spiffe://test.childreg/department-staff/alpha.clerk"


def log_with(reads: list[bytes]) -> AuditLog:
    audit = AuditLog(MemoryStore(), bytes(32), federation="test.childreg", department="alpha")
    for r in reads:
        audit.append(actor=ACTOR, action="child.read", request=r, subject=bytes(32))
    return audit


def test_the_witnessed_history_must_be_the_one_shown() -> None:
    """Same leaves: fine. A fork from leaf 2, or fewer leaves than witnessed: rewritten.
    A note without the witness's signature: refused."""
    witness = NoteSigner.from_key_string(generate_signer("witness.test")[0])
    honest = log_with([b"a", b"b", b"c", b"d", b"e"])
    note = add_signatures(honest.checkpoint(), witness)
    node = NoteVerifier.from_key_string(honest.verifier_key)
    shown = honest.entries(0, honest.size)
    assert check_witnessed(shown, note, node, witness.verifier()) == []
    assert check_witnessed([*shown, b"later"], note, node, witness.verifier()) == []
    fork = log_with([b"a", b"b", b"X", b"d", b"e"])
    codes = [p.code for p in check_witnessed(fork.entries(0, 5), note, node, witness.verifier())]
    assert codes == [LOG_REWRITTEN]
    short = [p.code for p in check_witnessed(shown[:3], note, node, witness.verifier())]
    assert short == [LOG_REWRITTEN]
    unsigned = [
        p.code for p in check_witnessed(shown, honest.checkpoint(), node, witness.verifier())
    ]
    assert unsigned == [BAD_SIGNATURE]


def test_a_larger_witnessed_size_needs_a_consistency_proof() -> None:
    """A witness holding more leaves than the node showed is no rewrite when the node proves
    the witnessed tree extends them; without a proof, or with a fork's proof, it is one."""
    witness = NoteSigner.from_key_string(generate_signer("witness.test")[0])
    honest = log_with([b"a", b"b", b"c", b"d", b"e", b"f", b"g"])
    note = add_signatures(honest.checkpoint(), witness)
    node = NoteVerifier.from_key_string(honest.verifier_key)
    for shown in (1, 3, 4, 6):
        leaves = honest.entries(0, shown)
        proof = honest.consistency_proof(shown, 7)
        assert check_witnessed(leaves, note, node, witness.verifier(), proof) == []
        missing = check_witnessed(leaves, note, node, witness.verifier())
        assert [p.code for p in missing] == [LOG_REWRITTEN]
    fork = log_with([b"a", b"X", b"c", b"d", b"e", b"f", b"g"])
    forged = check_witnessed(
        fork.entries(0, 4), note, node, witness.verifier(), fork.consistency_proof(4, 7)
    )
    assert [p.code for p in forged] == [LOG_REWRITTEN]
    wrong = check_witnessed(
        fork.entries(0, 4), note, node, witness.verifier(), honest.consistency_proof(4, 7)
    )
    assert [p.code for p in wrong] == [LOG_REWRITTEN]


def test_a_leaf_with_a_boolean_or_numeric_field_is_not_canonical() -> None:
    """`"seq": true` or a number where a name belongs is refused, not read as 1."""
    import json

    import pytest

    from childreg.audit.leaf import AuditEvent
    from childreg.errors import InvalidInput

    good = log_with([b"a"]).entries(0, 1)[0]
    for field, value in (("seq", True), ("v", True), ("actor", 5), ("outcome", None)):
        data = json.loads(good)
        data[field] = value
        raw = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
        with pytest.raises(InvalidInput):
            AuditEvent.from_bytes(raw)
    assert AuditEvent.from_bytes(good).seq == 0
