"""One child's whole life through the RecordsService (issue 16's acceptance), over mutual
TLS on a real SQLCipher store, as department staff.

Registered while a look-alike is held (the duplicate warning answered with a reason),
found by a misspelled name in the other script, assessed, placed, its care setting
changed twice, its name corrected with a reason, closed: each call is exactly one leaf
about the child, the history shows every version with actor, time and reason, and a
snapshot whose reference date falls after the closing no longer counts the child while
one before it still does. A node also refuses, at the door, a child living outside its
department's districts, naming the district.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from childreg import codes
from childreg.audit.leaf import AuditEvent
from childreg.authz import Authorizer
from childreg.rpc import make_server, secure_channel, violations_from_error
from childreg.v1 import records_pb2 as pb
from childreg.v1 import records_pb2_grpc as pb_grpc
from node.audit.log import AuditLog
from node.audit.service import Audited
from node.crypto.keys import Keyring
from node.records.registry import Registry
from node.rpc.records import RecordsServicer, register_records
from tests.conftest import FEDERATION, IssueFn, tls
from tests.contract.stores import open_sqlcipher
from tests.integration.test_find_and_register import Node, child, find, node, register

__all__ = ["node"]  # the fixture, shared with the search tests

STAFF = f"spiffe://{FEDERATION}/department-staff/alpha.registrar-1"
BORN = "2016-04-02"
HELD = child("C0", "Aysel", "Mammadova", born="2016-04-04")  # another girl, 2 days older
AYSEL = child("C1", "Aysel", "Məmmədova", born=BORN)
CLOSED_ON = "2024-06-01"  # after the 2023/24 census day, before the 2024/25 one


def test_one_childs_whole_life_through_the_rpcs(node: Node) -> None:
    """Every step of the life is one leaf about the child; history and snapshots follow."""
    s = node.stub
    assert register(node, HELD).registered
    pseudonym = node.keyring.pseudonym("C1").hex()
    n = len(node.leaves())

    held = register(node, AYSEL)
    assert not held.registered
    assert [d.hit.child_id for d in held.duplicates] == ["C0"]
    reason = "another girl: different mother, born two days later"
    assert register(node, AYSEL, reason).registered

    found = find(node, name="Айсэл Мамедова", date_of_birth=BORN)  # misspelled, Cyrillic
    assert [h.child_id for h in found.hits] == ["C1"]

    assessment = pb.Assessment(
        child_id="C1", assessment_date="2023-05-02", commission="Baku PMPC",
        impairment_band="pct_41_60", icf_codes=["d140.2"], diagnoses=["F84.0"],
        functioning=[pb.Functioning(domain="learning", level="some_difficulty")],
        recommended_form="inclusive_class", supports=["speech_therapy"],
        accommodations=["extra_time"], next_review="2024-05-02",
    )  # fmt: skip
    calls: list[Callable[[], object]] = [
        lambda: s.RecordAssessment(assessment, timeout=10),
        lambda: s.RecordPlacement(pb.Placement(child_id="C1", academic_year="2023/24",
                                               education_form="inclusive_class"), timeout=10),
        lambda: s.RecordPlacement(pb.Placement(child_id="C1", academic_year="2024/25",
                                               education_form="inclusive_class"), timeout=10),
        lambda: s.RecordCareSetting(pb.CareSetting(
            child_id="C1", care_setting="state_residential_institution", since="2019-01-10"
        ), timeout=10),
        lambda: s.RecordCareSetting(pb.CareSetting(child_id="C1", care_setting="foster_family",
                                                   since="2022-09-01"), timeout=10),
        lambda: s.CorrectChild(pb.Correction(child_id="C1", family_name="Məmmədzadə",
                                             reason="spelling on the birth certificate"),
                               timeout=10),
    ]  # fmt: skip
    for call in calls:
        call()
    counted = {y: node.store.count_table(y, codes.reference_date(y), ["education_form"])
               for y in ("2023/24", "2024/25")}  # fmt: skip
    assert counted == {y: {("inclusive_class",): 1} for y in counted}  # C0 has no placement
    s.CloseChild(pb.Closure(child_id="C1", closed_on=CLOSED_ON, reason="moved_abroad"), timeout=10)
    history = s.GetHistory(pb.ChildRef(child_id="C1"), timeout=10)

    leaves = node.leaves()[n:]
    assert [(e.action, e.subject == pseudonym, e.actor) for e in leaves] == [
        (action, True, STAFF)
        for action in (
            "child.register", "child.register", "child.search", "assessment.record",
            "placement.record", "placement.record", "care_setting.record",
            "care_setting.record", "child.correct", "child.close", "child.history",
        )
    ]  # fmt: skip
    assert [e.purpose for e in leaves[:2]] == ["duplicates-shown", "not-duplicate"]
    assert all(e.outcome == "OK" for e in leaves)

    entries = history.entries
    assert [(e.kind, e.scope) for e in entries] == [
        ("registered", ""), ("assessed", "1"), ("placed", "2023/24"), ("placed", "2024/25"),
        ("care_setting", "2019-01-10"), ("care_setting", "2022-09-01"), ("corrected", ""),
        ("closed", ""),
    ]  # fmt: skip
    for e in entries:
        assert e.actor == STAFF
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", e.at)
    assert entries[0].reason == reason
    changes = {c.field: (c.before, c.after) for c in entries[0].changes}
    assert changes["family_name"] == ("", "Məmmədova")  # an unset before reads as ""
    assert not entries[0].changes[0].HasField("before")
    corrected = entries[6]
    assert corrected.reason == "spelling on the birth certificate"
    assert [(c.field, c.before, c.after) for c in corrected.changes] == [
        ("family_name", "Məmmədova", "Məmmədzadə")
    ]
    assert (history.closed_on, history.close_reason) == (CLOSED_ON, "moved_abroad")

    counted = {y: node.store.count_table(y, codes.reference_date(y), ["education_form"])
               for y in ("2023/24", "2024/25")}  # fmt: skip
    assert counted == {"2023/24": {("inclusive_class",): 1}, "2024/25": {}}

    record = s.GetChild(pb.ChildRef(child_id="C1"), timeout=10)
    assert (record.child.family_name, record.closed_on) == ("Məmmədzadə", CLOSED_ON)
    with pytest.raises(grpc.RpcError) as refused:
        s.RecordPlacement(pb.Placement(child_id="C1", academic_year="2024/25",
                                       education_form="special_school", reason="late news"),
                          timeout=10)  # fmt: skip
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_a_child_outside_the_departments_districts_is_refused_at_the_door(
    issue: IssueFn, keyring: Keyring, tmp_path: Path
) -> None:
    """A node configured for nasimi refuses a child living in ganja: INVALID_ARGUMENT naming
    the district, one failure leaf, nothing registered."""
    store = open_sqlcipher(tmp_path)
    log = AuditLog(store, bytes(32), federation=FEDERATION, department="alpha")
    audited = Audited(store, keyring, log)
    registry = Registry(store, keyring, districts={"nasimi"})
    server, port = make_server(
        lambda s: register_records(RecordsServicer(registry, audited), s),
        tls=tls(issue("node", "alpha")),
        bind="127.0.0.1:0",
        authorizer=Authorizer(FEDERATION, department="alpha"),
    )
    channel = secure_channel(
        f"127.0.0.1:{port}", tls(issue("department-staff", "alpha.registrar-1")),
        f"alpha.node.{FEDERATION}",
    )  # fmt: skip
    try:
        ganja = child("G1", "Leyla", "Həsənova")
        ganja.district = "ganja"
        with pytest.raises(grpc.RpcError) as refused:
            pb_grpc.RecordsServiceStub(channel).RegisterChild(
                pb.RegisterChildRequest(child=ganja), timeout=10
            )
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        [violation] = violations_from_error(refused.value)
        assert violation.field == "district"
        assert "ganja" in violation.problem
        assert store.child_count() == 0
        [leaf] = [AuditEvent.from_bytes(b) for b in log.leaves()]
        assert (leaf.action, leaf.outcome) == ("child.register", "INVALID_ARGUMENT")
    finally:
        channel.close()
        server.stop(None)
        store.close()
