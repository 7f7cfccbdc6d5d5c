"""A department that is down or hung is named to the statistician within the deadline."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.e2e.conftest import cli, trim
from tools import importer
from tools.federation import LocalFederation
from tools.synth import DepartmentPlan

DEADLINE = 3.0


@pytest.fixture(scope="module")
def running(
    tmp_path_factory: pytest.TempPathFactory, synthetic: tuple[list[DepartmentPlan], list[Path]]
) -> Iterator[LocalFederation]:
    """Three departments with 20 children each and a coordinator with a 3 s deadline."""
    plans, files = synthetic
    root = tmp_path_factory.mktemp("missing")
    fed = LocalFederation(root / "fed", plans)
    with fed:
        fed.setup()
        fed.start_nodes()
        for plan, f in zip(plans, files, strict=True):
            importer.import_file(fed.staff_endpoint(plan.id), trim(f, root / f"{plan.id}.csv", 20))
        fed.start_coordinator(deadline_seconds=DEADLINE)
        yield fed


def stats(fed: LocalFederation, *extra: str) -> tuple[int, str, str, float]:
    ep = fed.statistician_endpoint()
    started = time.monotonic()
    args = ["--coordinator", ep.address, "--server-name", ep.server_name or ""]
    args += ["--identity", str(ep.identity_dir), *extra]
    r = cli("stats", "table", "--by", "education_form", *args)
    return r.returncode, r.stdout, r.stderr, time.monotonic() - started


def test_every_service_answers_health_checks(running: LocalFederation) -> None:
    """Nodes and the coordinator report SERVING to the standard gRPC health check."""
    endpoints = [running.node_endpoint_as(d.id, "coordinator") for d in running.departments]
    endpoints.append(running.statistician_endpoint())
    for endpoint in endpoints:
        with endpoint.channel() as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=5
            )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        with endpoint.channel() as channel:
            watch = health_pb2_grpc.HealthStub(channel).Watch(
                health_pb2.HealthCheckRequest(service=""), timeout=5
            )
            with pytest.raises(grpc.RpcError) as info:
                next(watch)
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED  # would hold a worker


def test_all_departments_answer(running: LocalFederation) -> None:
    """With every department up, the table is complete and counts all 60 children."""
    code, out, _, _ = stats(running, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["complete"] is True
    assert sum(c["count"] for c in data["cells"]) == 60


def test_hung_department_is_named_within_the_deadline(running: LocalFederation) -> None:
    """A frozen node (SIGSTOP) is reported missing, by name, within the deadline plus start-up."""
    victim = running.departments[1].id
    proc = running.nodes[victim].proc
    assert proc is not None
    proc.send_signal(signal.SIGSTOP)
    try:
        code, out, err, seconds = stats(running)
        assert code == 3
        assert victim in err
        assert "did not answer" in err
        assert out == ""  # no partial numbers without --allow-incomplete
        assert seconds < DEADLINE + 10
        code, out, _, _ = stats(running, "--json", "--allow-incomplete")
        assert code == 3
        data = json.loads(out)
        assert data["complete"] is False
        assert data["missing_departments"] == [victim]
        assert sum(c["count"] for c in data["cells"]) == 40
    finally:
        proc.send_signal(signal.SIGCONT)


def test_stopped_department_is_named(running: LocalFederation) -> None:
    """A department whose node has exited is named missing; the others are still summed."""
    victim = running.departments[2].id
    running.stop_party(running.nodes[victim])
    code, out, err, _ = stats(running, "--csv", "--allow-incomplete")
    assert code == 3
    assert out.splitlines()[0] == "education_form,count"
    assert sum(int(line.rsplit(",", 1)[1]) for line in out.splitlines()[1:]) == 40
    assert f"INCOMPLETE table: missing departments {victim}" in err
