"""`childreg bench`, extracts: a school's request on loopback, with its audit commit.

(f) GetExtract latency p50/p99 through a real node over mutual TLS (grant and consent
    checks, the fields the purpose allows read and decrypted, signed, sealed, the audit
    leaf committed before the answer) ÷ one bare durable SQLCipher commit measured in the same
    run on the idle machine after the federation stopped (an insert and a
    ``synchronous=FULL`` commit): goal p99 ≤ 5×. Beside it, three more baselines measured
    interleaved with the extracts, so on the same machine at the same moment: the same
    bare commit (the disk and the load the extract's own audit commit meets), and the
    floor of the transport: a gRPC health check to the same node over the same channel
    (mutual TLS, the node's authorization and logging, no work), and one to a bare gRPC
    server with the node's certificate and no childreg code (tools/dev/bare_grpc.py), which
    is what gRPC-Python with mutual TLS costs on this machine whatever the node does.

The node checkpoints its audit log every 5 s here (60 s by default): often enough for the
witness to cosign before the measurement, rarely enough that checkpoints are not a
background load a real node does not have.
"""

from __future__ import annotations

import datetime as dt
import secrets
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import sqlcipher3
from grpc_health.v1 import health_pb2, health_pb2_grpc
from nacl.public import PrivateKey

from childreg import csvformat
from childreg.models import ImportRecord
from childreg.seed import SEED_ACADEMIC_YEAR
from childreg.v1 import consent_pb2 as cpb
from childreg.v1 import consent_pb2_grpc as cpb_grpc
from tools.clients import importer
from tools.dev import synth
from tools.dev.bare_grpc import BareServer
from tools.dev.federation import LocalFederation, Say

SCHOOL = "bench-school"


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of ``values`` by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


class BareCommits:
    """Single-row durable commits into a raw SQLCipher file, timed one at a time."""

    def __init__(self, path: Path) -> None:
        self._conn: Any = sqlcipher3.connect(str(path), isolation_level=None)
        self._conn.execute(f"PRAGMA key = \"x'{secrets.token_hex(32)}'\"")
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("CREATE TABLE t(seq INTEGER PRIMARY KEY, body BLOB NOT NULL)")
        self._body = secrets.token_bytes(340)
        self._seq = 0

    def once(self) -> float:
        """Seconds of one insert and its ``synchronous=FULL`` commit."""
        self._seq += 1
        start = time.perf_counter()
        self._conn.execute("BEGIN")
        self._conn.execute("INSERT INTO t VALUES (?, ?)", (self._seq, self._body))
        self._conn.execute("COMMIT")
        return time.perf_counter() - start

    def close(self) -> None:
        """Close the file."""
        self._conn.close()


def measure_extracts(root: Path, n: int, say: Say) -> dict[str, Any]:
    """(f): extract latency percentiles against a bare durable commit's."""
    synth.generate(1, root / "extract-data", seed=5, academic_year=SEED_ACADEMIC_YEAR)
    (file,) = [
        root / "extract-data" / d.file
        for d in synth.read_manifest(root / "extract-data").departments
    ]
    lines = file.read_text(encoding="utf-8").splitlines(keepends=True)
    file = root / "extract-data" / "department.csv"  # 1,000 children are plenty
    file.write_text("".join(lines[:1001]), encoding="utf-8")
    plan = synth.plan_departments(1)[0]
    # The per-caller and per-school limits are lifted: it measures latency, not policy.
    settings = {"audit_checkpoint_seconds": 5.0, "extract_rate_per_second": 1000,
                "extract_rate_burst": 10_000, "rate_per_second": 100_000,
                "rate_burst": 1_000_000}  # fmt: skip
    with LocalFederation(root / "extract-fed", [plan], witness=True,
                         node_settings=settings) as fed:  # fmt: skip
        fed.setup()
        fed.issue_identity("school", SCHOOL)
        fed.start_nodes()
        say(f"(f) importing a department and granting a consent for {n} extract requests")
        importer.import_file(fed.staff_endpoint(plan.id), file)
        child = next(
            r for r in csvformat.iter_rows(file) if isinstance(r, ImportRecord) and r.assessment
        )
        today = dt.date.today()
        with fed.staff_endpoint(plan.id).channel() as channel:
            grant = cpb_grpc.ConsentServiceStub(channel).GrantConsent(
                cpb.ConsentRequest(
                    child_id=child.child.child_id, guardian_name="Bench Guardian",
                    purpose="iep_preparation", school=f"spiffe://{fed.federation}/school/{SCHOOL}",
                    valid_from=today.isoformat(),
                    valid_until=(today + dt.timedelta(days=1)).isoformat(), evidence_ref="bench",
                ),
                timeout=30,
            ).grant  # fmt: skip
        fed.wait_witnessed(plan.id)  # extracts fail closed until a witness cosigned the log
        node = fed.nodes[plan.id]
        endpoint = type(fed.staff_endpoint(plan.id))(
            node.address, fed.identity(f"school-{SCHOOL}"), node.server_name, 30
        )
        request = cpb.ExtractRequest(
            grant=grant, recipient_key=bytes(PrivateKey.generate().public_key)
        )
        say(
            f"(f) {n} extracts, each followed by a health check to the node, one to a bare "
            "gRPC server and a bare durable commit"
        )
        with (
            BareServer(fed.identity(f"node-{plan.id}")) as bare_port,
            endpoint.channel() as channel,
            replace(endpoint, address=f"127.0.0.1:{bare_port}").channel() as bare_channel,
        ):
            times, floor, bare_floor, beside = _interleaved(n, root, channel, bare_channel, request)
    say(f"(f) {n} bare durable SQLCipher commits on the idle machine")
    idle = BareCommits(root / "bare-commits-idle.db")
    try:
        commits = [idle.once() for _ in range(n)]
    finally:
        idle.close()
    p99, c99 = percentile(times, 0.99), percentile(commits, 0.99)
    b99 = percentile(beside, 0.99)
    return {
        "requests": n,
        "extract_p50_ms": _ms(statistics.median(times)),
        "extract_p99_ms": _ms(p99),
        "commit_p50_ms": _ms(statistics.median(commits), 3),
        "commit_p99_ms": _ms(c99, 3),
        "p99_ratio": round(p99 / c99, 2),
        "commit_beside_p50_ms": _ms(statistics.median(beside), 3),
        "commit_beside_p99_ms": _ms(b99, 3),
        "p99_ratio_beside": round(p99 / b99, 2),
        **_floor("rpc_floor", floor, c99),  # ÷ the idle commit
        **_floor("bare_grpc_floor", bare_floor, c99),
        "goal_max_p99_ratio": 5.0,
    }


def _ms(seconds: float, digits: int = 2) -> float:
    return round(seconds * 1000, digits)


def _floor(name: str, times: list[float], commit_p99: float) -> dict[str, float]:
    """p50, p99 and p99 ÷ the idle commit's p99 of one floor's times."""
    p99 = percentile(times, 0.99)
    return {
        f"{name}_p50_ms": _ms(statistics.median(times)),
        f"{name}_p99_ms": _ms(p99),
        f"{name}_p99_ratio": round(p99 / commit_p99, 2),
    }


def _interleaved(
    n: int,
    root: Path,
    channel: grpc.Channel,
    bare_channel: grpc.Channel,
    request: cpb.ExtractRequest,
) -> tuple[list[float], list[float], list[float], list[float]]:
    """Seconds of ``n`` extracts, node health checks, bare-server health checks and bare
    durable commits, one of each in turn, so that the four see the same machine: the same
    disk (whose fsync time drifts over a run), the same background load."""
    stub = cpb_grpc.ExtractServiceStub(channel)
    health = health_pb2_grpc.HealthStub(channel)
    bare_health = health_pb2_grpc.HealthStub(bare_channel)
    check = health_pb2.HealthCheckRequest()
    stub.GetExtract(request, timeout=30)  # warm-up: TLS handshakes
    bare_health.Check(check, timeout=30)
    times: list[float] = []
    floor: list[float] = []
    bare_floor: list[float] = []
    beside: list[float] = []
    bare = BareCommits(root / "bare-commits.db")
    try:
        for _ in range(n):
            for call, sink in (
                (lambda: stub.GetExtract(request, timeout=30), times),
                (lambda: health.Check(check, timeout=30), floor),
                (lambda: bare_health.Check(check, timeout=30), bare_floor),
            ):
                start = time.perf_counter()
                call()
                sink.append(time.perf_counter() - start)
            beside.append(bare.once())
    finally:
        bare.close()
    return times, floor, bare_floor, beside
