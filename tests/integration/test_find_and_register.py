"""Search and registration with the duplicate warning at the front door (issue 16, items 3, 5).

A node's RecordsService over mutual TLS, on a real SQLCipher store, called as department
staff: a look-alike child is held back with its candidate listed and nothing written,
then registered with a reason; a child is found by its name misspelled in the other
script; pages follow one another. Each call is exactly one leaf, whose purpose says what
a registration came to and whose subject names the child a search found alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from childreg.audit.leaf import AuditEvent
from childreg.authz import Authorizer
from childreg.rpc import make_server, secure_channel, violations_from_error
from childreg.search import SearchQuery
from childreg.v1 import records_pb2 as pb
from childreg.v1 import records_pb2_grpc as pb_grpc
from node.audit.log import AuditLog
from node.audit.service import Audited
from node.crypto.keys import Keyring
from node.records.registry import Registry
from node.rpc import convert
from node.rpc.records import RecordsServicer, register_records
from node.store.sqlcipher import SqlCipherStore
from tests.conftest import FEDERATION, IssueFn, tls
from tests.contract.stores import open_sqlcipher

DEPARTMENT = "alpha"
SERVER_NAME = f"{DEPARTMENT}.node.{FEDERATION}"
REASON = "twins: a sister of the child held, same birth date"


def child(child_id: str, given: str, family: str, born: str = "2016-04-02") -> pb.Child:
    """A child of district nasimi, without national id."""
    return pb.Child(
        child_id=child_id, given_name=given, family_name=family, date_of_birth=born,
        sex="female", district="nasimi",
    )  # fmt: skip


AYSEL = child("C1", "Aysel", "Məmmədova")
LOOK_ALIKE = child("C2", "Aysel", "Mammadova")


@dataclass
class Node:
    """A served node's store and log, and a stub to it as department staff."""

    store: SqlCipherStore
    log: AuditLog
    keyring: Keyring
    stub: pb_grpc.RecordsServiceStub
    address: str

    def leaves(self) -> list[AuditEvent]:
        """Every leaf so far, decoded."""
        return [AuditEvent.from_bytes(b) for b in self.log.leaves()]


@pytest.fixture
def node(issue: IssueFn, keyring: Keyring, tmp_path: Path) -> Iterator[Node]:
    """A SQLCipher node behind a real mutual-TLS RecordsService, and staff's stub to it."""
    store = open_sqlcipher(tmp_path)
    log = AuditLog(store, bytes(32), federation=FEDERATION, department=DEPARTMENT)
    audited = Audited(store, keyring, log)
    servicer = RecordsServicer(Registry(store, keyring), audited)
    server, port = make_server(
        lambda s: register_records(servicer, s),
        tls=tls(issue("node", DEPARTMENT)),
        bind="127.0.0.1:0",
        authorizer=Authorizer(FEDERATION, department=DEPARTMENT),
        on_denied=lambda method, peer, status: audited.denied(peer, method, status),
    )
    channel = secure_channel(
        f"127.0.0.1:{port}", tls(issue("department-staff", "alpha.registrar-1")), SERVER_NAME
    )
    try:
        yield Node(store, log, keyring, pb_grpc.RecordsServiceStub(channel), f"127.0.0.1:{port}")
    finally:
        channel.close()
        server.stop(None)
        store.close()


def register(node: Node, c: pb.Child, reason: str = "") -> pb.RegisterChildReply:
    """One RegisterChild call."""
    request = pb.RegisterChildRequest(child=c, not_duplicate_reason=reason)
    reply: pb.RegisterChildReply = node.stub.RegisterChild(request, timeout=10)
    return reply


def find(node: Node, **criteria: object) -> pb.SearchReply:
    """One FindChildren call with a query validated as the client would send it."""
    request = convert.search_query_to_proto(SearchQuery.model_validate(criteria))
    reply: pb.SearchReply = node.stub.FindChildren(request, timeout=10)
    return reply


def test_a_look_alike_is_held_then_registered_with_a_reason(node: Node) -> None:
    """A look-alike registration answers with its candidate and writes nothing; again
    with a reason it is registered; each call one leaf, its purpose saying which."""
    assert register(node, AYSEL).registered
    held = register(node, LOOK_ALIKE)
    assert not held.registered
    assert [d.hit.child_id for d in held.duplicates] == ["C1"]
    assert held.duplicates[0].hit.family_name == "Məmmədova"
    assert "same birth date" in held.duplicates[0].reasons
    assert node.store.child_count() == 1  # nothing written on the held call

    done = register(node, LOOK_ALIKE, REASON)
    assert done.registered
    assert [d.hit.child_id for d in done.duplicates] == ["C1"]  # what was set aside
    assert node.store.child_count() == 2

    leaves = node.leaves()
    assert [(e.action, e.outcome, e.purpose) for e in leaves] == [
        ("child.register", "OK", ""),
        ("child.register", "OK", "duplicates-shown"),
        ("child.register", "OK", "not-duplicate"),
    ]
    c2 = node.keyring.pseudonym("C2").hex()
    assert [e.subject for e in leaves[1:]] == [c2, c2]
    request = pb.RegisterChildRequest(child=LOOK_ALIKE, not_duplicate_reason=REASON)
    assert leaves[2].request == node.log.digest(request.SerializeToString())
    assert not any(b"twins" in b for b in node.log.leaves())  # the reason is not in a leaf


def with_national_id(c: pb.Child, national_id: str) -> pb.Child:
    """``c`` with a national id."""
    out = pb.Child()
    out.CopyFrom(c)
    out.national_id = national_id
    return out


def test_a_held_national_id_is_refused_reason_or_not(node: Node) -> None:
    """A new child with a national id already held is ALREADY_EXISTS even with a reason,
    one failure leaf and nothing written."""
    register(node, with_national_id(AYSEL, "AZE1234567"))
    other = with_national_id(child("C9", "Leyla", "Hüseynova", "2012-01-01"), "AZE1234567")
    with pytest.raises(grpc.RpcError) as info:
        register(node, other, REASON)
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert node.store.child_count() == 1
    assert (node.leaves()[-1].action, node.leaves()[-1].outcome) == (
        "child.register",
        "ALREADY_EXISTS",
    )


def test_a_bad_reason_is_refused_naming_its_field(node: Node) -> None:
    """A two-letter reason is INVALID_ARGUMENT naming not_duplicate_reason; nothing written."""
    with pytest.raises(grpc.RpcError) as info:
        register(node, AYSEL, "ok")
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in violations_from_error(info.value)] == ["not_duplicate_reason"]
    assert node.store.child_count() == 0


def test_find_by_a_misspelled_name_in_the_other_script(node: Node) -> None:
    """Registered in Azerbaijani Latin, the child is found by a Russian Cyrillic spelling;
    the one leaf of the search names that child, and a search finding none names nobody."""
    register(node, AYSEL)
    register(node, child("C3", "Nigar", "Quliyeva", "2015-01-01"))
    reply = find(node, name="Айсел Мамедова")
    assert [h.child_id for h in reply.hits] == ["C1"]
    assert reply.hits[0].family_name == "Məmmədova"
    assert 0.0 < reply.hits[0].score <= 1.0
    typo = find(node, name="Айсэл Мамадова")  # misspelt as well, in two letters
    assert [h.child_id for h in typo.hits] == ["C1"]
    assert find(node, name="Zzyzx").hits == []
    searches = [e for e in node.leaves() if e.action == "child.search"]
    c1 = node.keyring.pseudonym("C1").hex()
    assert [(e.outcome, e.subject) for e in searches] == [("OK", c1), ("OK", c1), ("OK", "")]


def test_pages_follow_one_another_each_one_leaf(node: Node) -> None:
    """Three children of a district come two and one, no child twice, one leaf a page."""
    for i, (given, family) in enumerate([("Aysel", "Məmmədova"), ("Nigar", "Quliyeva"),
                                         ("Leyla", "Hüseynova")]):  # fmt: skip
        register(node, child(f"C{i}", given, family, f"201{i}-0{i + 1}-1{i}"))
    first = find(node, district="nasimi", page_size=2)
    assert len(first.hits) == 2
    assert first.next_page_token
    second = find(node, district="nasimi", page_size=2, page_token=first.next_page_token)
    assert len(second.hits) == 1
    assert second.next_page_token == ""
    seen = [h.child_id for h in (*first.hits, *second.hits)]
    assert sorted(seen) == ["C0", "C1", "C2"]
    searches = [e for e in node.leaves() if e.action == "child.search"]
    assert [e.subject for e in searches] == ["", node.keyring.pseudonym(seen[2]).hex()]


def test_a_search_without_criteria_is_refused_with_its_leaf(node: Node) -> None:
    """No criterion at all is INVALID_ARGUMENT, and the refusal is a child.search leaf."""
    with pytest.raises(grpc.RpcError) as info:
        node.stub.FindChildren(pb.SearchRequest(), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [(e.action, e.outcome) for e in node.leaves()] == [("child.search", "INVALID_ARGUMENT")]


@pytest.mark.parametrize("role", ["school", "auditor", "coordinator"])
def test_only_staff_may_search(node: Node, issue: IssueFn, role: str) -> None:
    """Any other role gets PERMISSION_DENIED from FindChildren, its denial leaf and no search."""
    register(node, AYSEL)
    channel = secure_channel(node.address, tls(issue(role, f"{role}-1")), SERVER_NAME)
    with channel, pytest.raises(grpc.RpcError) as info:
        pb_grpc.RecordsServiceStub(channel).FindChildren(pb.SearchRequest(name="Aysel"), timeout=10)
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert [(e.action, e.purpose) for e in node.leaves()][1:] == [
        ("denied", "/childreg.v1.RecordsService/FindChildren")
    ]
