"""Every RPC that touches a child leaves exactly one audit leaf, without personal data.

The node's servicers run over a real store (both implementations) and a real AuditLog;
only the gRPC context is a stand-in (the caller's identity comes from it).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from childreg.audit import merkle
from childreg.audit.checkpoint import open_checkpoint
from childreg.audit.leaf import AuditEvent
from childreg.audit.note import NoteVerifier
from childreg.errors import ChildregError, InvalidInput, NotFound
from childreg.models import AssessmentIn, CareSettingIn, ChildIn, PlacementIn
from childreg.v1 import records_pb2 as pb
from node.audit.log import AuditLog
from node.audit.service import Audited
from node.crypto.keys import Keyring
from node.records.registry import Registry
from node.rpc import convert
from node.rpc.records import RecordsServicer
from node.store.base import RecordStore
from tests.import_worker_scenarios import good_records

NAME, NATIONAL_ID, DIAGNOSIS = "Zarifa", "AZE1234567", "F84.0"
STAFF = "spiffe://test.childreg/department-staff/alpha.clerk"


class Context:
    """The part of a gRPC context the servicers use: the caller's verified identity."""

    def auth_context(self) -> dict[str, list[bytes]]:
        return {"x509_subject_alternative_name": [STAFF.encode()]}


def register(c: ChildIn) -> pb.RegisterChildRequest:
    """The RegisterChild request for ``c``."""
    return pb.RegisterChildRequest(child=convert.child_to_proto(c))


def child(child_id: str = "C00001") -> ChildIn:
    return ChildIn(
        child_id=child_id,
        national_id=NATIONAL_ID,
        given_name=NAME,
        family_name="Aliyeva",
        date_of_birth=dt.date(2015, 3, 1),
        sex="female",
        district="shaki",
    )


@pytest.fixture
def parts(store: RecordStore, keyring: Keyring) -> tuple[RecordsServicer, AuditLog, Keyring]:
    audit = AuditLog(store, bytes(32), federation="test.childreg", department="alpha")
    servicer = RecordsServicer(Registry(store, keyring), Audited(store, keyring, audit))
    return servicer, audit, keyring


def leaves(audit: AuditLog) -> list[AuditEvent]:
    return [AuditEvent.from_bytes(b) for b in audit.entries(0, audit.size)]


def test_every_records_rpc_leaves_one_leaf_without_personal_data(
    parts: tuple[RecordsServicer, AuditLog, Keyring],
) -> None:
    """Register, correct, placement, care, assessment, read, history, close: one leaf each,
    the child named
    only by its pseudonym; no name, national id or diagnosis anywhere in the leaves."""
    servicer, audit, keyring = parts
    ctx: Any = Context()
    c = child()
    calls: list[tuple[str, Callable[[], object]]] = [
        ("child.register", lambda: servicer.RegisterChild(register(c), ctx)),
        ("child.correct", lambda: servicer.CorrectChild(
            pb.Correction(child_id=c.child_id, reason="typo", given_name="Leyla"), ctx)),
        ("placement.record", lambda: servicer.RecordPlacement(
            convert.placement_to_proto(PlacementIn(
                child_id=c.child_id, academic_year="2023/24", education_form="special_school"
            )), ctx)),
        ("care_setting.record", lambda: servicer.RecordCareSetting(
            convert.care_setting_to_proto(CareSettingIn(
                child_id=c.child_id, care_setting="family", since=dt.date(2020, 1, 1)
            )), ctx)),
        ("assessment.record", lambda: servicer.RecordAssessment(
            convert.assessment_to_proto(AssessmentIn(
                child_id=c.child_id, assessment_date=dt.date(2023, 5, 2), commission="PMPC 1",
                diagnoses=(DIAGNOSIS,), impairment_band="pct_41_60",
            )), ctx)),
        ("child.read", lambda: servicer.GetChild(pb.ChildRef(child_id=c.child_id), ctx)),
        ("child.history", lambda: servicer.GetHistory(pb.ChildRef(child_id=c.child_id), ctx)),
        ("child.close", lambda: servicer.CloseChild(pb.Closure(
            child_id=c.child_id, closed_on="2024-06-01", reason="moved_abroad"), ctx)),
    ]  # fmt: skip
    for i, (action, call) in enumerate(calls):
        call()
        assert audit.size == i + 1
        leaf = leaves(audit)[-1]
        assert (leaf.action, leaf.actor, leaf.outcome) == (action, STAFF, "OK")
        assert leaf.subject == keyring.pseudonym(c.child_id).hex()
        assert leaf.seq == i
        assert len(leaf.request) == 64
    raw = b"".join(audit.entries(0, audit.size))
    for secret in (NAME, NATIONAL_ID, DIAGNOSIS, c.child_id):
        assert secret.encode() not in raw


def test_an_import_leaf_digests_the_stream_as_the_client_sent_it(
    parts: tuple[RecordsServicer, AuditLog, Keyring], store: RecordStore
) -> None:
    """The leaf keeps the keyed digest of the stream's SHA-256, which is of the messages'
    bytes as they arrived, not of the node's own serialization of them."""
    servicer, audit, _ = parts
    blobs = [batch.SerializeToString() for batch in convert.import_batches(good_records(5), 2)]
    blobs[-1] += b"\x10\x01"  # "last" sent a second time: the same message, other bytes
    assert pb.ImportBatch.FromString(blobs[-1]).SerializeToString() != blobs[-1]
    ctx: Any = Context()
    summary = servicer.BulkImport(iter([convert.received(blob) for blob in blobs]), ctx)
    assert summary.imported == store.child_count() == 5
    leaf = leaves(audit)[-1]
    assert (leaf.action, leaf.outcome) == ("records.import", "OK")
    assert leaf.request == audit.digest(hashlib.sha256(b"".join(blobs)).digest())


def test_a_failed_change_changes_nothing_and_leaves_a_failure_leaf(
    parts: tuple[RecordsServicer, AuditLog, Keyring], store: RecordStore
) -> None:
    """A correction of an unknown child: nothing changed, one leaf with NOT_FOUND."""
    servicer, audit, _ = parts
    request = pb.Correction(child_id="C00009", reason="typo", given_name="Leyla")
    with pytest.raises(NotFound):
        servicer.CorrectChild(request, Context())  # type: ignore[arg-type]
    assert store.child_count() == 0
    (leaf,) = leaves(audit)
    assert (leaf.action, leaf.outcome) == ("child.correct", "NOT_FOUND")


def test_an_invalid_request_is_logged_as_invalid(
    parts: tuple[RecordsServicer, AuditLog, Keyring],
) -> None:
    """A malformed request is refused with INVALID_ARGUMENT and leaves one leaf saying so."""
    servicer, audit, _ = parts
    bad = pb.RegisterChildRequest(child=pb.Child(child_id="C1", sex="x"))
    with pytest.raises(InvalidInput):
        servicer.RegisterChild(bad, Context())  # type: ignore[arg-type]
    assert [(e.action, e.outcome) for e in leaves(audit)] == [
        ("child.register", "INVALID_ARGUMENT")
    ]


def test_nothing_is_returned_when_the_log_cannot_be_written(
    parts: tuple[RecordsServicer, AuditLog, Keyring],
    store: RecordStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Write-ahead: with the log unwritable a read fails and a change is rolled back."""
    servicer, audit, _ = parts
    servicer.RegisterChild(register(child()), Context())  # type: ignore[arg-type]

    def disk_full(*_: object) -> int:
        raise ChildregError("disk full")

    monkeypatch.setattr(store, "audit_append", disk_full)
    with pytest.raises(ChildregError, match="disk full"):
        servicer.GetChild(pb.ChildRef(child_id="C00001"), Context())  # type: ignore[arg-type]
    with pytest.raises(ChildregError, match="disk full"):
        servicer.RegisterChild(register(child("C00002")), Context())  # type: ignore[arg-type]
    assert store.child_count() == 1
    assert audit.size == 1


def test_proofs_and_checkpoints_verify(parts: tuple[RecordsServicer, AuditLog, Keyring]) -> None:
    """Over the real store: a signed checkpoint opens with the node's verifier key, and
    inclusion and consistency proofs verify against it."""
    _, audit, _ = parts
    for i in range(37):
        audit.append(actor=STAFF, action="child.read", request=bytes([i]))
    note = audit.checkpoint()
    verifier = NoteVerifier.from_key_string(audit.verifier_key)
    cp, _ = open_checkpoint(note, [verifier], origin=audit.origin)
    assert cp.size == 37
    bodies = audit.entries(0, 37)
    assert cp.root == merkle.root_from_leaves(bodies)
    for i in (0, 17, 36):
        proof = audit.inclusion_proof(i, 37)
        assert merkle.verify_inclusion(merkle.leaf_hash(bodies[i]), i, 37, proof, cp.root)
    old_root = audit.root(20)
    assert merkle.verify_consistency(20, 37, old_root, cp.root, audit.consistency_proof(20, 37))
    assert audit.checkpoint() == note  # same size: the same signed note
    with pytest.raises(InvalidInput):
        audit.inclusion_proof(37, 37)


def test_a_statistics_release_returns_nothing_when_the_log_cannot_be_written(
    store: RecordStore, keyring: Keyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Write-ahead for releases: with the log unwritable the coordinator gets an error, not
    a table; with it writable, the release is one leaf."""
    from nacl.signing import SigningKey

    from childreg.catalogue import sign_catalogue
    from childreg.v1 import statistics_pb2 as spb
    from node.rpc.statistics import StatisticsServicer
    from node.statistics.desk import StatisticsDesk
    from tools.dev.federation import default_catalogue

    authority = SigningKey(bytes(range(32)))
    audit = AuditLog(store, bytes(32), federation="test.childreg", department="alpha")
    desk = StatisticsDesk(
        store, keyring.noise_secret(), authority.verify_key, federation="test.childreg",
        max_snapshot_rho=default_catalogue().snapshot_rho,
    )  # fmt: skip
    servicer = StatisticsServicer(desk, Audited(store, keyring, audit))
    request = spb.NoisyTableRequest(
        signed_catalogue=sign_catalogue(default_catalogue("test.childreg"), authority),
        table_id="education_form",
        academic_year="2023/24",
    )
    real_append = store.audit_append

    def disk_full(*_: object) -> int:
        raise ChildregError("disk full")

    monkeypatch.setattr(store, "audit_append", disk_full)
    with pytest.raises(ChildregError, match="disk full"):
        servicer.NoisyTable(request, Context())  # type: ignore[arg-type]
    monkeypatch.setattr(store, "audit_append", real_append)
    table = servicer.NoisyTable(request, Context())  # type: ignore[arg-type]
    assert len(table.counts) == 11
    assert [(e.action, e.outcome) for e in leaves(audit)] == [("statistics.release", "OK")]


def test_a_leaf_cannot_be_reversed_to_the_child_id(
    parts: tuple[RecordsServicer, AuditLog, Keyring],
) -> None:
    """The request digest is keyed: hashing every candidate request does not find it (a
    plain SHA-256 of ``ChildRef{child_id}`` would give the id away in a few guesses)."""
    import hashlib

    servicer, audit, _ = parts
    servicer.RegisterChild(register(child()), Context())  # type: ignore[arg-type]
    servicer.GetChild(pb.ChildRef(child_id="C00001"), Context())  # type: ignore[arg-type]
    read = leaves(audit)[-1]
    candidates = {
        hashlib.sha256(pb.ChildRef(child_id=f"C{i:05d}").SerializeToString()).hexdigest()
        for i in range(1000)
    }
    assert read.request not in candidates
    assert read.request == audit.digest(pb.ChildRef(child_id="C00001").SerializeToString())


def test_a_padded_id_is_logged_under_the_childs_pseudonym(
    parts: tuple[RecordsServicer, AuditLog, Keyring],
) -> None:
    """A read of " C00001\\t" returns C00001 and is in C00001's access report."""
    servicer, audit, keyring = parts
    servicer.RegisterChild(register(child()), Context())  # type: ignore[arg-type]
    servicer.GetChild(pb.ChildRef(child_id=" C00001\t"), Context())  # type: ignore[arg-type]
    subject = keyring.pseudonym("C00001")
    assert [e.action for e in audit.events_about(subject)] == ["child.register", "child.read"]


def test_with_the_database_read_only_a_read_returns_nothing(
    tmp_path: Path, keyring: Keyring
) -> None:
    """The real thing, not a stand-in exception: the node's database turned read-only
    (``query_only``) under a running servicer — the read fails and returns no record, the
    change fails and nothing is stored."""
    import sqlcipher3

    from node.store.sqlcipher import SqlCipherStore

    store = SqlCipherStore.open(tmp_path / "node.db", keyring.db_key_hex(), create=True)
    try:
        audit = AuditLog(store, bytes(32), federation="test.childreg", department="alpha")
        servicer = RecordsServicer(Registry(store, keyring), Audited(store, keyring, audit))
        servicer.RegisterChild(register(child()), Context())  # type: ignore[arg-type]
        store._conn.set_authorizer(None)
        store._conn.execute("PRAGMA query_only = ON")
        with pytest.raises(sqlcipher3.OperationalError):
            servicer.GetChild(pb.ChildRef(child_id="C00001"), Context())  # type: ignore[arg-type]
        with pytest.raises(sqlcipher3.OperationalError):
            servicer.RegisterChild(register(child("C00002")), Context())  # type: ignore[arg-type]
        assert store.child_count() == 1
        assert audit.size == 1
    finally:
        store._conn.execute("PRAGMA query_only = OFF")
        store.close()
