"""The audited service's own rules (node/audit/service.py), beyond what the servicers show."""

from __future__ import annotations

import pytest

from childreg.audit.leaf import AuditEvent
from childreg.errors import NotFound, PermissionDenied
from node.audit.actor import Actor
from node.audit.log import AuditLog
from node.audit.service import Audited, Learnt
from node.crypto.keys import Keyring
from node.store.base import RecordStore

SCHOOL = Actor.machine("spiffe://test.childreg/school/s1")


def audited(store: RecordStore, keyring: Keyring) -> tuple[Audited, AuditLog]:
    """The audited service over ``store`` and its log."""
    log = AuditLog(store, bytes(32), federation="test.childreg", department="alpha")
    return Audited(store, keyring, log), log


def events(log: AuditLog) -> list[AuditEvent]:
    """Every leaf, decoded."""
    return [AuditEvent.from_bytes(b) for b in log.leaves()]


def test_a_refused_learning_call_names_what_it_had_learnt(
    store: RecordStore, keyring: Keyring
) -> None:
    """A call refused after it learnt its child and grant leaves one failure leaf naming
    them; one refused before it learnt anything names neither."""
    service, log = audited(store, keyring)

    def late(learnt: Learnt) -> None:
        learnt.child_id, learnt.purpose, learnt.grant = "C1", "iep_preparation", "ab" * 8
        raise PermissionDenied("grant not valid")

    def early(learnt: Learnt) -> None:
        raise NotFound("nothing")

    for fn in (late, early):
        with pytest.raises((PermissionDenied, NotFound)):
            service.learning(SCHOOL, "extract.disclose", b"req", fn)
    first, second = events(log)
    assert (first.subject, first.purpose, first.grant, first.outcome) == (
        keyring.pseudonym("C1").hex(),
        "iep_preparation",
        "ab" * 8,
        "PERMISSION_DENIED",
    )
    assert (second.subject, second.purpose, second.grant, second.outcome) == (
        "",
        "",
        "",
        "NOT_FOUND",
    )


def test_a_denial_keeps_the_identity_as_presented(store: RecordStore, keyring: Keyring) -> None:
    """A refusal at the door is one "denied" leaf with the presented identity kept as it
    came (even "-" or a malformed one), the method as purpose and the status as outcome."""
    service, log = audited(store, keyring)
    for presented in ("spiffe://test.childreg/school/s1", "-", "spiffe://x/Bad Role/y"):
        service.denied(presented, "/childreg.v1.RecordsService/GetChild", "PERMISSION_DENIED")
    assert [(e.actor, e.action, e.purpose, e.outcome) for e in events(log)] == [
        (p, "denied", "/childreg.v1.RecordsService/GetChild", "PERMISSION_DENIED")
        for p in ("spiffe://test.childreg/school/s1", "-", "spiffe://x/Bad Role/y")
    ]
