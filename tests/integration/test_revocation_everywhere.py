"""Revocation that reaches every server: the coordinator publishes the CA's deny-list over
mutual TLS and three nodes, a witness and the coordinator itself refuse a revoked school
within their fetch interval, though no server's own deny-list file was ever touched."""

from __future__ import annotations

import shutil
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from grpc_health.v1 import health_pb2, health_pb2_grpc
from structlog.testing import capture_logs

from childreg.denylist_sync import HEALTH_SERVICE
from childreg.pki import CertificateAuthority, IdentityFiles
from childreg.revocation import DENYLIST_FILE, STATE_FILE, DenyList, sign, verify
from childreg.rpc import TlsMaterial, secure_channel
from childreg.v1 import revocation_pb2, revocation_pb2_grpc
from coordinator.config import CoordinatorConfig
from coordinator.server import start_coordinator
from node.config import NodeConfig
from node.server import start_node
from tools.dev.federation import LocalFederation
from tools.dev.synth import DepartmentPlan
from witness.config import WitnessConfig
from witness.server import start_witness

DEPTS = [
    DepartmentPlan("alpha", "Alpha", "baku", ("nasimi",)),
    DepartmentPlan("beta", "Beta", "baku", ("yasamal",)),
    DepartmentPlan("gamma", "Gamma", "baku", ("sabail",)),
]
FETCH = 0.5  # seconds: the configured interval of every server
DEADLINE = 30.0  # seconds a wait may take before the test fails (a slow, shared machine)


@dataclass
class Server:
    """One running server: how to reach it, where its files are, how to stop it."""

    name: str
    address: str
    server_name: str
    denylist_file: Path  # its own copy, laid out once at set-up and never touched again
    state_dir: Path
    stop: Callable[[], None]


def _load(path: Path) -> dict[str, Any]:
    return tomllib.loads(path.read_text())


def _own_copy(fed: LocalFederation, home: Path) -> Path:
    """The server's own deny-list file, copied from the CA once, as at installation."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / DENYLIST_FILE
    shutil.copyfile(fed.root / "ca" / DENYLIST_FILE, path)
    return path


def _fetching(coordinator: Server) -> dict[str, Any]:
    return {
        "revocation": {
            "publisher": coordinator.address,
            "publisher_server_name": coordinator.server_name,
            "fetch_seconds": FETCH,
        }
    }


def _start_node(fed: LocalFederation, dept: str, extra: dict[str, Any]) -> Server:
    data = _load(fed.nodes[dept].config)
    home = Path(data["data_dir"]).parent
    data |= {"denylist_file": str(home / DENYLIST_FILE), **extra}
    app = start_node(NodeConfig.model_validate(data))
    return Server(
        dept, f"127.0.0.1:{app.port}", fed.nodes[dept].server_name, home / DENYLIST_FILE,
        Path(data["data_dir"]), lambda: app.stop(grace=0),
    )  # fmt: skip


@dataclass
class World:
    """The federation's files and its running servers, by name."""

    fed: LocalFederation
    servers: dict[str, Server]
    school: TlsMaterial
    school_serial: int
    originals: dict[str, bytes]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A coordinator publishing the CA's own deny-list file, then a witness and three nodes
    fetching it from the coordinator, each server with its own copy made at set-up."""
    root = tmp_path_factory.mktemp("revocation-everywhere")
    fed = LocalFederation(root / "fed", DEPTS, witness=True, aggregation="per-department")
    fed.setup()
    servers: dict[str, Server] = {}
    # The coordinator reads the CA's file itself: that is the CA operator's hand-off (on
    # its own machine, the operator copies denylist.json to this one path). It knows the
    # departments' addresses only for statistics rounds, which this test does not run.
    home = fed.root / "coordinator"
    coordinator = start_coordinator(
        CoordinatorConfig.model_validate({
            "federation": fed.federation,
            "identity_dir": str(fed.identity("coordinator")),
            "denylist_file": str(fed.root / "ca" / DENYLIST_FILE),
            "statistics_authority_key": str(fed.authority_dir / "authority.pub"),
            "profile_file": str(fed.profile_file),
            "catalogue_file": str(fed.catalogue_file),
            "aggregation": "per-department",
            "state_dir": str(home / "state"),
            "statisticians": [{"id": "alice", "rho": "1/4"}],
            "departments": [
                {"id": p.id, "address": f"127.0.0.1:{n + 1}", "region": p.region}
                for n, p in enumerate(DEPTS)
            ],
            "revocation": {"publish": True, "fetch_seconds": FETCH},
        })
    )  # fmt: skip
    servers["coordinator"] = Server(
        "coordinator", f"127.0.0.1:{coordinator.port}", f"coordinator.{fed.federation}",
        fed.root / "ca" / DENYLIST_FILE, home / "state", lambda: coordinator.stop(grace=0),
    )  # fmt: skip
    fetching = _fetching(servers["coordinator"])
    assert fed.witness_party is not None
    wdata = _load(fed.witness_party.config)
    whome = fed.witness_party.config.parent
    wdata |= {"denylist_file": str(_own_copy(fed, whome)), **fetching}
    witness = start_witness(WitnessConfig.model_validate(wdata))
    servers["witness"] = Server(
        "witness", f"127.0.0.1:{witness.port}", fed.witness_party.server_name,
        whome / DENYLIST_FILE, Path(wdata["state_dir"]), lambda: witness.stop(grace=0),
    )  # fmt: skip
    for plan in DEPTS:
        _own_copy(fed, Path(_load(fed.nodes[plan.id].config)["data_dir"]).parent)
        servers[plan.id] = _start_node(fed, plan.id, fetching)
    school_dir = fed.issue_identity("school", "school-1")
    school = TlsMaterial.from_dir(IdentityFiles(school_dir))
    serial = x509.load_pem_x509_certificate(school.cert).serial_number
    originals = {s.name: s.denylist_file.read_bytes() for s in servers.values()}
    yield World(fed, servers, school, serial, originals)
    for s in reversed(servers.values()):
        s.stop()


def _health(server: Server, tls: TlsMaterial, service: str = "") -> grpc.StatusCode | int:
    """The status of a health check as ``tls``: the serving status, or the refusal's code."""
    with secure_channel(server.address, tls, server.server_name) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=10
            )
        except grpc.RpcError as err:
            code: grpc.StatusCode = err.code()
            return code
    return int(reply.status)


def _refuses(server: Server, tls: TlsMaterial) -> bool:
    return _health(server, tls) == grpc.StatusCode.PERMISSION_DENIED


def _wait_for(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {DEADLINE:.0f} s")
        time.sleep(0.1)


def _ca_key(fed: LocalFederation) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key((fed.root / "ca" / "ca.key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def _identity(world: World, name: str) -> TlsMaterial:
    return TlsMaterial.from_dir(IdentityFiles(world.fed.identity(name)))


SERVING = health_pb2.HealthCheckResponse.SERVING


def test_a_school_revoked_at_the_ca_is_refused_by_every_server(world: World) -> None:
    """After `pki revoke` at the CA, every node, the witness and the coordinator refuse the
    school; each server remembers the new list, and no server's own file was changed."""
    for server in world.servers.values():
        assert _health(server, world.school) == SERVING, server.name
    ca = CertificateAuthority.load(world.fed.root / "ca")
    deny = ca.revoke([world.school_serial])  # writes ca/denylist.json, nothing else
    for server in world.servers.values():
        _wait_for(partial(_refuses, server, world.school), f"{server.name} refusing the school")
    for server in world.servers.values():
        remembered = verify((server.state_dir / STATE_FILE).read_bytes(), ca.cert)
        assert remembered.version == deny.version, server.name
        if server.name != "coordinator":  # the coordinator's file is the CA's own
            assert server.denylist_file.read_bytes() == world.originals[server.name]
    node = _identity(world, "node-alpha")
    for server in world.servers.values():  # the list is young: every server says fresh
        assert _health(server, node, HEALTH_SERVICE) == SERVING, server.name


def test_the_publisher_serves_only_to_servers(world: World) -> None:
    """GetDenyList answers a node with the CA's signed bytes and refuses an auditor."""
    coordinator = world.servers["coordinator"]

    def get(tls: TlsMaterial) -> bytes:
        with secure_channel(coordinator.address, tls, coordinator.server_name) as channel:
            stub = revocation_pb2_grpc.RevocationServiceStub(channel)
            return stub.GetDenyList(revocation_pb2.DenyListRequest(), timeout=10).document

    assert (
        get(_identity(world, "node-beta")) == (world.fed.root / "ca" / DENYLIST_FILE).read_bytes()
    )
    with pytest.raises(grpc.RpcError) as refused:
        get(_identity(world, "auditor"))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_an_equal_version_list_with_other_content_is_refused(world: World) -> None:
    """A second list signed under the version in force (a restored CA) is refused by the
    publisher and by a node reading it from its own file: the school stays refused."""
    ca = CertificateAuthority.load(world.fed.root / "ca")
    ca_file = world.fed.root / "ca" / DENYLIST_FILE
    in_force = verify(ca_file.read_bytes(), ca.cert)
    rogue = sign(
        DenyList(in_force.federation, in_force.version, frozenset(), issued_at=int(time.time())),
        _ca_key(world.fed),
    )
    good = ca_file.read_bytes()
    beta = world.servers["beta"]
    with capture_logs() as logs:
        ca_file.write_bytes(rogue)
        beta.denylist_file.write_bytes(rogue)

        def refused_twice() -> bool:
            reasons = [e for e in logs if e["event"] == "denylist.refused"]
            return sum(1 for e in reasons if e["reason"] == "conflict") >= 2

        _wait_for(refused_twice, "the publisher and node beta refusing the rogue list")
    try:
        for server in world.servers.values():
            assert _health(server, world.school) == grpc.StatusCode.PERMISSION_DENIED
    finally:
        ca_file.write_bytes(good)
        beta.denylist_file.write_bytes(world.originals["beta"])


def test_a_restarted_node_refuses_an_older_list(world: World) -> None:
    """Restarted with no publisher and its own (older) file, a node keeps the newest list
    it had accepted and still refuses the school."""
    alpha = world.servers.pop("alpha")
    alpha.stop()
    assert verify(alpha.denylist_file.read_bytes(), CertificateAuthority.load(
        world.fed.root / "ca").cert).version == 1  # fmt: skip
    with capture_logs() as logs:
        restarted = _start_node(world.fed, "alpha", {})
    world.servers["alpha"] = restarted
    older = [e for e in logs if e["event"] == "denylist.refused"]
    assert [(e["reason"], e["version"]) for e in older] == [("older", 1)]
    assert _health(restarted, world.school) == grpc.StatusCode.PERMISSION_DENIED
