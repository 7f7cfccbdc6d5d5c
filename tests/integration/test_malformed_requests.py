"""Malformed request bytes at every RPC of the node, the coordinator and the witness.

Each party runs in-process as its ``serve`` command starts it (real mutual-TLS gRPC on
loopback, one server per party for the module, laid out by tools/dev/federation.py). Every
role sends three malformed messages — a string field holding invalid UTF-8, a truncated
message, a bad tag — as raw bytes to every method. The role table (childreg.authz.RULES)
decides the answer: PERMISSION_DENIED for roles it refuses (authorization comes before
decoding), INVALID_ARGUMENT naming the field "request" for roles it allows; never
INTERNAL. Each call has its ``rpc`` log line and, at the node, its audit leaf.
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from grpc_health.v1 import health_pb2
from structlog.testing import capture_logs

from childreg.audit.leaf import AuditEvent
from childreg.authz import RULES
from childreg.pki import ROLES, IdentityFiles
from childreg.revocation import DENYLIST_FILE
from childreg.rpc import TlsMaterial, secure_channel, violations_from_error
from childreg.v1 import audit_pb2, consent_pb2, records_pb2, statistics_pb2
from coordinator.config import CoordinatorConfig
from coordinator.server import start_coordinator
from node.config import NodeConfig
from node.server import start_node
from tools.dev.federation import LocalFederation
from tools.dev.synth import DepartmentPlan
from witness.config import WitnessConfig
from witness.server import start_witness

DEPT = DepartmentPlan("alpha", "Alpha", "baku", ("nasimi",))
RATE = {"rate_per_second": 1000.0, "rate_burst": 100_000}  # every call below fits


def _methods(*files: Any) -> list[MethodDescriptor]:
    return [m for f in files for s in f.DESCRIPTOR.services_by_name.values() for m in s.methods]


HEALTH = _methods(health_pb2)
HEALTH_CHECK = [m for m in HEALTH if m.name == "Check"]  # Watch is not offered
NODE_METHODS = [
    m
    for m in _methods(records_pb2, consent_pb2, statistics_pb2, audit_pb2)
    if m.containing_service.name not in ("NationalStatisticsService", "WitnessService")
] + HEALTH_CHECK
COORDINATOR_METHODS = [
    m for m in _methods(statistics_pb2) if m.containing_service.name == "NationalStatisticsService"
] + HEALTH_CHECK
WITNESS_METHODS = [
    m for m in _methods(audit_pb2) if m.containing_service.name == "WitnessService"
] + HEALTH_CHECK


def full_name(m: MethodDescriptor) -> str:
    """The method's gRPC path, as the role table names it."""
    return f"/{m.containing_service.full_name}/{m.name}"


def _key(number: int, wire_type: int) -> bytes:
    return bytes([number << 3 | wire_type])  # field numbers used here are below 16


def _invalid_utf8(message: Descriptor) -> bytes | None:
    """A message whose first string field (perhaps nested) holds invalid UTF-8."""
    for f in message.fields:
        if f.number >= 16:
            continue
        if f.type == FieldDescriptor.TYPE_STRING:
            return _key(f.number, 2) + b"\x02\xff\xfe"
    for f in message.fields:
        if f.number < 16 and f.message_type is not None:
            inner = _invalid_utf8(f.message_type)
            if inner is not None:
                return _key(f.number, 2) + bytes([len(inner)]) + inner
    return None


def malformed(m: MethodDescriptor) -> dict[str, bytes]:
    """The malformed requests for ``m``: invalid UTF-8 (if it has a string), truncated, bad tag."""
    cases = {"truncated": b"\x0a\x05ab", "bad-tag": b"\x0f\x00"}  # wire type 7 does not exist
    bad_text = _invalid_utf8(m.input_type)
    if bad_text is not None:
        cases["invalid-utf8"] = bad_text
    return cases


@dataclass
class Parties:
    """The three running servers, their server names, and a TLS identity per role."""

    fed: LocalFederation
    node: Any
    coordinator: Any
    witness: Any
    roles: dict[str, TlsMaterial]
    ids: dict[str, str]

    def leaves(self) -> list[AuditEvent]:
        """Every leaf the node holds now."""
        log = self.node.audit
        return [AuditEvent.from_bytes(b) for b in log.entries(0, log.size)]


def _load(path: Path) -> dict[str, Any]:
    return tomllib.loads(path.read_text())


@pytest.fixture(scope="module")
def parties(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Parties]:
    """A node, a coordinator and a witness of one federation, and one identity per role."""
    root = tmp_path_factory.mktemp("malformed")
    fed = LocalFederation(root / "fed", [DEPT], witness=True, node_settings=RATE)
    fed.setup()
    node = start_node(NodeConfig.model_validate(_load(fed.nodes[DEPT.id].config)))
    assert fed.witness_party is not None
    witness = start_witness(WitnessConfig.model_validate(_load(fed.witness_party.config) | RATE))
    coordinator = start_coordinator(
        CoordinatorConfig.model_validate(
            {
                "federation": fed.federation,
                "listen": "127.0.0.1:0",
                "identity_dir": str(fed.identity("coordinator")),
                "denylist_file": str(fed.root / "ca" / DENYLIST_FILE),
                "statistics_authority_key": str(fed.authority_dir / "authority.pub"),
                "catalogue_file": str(fed.catalogue_file),
                "aggregation": "per-department",
                "state_dir": str(root / "coordinator-state"),
                "statisticians": [{"id": "alice", "rho": "1/4"}],
                "departments": [
                    {
                        "id": DEPT.id,
                        "address": f"127.0.0.1:{node.port}",
                        "server_name": fed.nodes[DEPT.id].server_name,
                        "region": DEPT.region,
                        "districts": list(DEPT.districts),
                    }
                ],
                **RATE,
            }
        )
    )
    dirs = {
        "node": fed.identity(f"node-{DEPT.id}"),
        "coordinator": fed.identity("coordinator"),
        "statistician": fed.identity("statistician"),
        "auditor": fed.identity("auditor"),
        "department-staff": fed.identity(f"staff-{DEPT.id}"),
        "witness": fed.identity("witness"),
        "school": fed.issue_identity("school", "school-1"),
    }
    assert set(dirs) == set(ROLES)
    roles = {role: TlsMaterial(*_read(d)) for role, d in dirs.items()}
    ids = {role: str(IdentityFiles(d).spiffe_id()) for role, d in dirs.items()}
    yield Parties(fed, node, coordinator, witness, roles, ids)
    coordinator.stop(grace=0)
    witness.stop(grace=0)
    node.stop(grace=0)


def material_actor(parties: Parties, role: str) -> str:
    """The SPIFFE id a role's certificate carries (a leaf's actor)."""
    return str(parties.ids[role])


def _read(directory: Path) -> tuple[bytes, bytes, bytes]:
    return (
        (directory / "ca.crt").read_bytes(),
        (directory / "tls.crt").read_bytes(),
        (directory / "tls.key").read_bytes(),
    )


def send(channel: grpc.Channel, m: MethodDescriptor, raw: bytes) -> grpc.RpcError:
    """Send ``raw`` as ``m``'s request (unencoded: no serializer); the error it gets."""
    try:
        if m.client_streaming:
            channel.stream_unary(full_name(m), None, None)(iter([raw]), timeout=10)
        elif m.server_streaming:
            list(channel.unary_stream(full_name(m), None, None)(raw, timeout=10))
        else:
            channel.unary_unary(full_name(m), None, None)(raw, timeout=10)
    except grpc.RpcError as err:
        return err
    raise AssertionError(f"{full_name(m)} accepted a malformed request")


def _rpc_lines(logs: list[MutableMapping[str, Any]], method: str) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if e["event"] == "rpc" and e["method"] == method]


def _wait_for_lines(
    logs: list[MutableMapping[str, Any]], method: str, count: int
) -> list[MutableMapping[str, Any]]:
    """The ``rpc`` lines of ``method`` once ``count`` are written (each is written when its
    call has ended, which can be just after the client has its answer)."""
    for _ in range(200):
        lines = _rpc_lines(logs, method)
        if len(lines) >= count:
            return lines
        time.sleep(0.01)
    return _rpc_lines(logs, method)


@pytest.mark.parametrize(
    ("party", "methods", "server_name"),
    [
        ("node", NODE_METHODS, f"{DEPT.id}.node.test.childreg"),
        ("coordinator", COORDINATOR_METHODS, "coordinator.test.childreg"),
        ("witness", WITNESS_METHODS, "witness.test.childreg"),
    ],
)
def test_malformed_bytes_at_every_rpc_by_every_role(
    parties: Parties, party: str, methods: list[MethodDescriptor], server_name: str
) -> None:
    """Every malformed request gets PERMISSION_DENIED if the role table refuses the caller,
    else INVALID_ARGUMENT naming "request"; each has its rpc line and, at the node, its leaf."""
    server_name = server_name.replace("test.childreg", parties.fed.federation)
    port = getattr(parties, party).port
    before = len(parties.leaves())
    expected_leaves: list[tuple[str, str, str, str]] = []
    with capture_logs() as logs:
        for role, material in parties.roles.items():
            channel = secure_channel(f"127.0.0.1:{port}", material, server_name)
            try:
                for m in methods:
                    allowed = role in RULES.get(full_name(m), frozenset())
                    for case, raw in malformed(m).items():
                        err = send(channel, m, raw)
                        want = (
                            grpc.StatusCode.INVALID_ARGUMENT
                            if allowed
                            else grpc.StatusCode.PERMISSION_DENIED
                        )
                        assert err.code() == want, (role, full_name(m), case, err.details())
                        if allowed:
                            fields = [v.field for v in violations_from_error(err)]
                            assert fields == ["request"], (role, full_name(m), case)
                        action = "records.import" if allowed and m.client_streaming else "denied"
                        actor = material_actor(parties, role)
                        expected_leaves.append((action, actor, full_name(m), want.name))
            finally:
                channel.close()
        for m in methods:
            per_method = len(parties.roles) * len(malformed(m))
            lines = _wait_for_lines(logs, full_name(m), per_method)
            assert len(lines) == per_method, full_name(m)
            assert {line["status"] for line in lines} <= {"INVALID_ARGUMENT", "PERMISSION_DENIED"}
        assert not [e for e in logs if e["event"] == "rpc.unexpected_error"]
    new = parties.leaves()[before:]
    if party != "node":
        assert new == []
        return
    got = [
        (e.action, e.actor,
         e.purpose if e.action == "denied" else "/childreg.v1.RecordsService/BulkImport",
         e.outcome)
        for e in new
    ]  # fmt: skip
    assert sorted(got) == sorted(expected_leaves)
    assert all(e.request == "" or len(e.request) == 64 for e in new)  # a digest, never bytes
