"""One action, one leaf, whichever door it came through (issue 15, "one audited service").

The same register, read and refused read are done twice: on one node through its real
RecordsService over mutual TLS, as department staff; on a twin node (same keyring, same
log key) by calling the audited service (node/audit/service.py) directly with the staff's
:class:`~node.audit.actor.Actor` and the same request bytes. Decoded with
childreg/audit/leaf.py, the two logs hold the same leaves apart from time and sequence
number; a web-console actor changes only the leaves' actor.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from childreg.audit.leaf import AuditEvent
from childreg.authz import Authorizer
from childreg.errors import NotFound
from childreg.models import ChildIn
from childreg.rpc import make_server, secure_channel
from childreg.v1 import records_pb2 as pb
from childreg.v1 import records_pb2_grpc as pb_grpc
from node.audit.actor import Actor
from node.audit.log import AuditLog
from node.audit.service import Audited
from node.crypto.keys import KekSource, Keyring, generate_key_file
from node.records.registry import Registry
from node.rpc.records import RecordsServicer, register_records
from node.store.memory import MemoryStore
from tests.conftest import FEDERATION, IssueFn, tls

DEPARTMENT = "alpha"
SERVER_NAME = f"{DEPARTMENT}.node.{FEDERATION}"
STAFF = f"spiffe://{FEDERATION}/department-staff/alpha.registrar-1"
NAME, NATIONAL_ID = "Nigar", "AZE5550001"
CHILD = pb.Child(
    child_id="C1", national_id=NATIONAL_ID, given_name=NAME, family_name="Quliyeva",
    date_of_birth="2016-04-02", sex="female", district="nasimi",
)  # fmt: skip
REGISTER = pb.RegisterChildRequest(child=CHILD)
READ = pb.ChildRef(child_id="C1")
UNKNOWN = pb.ChildRef(child_id="C404")


@dataclass
class Twin:
    """A node's registry and audited service over a store of its own."""

    store: MemoryStore
    log: AuditLog
    registry: Registry
    audited: Audited

    def leaves(self) -> list[AuditEvent]:
        """Every leaf, decoded."""
        return [AuditEvent.from_bytes(b) for b in self.log.leaves()]


def twin(keyring: Keyring) -> Twin:
    """A node of department alpha whose leaves are keyed like every other twin's."""
    store = MemoryStore()
    log = AuditLog(store, bytes(32), federation=FEDERATION, department=DEPARTMENT)
    return Twin(store, log, Registry(store, keyring), Audited(store, keyring, log))


@pytest.fixture
def keyring(tmp_path: Path) -> Keyring:
    """One keyring for every twin, so pseudonyms agree."""
    generate_key_file(tmp_path / "kek.key")
    return Keyring.create(tmp_path / "keyring.json", KekSource.from_key_file(tmp_path / "kek.key"))


@pytest.fixture
def served(issue: IssueFn, keyring: Keyring) -> Iterator[tuple[Twin, pb_grpc.RecordsServiceStub]]:
    """A twin behind a real mutual-TLS RecordsService, and a stub to it as the staff."""
    node = twin(keyring)
    server, port = make_server(
        lambda s: register_records(RecordsServicer(node.registry, node.audited), s),
        tls=tls(issue("node", DEPARTMENT)),
        bind="127.0.0.1:0",
        authorizer=Authorizer(FEDERATION, department=DEPARTMENT),
    )
    staff = issue("department-staff", "alpha.registrar-1")
    channel = secure_channel(f"127.0.0.1:{port}", tls(staff), SERVER_NAME)
    try:
        yield node, pb_grpc.RecordsServiceStub(channel)
    finally:
        channel.close()
        server.stop(None)


def directly(node: Twin, actor: Actor) -> None:
    """The register, the read and the refused read, through the audited service itself."""
    child = ChildIn(
        child_id="C1", national_id=NATIONAL_ID, given_name=NAME, family_name="Quliyeva",
        date_of_birth=dt.date(2016, 4, 2), sex="female", district="nasimi",
    )  # fmt: skip
    node.audited.change(
        actor,
        "child.register",
        REGISTER.SerializeToString(),
        lambda: node.registry.register_child(child),
        "C1",
    )
    node.audited.disclose(
        actor, "child.read", READ.SerializeToString(), lambda: node.registry.get_child("C1"), "C1"
    )
    with pytest.raises(NotFound):
        node.audited.disclose(
            actor,
            "child.read",
            UNKNOWN.SerializeToString(),
            lambda: node.registry.get_child("C404"),
            "C404",
        )


def through_grpc(stub: pb_grpc.RecordsServiceStub) -> None:
    """The register, the read and the refused read, as RPCs."""
    stub.RegisterChild(REGISTER, timeout=10)
    stub.GetChild(READ, timeout=10)
    with pytest.raises(grpc.RpcError) as refused:
        stub.GetChild(UNKNOWN, timeout=10)
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND


def timeless(events: list[AuditEvent]) -> list[AuditEvent]:
    """The leaves without their time and sequence number."""
    return [dataclasses.replace(e, time="2000-01-01T00:00:00Z", seq=0) for e in events]


def test_grpc_and_a_direct_call_with_the_actor_leave_the_same_leaves(
    served: tuple[Twin, pb_grpc.RecordsServiceStub], keyring: Keyring
) -> None:
    """RegisterChild, GetChild and a refused GetChild over mutual TLS leave exactly the
    leaves the audited service leaves when called directly with the staff's actor (apart
    from time and sequence), the actor being the certificate's SPIFFE id as before."""
    node, stub = served
    through_grpc(stub)
    other = twin(keyring)
    directly(other, Actor.machine(STAFF))
    over_grpc, direct = node.leaves(), other.leaves()
    assert [(e.action, e.outcome) for e in over_grpc] == [
        ("child.register", "OK"),
        ("child.read", "OK"),
        ("child.read", "NOT_FOUND"),
    ]
    assert timeless(over_grpc) == timeless(direct)
    assert {e.actor for e in over_grpc} == {STAFF}
    assert over_grpc[0].subject == keyring.pseudonym("C1").hex()
    raw = b"".join(node.log.leaves())
    for secret in (NAME, NATIONAL_ID, "C1"):
        assert secret.encode() not in raw


def test_a_web_console_actor_changes_only_the_actor(keyring: Keyring) -> None:
    """The same calls by a person signed in to the web console leave the same leaves with
    actor department-staff/<department>.<person> instead of the SPIFFE id."""
    machine, person = twin(keyring), twin(keyring)
    directly(machine, Actor.machine(STAFF))
    directly(person, Actor.staff(DEPARTMENT, "registrar-1"))
    renamed = [dataclasses.replace(e, actor=STAFF) for e in person.leaves()]
    assert timeless(renamed) == timeless(machine.leaves())
    assert {e.actor for e in person.leaves()} == {"department-staff/alpha.registrar-1"}
