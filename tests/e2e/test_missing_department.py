"""A department that is down or hung is named to the statistician within the deadline,
and nothing is published over the others."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.e2e.conftest import cli, trim
from tools.clients import importer
from tools.dev.federation import LocalFederation
from tools.dev.synth import DepartmentPlan

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


def stats(
    fed: LocalFederation, *extra: str, table: str = "education_form"
) -> tuple[int, str, str, float]:
    ep = fed.statistician_endpoint()
    started = time.monotonic()
    args = ["--coordinator", ep.address, "--server-name", ep.server_name or ""]
    args += ["--identity", str(ep.identity_dir), *extra, "--year", "2023/24"]  # the data's
    r = cli("stats", "table", "--by", table, *args)
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
    """With every department up, the table is published over all three."""
    code, out, _, _ = stats(running, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["areas"][0]["departments"] == sorted(d.id for d in running.departments)


def test_hung_department_is_named_within_the_deadline(running: LocalFederation) -> None:
    """A frozen node (SIGSTOP) is named within the deadline and nothing is published; once it
    is back, the same question is published, and the budget was charged only once."""
    victim = running.departments[1].id
    proc = running.nodes[victim].proc
    assert proc is not None
    proc.send_signal(signal.SIGSTOP)
    try:
        code, out, err, seconds = stats(running, "--by", "sex", table="age_band")
        assert code == 3
        assert f"{victim} (DEADLINE_EXCEEDED)" in err
        assert "nothing was published" in err
        assert out == ""
        assert seconds < DEADLINE + 10
    finally:
        proc.send_signal(signal.SIGCONT)
    code, out, err, _ = stats(running, "--by", "sex", "--json", table="age_band")
    assert code == 0, err
    assert len(json.loads(out)["areas"][0]["departments"]) == 3
    assert budget(running)["statistician_spent"] == "1/16"  # form, and sex × age once


def test_stopped_department_is_named(running: LocalFederation) -> None:
    """A department whose node has exited is named missing; nothing is published."""
    victim = running.departments[2].id
    running.stop_party(running.nodes[victim])
    code, out, err, _ = stats(running, "--by", "care_setting", table="age_band")
    assert code == 3
    assert f"{victim} (UNAVAILABLE)" in err
    assert out == ""
    assert "care_setting_by_age_band" not in budget(running)["published_tables"]


def budget(fed: LocalFederation) -> dict[str, Any]:
    """`childreg stats budget --json` as the demo statistician."""
    ep = fed.statistician_endpoint()
    r = cli("stats", "budget", "--json", "--year", "2023/24", "--coordinator", ep.address,
            "--server-name", ep.server_name or "", "--identity", str(ep.identity_dir))  # fmt: skip
    assert r.returncode == 0, r.stderr
    data: dict[str, Any] = json.loads(r.stdout)
    return data
