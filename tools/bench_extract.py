"""`childreg bench`, extracts: a school's request on loopback, with its audit commit.

(f) GetExtract latency p50/p99 through a real node over mutual TLS (grant and consent
    checks, the child's record decrypted, fields selected, signed, sealed, the audit leaf
    committed before the answer) ÷ one bare durable SQLCipher commit measured in the same
    run (an insert and a ``synchronous=FULL`` commit): goal p99 ≤ 5×.
"""

from __future__ import annotations

import datetime as dt
import secrets
import statistics
import time
from pathlib import Path
from typing import Any

import sqlcipher3
from nacl.public import PrivateKey

from childreg import csvformat
from childreg.models import ImportRecord
from childreg.v1 import consent_pb2 as cpb
from childreg.v1 import consent_pb2_grpc as cpb_grpc
from tools import importer, synth
from tools.federation import LocalFederation, Say

SCHOOL = "bench-school"


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of ``values`` by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def bare_commits(path: Path, n: int) -> list[float]:
    """Seconds of ``n`` single-row durable commits into a raw SQLCipher file."""
    conn: Any = sqlcipher3.connect(str(path), isolation_level=None)
    conn.execute(f"PRAGMA key = \"x'{secrets.token_hex(32)}'\"")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t(seq INTEGER PRIMARY KEY, body BLOB NOT NULL)")
    body = secrets.token_bytes(340)
    times = []
    for i in range(n):
        start = time.perf_counter()
        conn.execute("BEGIN")
        conn.execute("INSERT INTO t VALUES (?, ?)", (i, body))
        conn.execute("COMMIT")
        times.append(time.perf_counter() - start)
    conn.close()
    return times


def measure_extracts(root: Path, n: int, say: Say) -> dict[str, Any]:
    """(f): extract latency percentiles against a bare durable commit's."""
    synth.generate(1, root / "extract-data", seed=5)
    (file,) = [
        root / "extract-data" / d.file
        for d in synth.read_manifest(root / "extract-data").departments
    ]
    lines = file.read_text(encoding="utf-8").splitlines(keepends=True)
    file = root / "extract-data" / "department.csv"  # 1,000 children are plenty
    file.write_text("".join(lines[:1001]), encoding="utf-8")
    plan = synth.plan_departments(1)[0]
    # The per-caller and per-school limits are lifted: it measures latency, not policy.
    settings = {"audit_checkpoint_seconds": 0.2, "extract_rate_per_second": 1000,
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
        times = []
        with endpoint.channel() as channel:
            stub = cpb_grpc.ExtractServiceStub(channel)
            stub.GetExtract(request, timeout=30)  # warm-up: TLS handshake
            for _ in range(n):
                start = time.perf_counter()
                stub.GetExtract(request, timeout=30)
                times.append(time.perf_counter() - start)
    say(f"(f) {n} bare durable SQLCipher commits")
    commits = bare_commits(root / "bare-commits.db", n)
    p99, c99 = percentile(times, 0.99), percentile(commits, 0.99)
    return {
        "requests": n,
        "extract_p50_ms": round(statistics.median(times) * 1000, 2),
        "extract_p99_ms": round(p99 * 1000, 2),
        "commit_p50_ms": round(statistics.median(commits) * 1000, 3),
        "commit_p99_ms": round(c99 * 1000, 3),
        "p99_ratio": round(p99 / c99, 2),
        "goal_max_p99_ratio": 5.0,
    }
