"""`childreg bench`: measured speed, each figure against a physical limit measured in the same run.

(a) children imported per second through a real node's gRPC ``BulkImport`` (validation,
    per-child keys, field encryption, SQLCipher) ÷ the same rows inserted straight into a
    raw SQLCipher file with no validation or field encryption: the median of several
    runs, each a fresh node and a fresh raw file (a regression guard: at least 0.2);
(b) national tables through the coordinator at 10 and 50 departments: the first
    computation (budget, noisy round, consistent post-processing, release store) and a
    repeat (served from the release store), each ÷ the exact-count work of the
    foundation (every department's exact dense count from its own SQLCipher file, one
    after another in one process, summed: no noise, no budget, no post-processing, no
    transport — and no parallelism, which the real federation has across its node
    processes), with one GROUP BY over a single SQLCipher file holding every child (the
    central-database baseline) beside it;
(c) peak memory of one node holding 100,000 children: its process's peak resident size
    and the peak proportional set size of the process with its import workers
    (tools/dev/procmem.py);
(d)/(e) audit appends and proofs (tools/dev/bench_audit.py); (f) the school extract
    (tools/dev/bench_extract.py);
(g) the national round under secure aggregation ÷ the stage-1 round, at the same sizes as
    (b), in the same federation (tools/dev/bench_secagg.py);
(k) the guardian's receipt: its PDF render ÷ its HTML render (tools/dev/bench_receipts.py);
(l) the web console's search page, child page and registration on a node of 100,000
    children, each p95 ÷ the matching gRPC call's (tools/dev/bench_console.py).
(m)/(n) the online backup ÷ copying the node's files, and the restore drill's work
    (tools/dev/bench_backup.py).
(o) dropout-tolerant secure rounds with the nodes in process: a round with 1 of 50
    departments down ÷ one with none, and the coordinator's time per round at 50, 100 and
    200 departments (tools/dev/bench_dropout.py).

Timings are reported, never asserted: tests only check that the benchmark runs.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import statistics
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import grpc
import sqlcipher3
import typer
from rich.table import Table

from childreg import codes, csvformat
from childreg.models import ImportRecord, TableQuery
from childreg.seed import SEED_ACADEMIC_YEAR
from childreg.v1 import records_pb2 as pb
from childreg.v1 import records_pb2_grpc as pb_grpc
from node.config import NodeConfig
from node.rpc.convert import import_batches
from node.server import open_node
from node.statistics.counts import count_vector
from node.store.base import (
    RecordStore,
    StoredAssessment,
    StoredCareSetting,
    StoredChild,
    StoredPlacement,
)
from node.store.sqlcipher import SqlCipherStore
from tools.cli.console import err, out
from tools.cli.options import JsonOpt
from tools.clients.statistician import fetch_table
from tools.dev import (
    bench_audit,
    bench_backup,
    bench_console,
    bench_dropout,
    bench_extract,
    bench_kek,
    bench_receipts,
    bench_search,
    bench_secagg,
    synth,
)
from tools.dev.federation import FEDERATION, LocalFederation, Say, default_catalogue
from tools.dev.procmem import TreePeak, peak_rss_mb, process_tree, tree_pss_mb

SEALED_FIELDS = ("icf_codes", "diagnoses", "functioning", "supports", "accommodations")
#: The benchmark federation's snapshot cap (zCDP ρ): large, so that every attempt of (b)
#: can be a first computation. Never a setting for a real federation.
BENCH_RHO = "1000"

#: Catalogue tables measured in (b), published in this order (later ones must agree
#: with earlier ones, so post-processing grows with the order).
TABLES: tuple[tuple[str, ...], ...] = (
    ("education_form",),
    ("education_form", "sex"),
    ("care_setting", "age_band"),
)


@dataclass(frozen=True)
class Sizes:
    """How big each measurement is."""

    import_children: int
    departments: tuple[int, ...]
    children_per_department: int
    memory_children: int
    repeats: int
    audit_appends: int
    proof_leaves: int
    extract_requests: int
    search_children: int
    search_queries: int
    search_registrations: int
    kek_children: int = bench_kek.GOAL_CHILDREN  # (j): children whose keys are rewrapped
    console_children: int = 100_000  # (l): children on the node the console serves
    console_requests: int = 200  # (l): requests of each console page and gRPC call
    backup_children: int = 100_000  # (m), (n): children of the node backed up and restored
    dropout_departments: tuple[int, ...] = (50, 100, 200)  # (o), nodes in process


FULL = Sizes(20_000, (10, 50), 20_000, 100_000, 5, 2_000, 1_000_000, 500, 100_000, 500, 300)
QUICK = Sizes(
    600, (3, 5), 300, 1_000, 2, 100, 10_000, 30, 1_000, 30, 20, 500, 500, 10, 500, (5, 10)
)


# ----- data ---------------------------------------------------------------------------
def base_records(workdir: Path) -> list[ImportRecord]:
    """One synthetic national population (the demo's), parsed and validated."""
    synth.generate(1, workdir, seed=7, academic_year=SEED_ACADEMIC_YEAR)
    (file,) = [workdir / d.file for d in synth.read_manifest(workdir).departments]
    return [r for r in csvformat.iter_rows(file) if isinstance(r, ImportRecord)]


def scaled(
    base: Sequence[ImportRecord], n: int, tag: str, year: str | None = None
) -> Iterator[ImportRecord]:
    """``n`` records cycling through ``base`` with fresh child ids (and no national ids),
    placed in academic year ``year`` when given."""
    for i in range(n):
        r = base[i % len(base)]
        cid = f"{tag}-{i:07d}"
        yield r.model_copy(
            update={
                "line": i + 2,
                "child": r.child.model_copy(update={"child_id": cid, "national_id": None}),
                "placement": r.placement.model_copy(
                    update={"child_id": cid} | ({"academic_year": year} if year else {})
                ),
                "care": r.care.model_copy(update={"child_id": cid}) if r.care else None,
                "assessment": (
                    r.assessment.model_copy(update={"child_id": cid}) if r.assessment else None
                ),
            }
        )


def put_stored(store: RecordStore, records: Iterator[ImportRecord]) -> int:
    """Insert records in stored form with realistic sealed-blob sizes (no crypto; for tables)."""
    n = 0
    with store.atomic():
        for r in records:
            c = r.child
            store.insert_child(
                StoredChild(c.child_id, 1, os.urandom(72), None, c.date_of_birth, c.sex,
                            c.district, os.urandom(160))
            )  # fmt: skip
            p = r.placement
            store.upsert_placement(
                StoredPlacement(p.child_id, p.academic_year, p.education_form, p.institution)
            )
            if r.care is not None:
                store.put_care_setting(
                    StoredCareSetting(c.child_id, r.care.care_setting, r.care.since)
                )
            if (a := r.assessment) is not None:
                store.add_assessment(
                    StoredAssessment(
                        c.child_id, 0, a.assessment_date, a.commission, a.impairment_band,
                        a.recommended_form, a.next_review,
                        {f: os.urandom(64) for f in SEALED_FIELDS},
                    )
                )  # fmt: skip
            n += 1
    return n


# ----- (a) import ---------------------------------------------------------------------
def raw_insert_rate(path: Path, records: Sequence[ImportRecord]) -> float:
    """Rows per second for the same children inserted straight into raw SQLCipher tables."""
    child_rows, placement_rows, care_rows, assessment_rows = [], [], [], []
    for r in records:
        c, p = r.child, r.placement
        child_rows.append((c.child_id, c.national_id, c.given_name, c.family_name,
                           c.date_of_birth.isoformat(), c.sex, c.district, c.guardian_name,
                           c.guardian_phone))  # fmt: skip
        placement_rows.append((p.child_id, p.academic_year, p.education_form, p.institution))
        if r.care:
            care_rows.append((c.child_id, r.care.care_setting, r.care.since.isoformat()))
        if (a := r.assessment) is not None:
            assessment_rows.append((c.child_id, a.assessment_date.isoformat(), a.commission,
                                    a.impairment_band, ";".join(a.icf_codes),
                                    ";".join(a.diagnoses), str(a.functioning),
                                    ";".join(a.supports), ";".join(a.accommodations)))  # fmt: skip
    conn = sqlcipher3.connect(str(path), isolation_level=None)
    conn.execute(f"PRAGMA key = \"x'{secrets.token_hex(32)}'\"")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.executescript(
        "CREATE TABLE child(id TEXT PRIMARY KEY, nid, gn, fn, dob, sex, district, g, ph);"
        "CREATE TABLE placement(id, year, form, inst, PRIMARY KEY(id, year));"
        "CREATE TABLE care(id, setting, since, PRIMARY KEY(id, since));"
        "CREATE TABLE assessment(id, date, commission, band, icf, dx, fn, sup, acc);"
    )
    start = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO child VALUES (?,?,?,?,?,?,?,?,?)", child_rows)
    conn.executemany("INSERT INTO placement VALUES (?,?,?,?)", placement_rows)
    conn.executemany("INSERT INTO care VALUES (?,?,?)", care_rows)
    conn.executemany("INSERT INTO assessment VALUES (?,?,?,?,?,?,?,?,?)", assessment_rows)
    conn.execute("COMMIT")
    seconds = time.perf_counter() - start
    conn.close()
    return len(records) / seconds


def grpc_import(fed: LocalFederation, dept: str, records: Sequence[ImportRecord]) -> float:
    """Seconds to stream pre-built records through a real node's BulkImport."""
    messages = list(import_batches(records))
    with fed.staff_endpoint(dept).channel() as channel:
        stub = pb_grpc.RecordsServiceStub(channel)
        grpc.channel_ready_future(channel).result(timeout=30)  # TLS handshake outside the timing
        start = time.perf_counter()
        summary: pb.ImportSummary = stub.BulkImport(iter(messages), timeout=1800)
        seconds = time.perf_counter() - start
    assert summary.imported == len(records)
    return seconds


def measure_import(
    base: list[ImportRecord], n: int, runs: int, root: Path, say: Say
) -> dict[str, Any]:
    """(a): node import rate ÷ raw SQLCipher insert rate, the median of ``runs`` pairs.

    Each run imports into a fresh node and then inserts the same rows into a fresh raw
    file, so a pair shares the machine's state of the moment; the reported rates are
    those of the pair with the median ratio (the lower of two).
    """
    records = list(scaled(base, n, "imp"))
    plan = synth.plan_departments(1)[0]
    pairs: list[tuple[float, float]] = []
    for run in range(1, runs + 1):
        with LocalFederation(root / f"import-{run}", [plan], say=say) as fed:
            fed.setup()
            fed.start_nodes()
            say(f"(a) run {run}/{runs}: importing {n} children through the node's BulkImport")
            seconds = grpc_import(fed, plan.id, records)
        say(f"(a) run {run}/{runs}: inserting the same children into a raw SQLCipher file")
        pairs.append((n / seconds, raw_insert_rate(root / f"raw-{run}.db", records)))
    by_ratio = sorted(pairs, key=lambda pair: pair[0] / pair[1])
    node_rate, raw = by_ratio[(runs - 1) // 2]
    return {
        "children": n,
        "runs": runs,
        "node_import_per_second": round(node_rate),
        "raw_sqlcipher_insert_per_second": round(raw),
        "ratio": round(node_rate / raw, 3),
        "ratio_min": round(by_ratio[0][0] / by_ratio[0][1], 3),
        "ratio_max": round(by_ratio[-1][0] / by_ratio[-1][1], 3),
        "ratios": [round(node / raw, 3) for node, raw in pairs],
        "guard_min_ratio": 0.2,
    }


# ----- (b) national table -------------------------------------------------------------
def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure_tables(
    base: list[ImportRecord], sizes: Sizes, root: Path, say: Say
) -> dict[str, list[dict[str, Any]]]:
    """(b): first computation and repeat ÷ the exact-count path, and ÷ a central GROUP BY;
    then (g) in the same federation: secure-aggregation rounds ÷ stage-1 rounds."""
    most = max(sizes.departments)
    per = sizes.children_per_department
    plans = synth.plan_departments(most)
    central = SqlCipherStore.open(root / "central.db", secrets.token_hex(32), create=True)
    queries = [TableQuery(academic_year=SEED_ACADEMIC_YEAR, dimensions=d) for d in TABLES]
    # Each measured first computation must really be a first one at the nodes too (a node
    # answers a repeat from its ledger), so every attempt uses a new catalogue version,
    # and this benchmark federation's budget is large enough for all of them.
    with LocalFederation(
        root / "tables",
        plans,
        say=say,
        catalogue=default_catalogue(FEDERATION, 1, BENCH_RHO),
        max_snapshot_rho=BENCH_RHO,
        aggregation="per-department",  # (g) switches to secure aggregation at the end
    ) as fed:
        fed.setup()
        say(f"(b) filling {most} node stores with {per} children each, and the central file")
        stores = []
        extra_years = bench_secagg.years_to_fill(sizes.departments, SEED_ACADEMIC_YEAR)
        for i, plan in enumerate(plans):
            store, _ = open_node(NodeConfig.model_validate(_node_settings(fed, plan.id)))
            put_stored(store, scaled(base, per, f"d{i:03d}"))
            for year, holders in extra_years.items():  # (g): one snapshot per size
                if i < holders:
                    put_stored(store, scaled(base, per, f"d{i:03d}y{year[:4]}", year))
            stores.append(store)
        exact: dict[tuple[int, tuple[str, ...]], float] = {}
        central_s: dict[tuple[int, tuple[str, ...]], float] = {}
        filled = 0
        try:
            for n in sorted(sizes.departments):
                filled += put_stored(
                    central,
                    (r for i in range(filled // per, n) for r in scaled(base, per, f"d{i:03d}")),
                )
                for q in queries:
                    exact[n, q.dimensions] = median_seconds(
                        partial(_exact_national, stores[:n], q), sizes.repeats
                    )
                    central_s[n, q.dimensions] = median_seconds(
                        partial(
                            central.count_table, SEED_ACADEMIC_YEAR, q.reference_date, q.dimensions
                        ),
                        sizes.repeats,
                    )
        finally:
            for store in stores:
                store.close()
            central.close()
        fed.start_nodes()
        results: list[dict[str, Any]] = []
        version = 1
        for n in sorted(sizes.departments):
            first: dict[tuple[str, ...], list[float]] = {q.dimensions: [] for q in queries}
            for attempt in range(sizes.repeats):
                # A fresh release store and a new catalogue version each time, so each table
                # is charged, counted, noised and post-processed anew everywhere.
                version += 1
                fed.sign_catalogue(default_catalogue(FEDERATION, version, BENCH_RHO))
                fed.restart_coordinator([p.id for p in plans[:n]], state=f"state-{n}-{attempt}")
                endpoint = fed.statistician_endpoint()
                for q in queries:
                    say(f"(b) {n} departments: first computation by {' × '.join(q.dimensions)}")
                    first[q.dimensions].append(_seconds(partial(fetch_table, endpoint, q)))
            for q in queries:
                repeat_s = median_seconds(partial(fetch_table, endpoint, q), sizes.repeats)
                first_s = statistics.median(first[q.dimensions])
                exact_s = exact[n, q.dimensions]
                results.append(
                    {
                        "departments": n,
                        "children": n * per,
                        "dimensions": list(q.dimensions),
                        "first_ms": round(first_s * 1000, 1),
                        "repeat_ms": round(repeat_s * 1000, 1),
                        "exact_count_ms": round(exact_s * 1000, 1),
                        "central_group_by_ms": round(central_s[n, q.dimensions] * 1000, 1),
                        "first_ratio": round(first_s / exact_s, 3),
                        "repeat_ratio": round(repeat_s / exact_s, 3),
                    }
                )
        rounds = bench_secagg.measure_rounds(
            fed,
            sizes.departments,
            TABLES,
            seed_year=SEED_ACADEMIC_YEAR,
            rho=BENCH_RHO,
            repeats=sizes.repeats,
            first_version=version,
            say=say,
        )
    return {"national_table": results, "secure_rounds": rounds}


def _exact_national(stores: Sequence[RecordStore], query: TableQuery) -> list[int]:
    """The foundation's exact national table: every department's dense count, summed."""
    total = [0] * codes.grid_size(query.dimensions)
    for store in stores:
        for i, v in enumerate(count_vector(store, query)):
            total[i] += v
    return total


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _node_settings(fed: LocalFederation, dept: str) -> dict[str, Any]:
    return tomllib.loads(fed.nodes[dept].config.read_text(encoding="utf-8"))


# ----- (c) memory ---------------------------------------------------------------------
def measure_memory(base: list[ImportRecord], n: int, root: Path, say: Say) -> dict[str, Any]:
    """(c): peak memory of one node (its process and import workers) importing ``n``
    children, then answering a table."""
    plan = synth.plan_departments(1)[0]
    with LocalFederation(root / "memory", [plan], say=say) as fed:
        fed.setup()
        fed.start_nodes()
        proc = fed.nodes[plan.id].proc
        assert proc is not None
        idle = tree_pss_mb(proc.pid)
        workers = len(process_tree(proc.pid)) - 1
        say(f"(c) importing {n} children into one node and asking for a table")
        with TreePeak(proc.pid) as tree:
            grpc_import(fed, plan.id, list(scaled(base, n, "mem")))
            fed.start_coordinator()
            fetch_table(
                fed.statistician_endpoint(),
                TableQuery(academic_year=SEED_ACADEMIC_YEAR, dimensions=TABLES[-1]),
            )
        peak_process = peak_rss_mb(proc.pid)
    return {
        "children": n,
        "import_workers": workers,
        "idle_node_mb": round(idle, 1),
        "peak_node_process_rss_mb": round(peak_process, 1),
        "peak_node_with_workers_pss_mb": round(tree.peak_mb, 1),
        "peak_node_mb": round(max(peak_process, tree.peak_mb), 1),
        "goal_max_mb": 150,
    }


# ----- command ------------------------------------------------------------------------
def run(sizes: Sizes, say: Say) -> dict[str, Any]:
    """Every measurement, in one run, on this machine."""
    with tempfile.TemporaryDirectory(prefix="childreg-bench-") as tmp:
        root = Path(tmp)
        say("generating the synthetic population")
        base = base_records(root / "synthetic")
        return {
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "sqlite": sqlcipher3.sqlite_version,
            },
            "import": measure_import(base, sizes.import_children, sizes.repeats, root, say),
            **measure_tables(base, sizes, root, say),
            "memory": measure_memory(base, sizes.memory_children, root, say),
            "audit_appends": _say_then(
                say, f"(d) {sizes.audit_appends} durable audit appends and raw inserts",
                lambda: bench_audit.measure_appends(root, sizes.audit_appends),
            ),
            "audit_proofs": _say_then(
                say, f"(e) proofs from an audit log of {sizes.proof_leaves:,} leaves",
                lambda: bench_audit.measure_proofs(root, sizes.proof_leaves),
            ),
            "extracts": bench_extract.measure_extracts(root, sizes.extract_requests, say),
            **bench_search.measure_search_figures(
                root, sizes.search_children, sizes.search_queries, sizes.search_registrations,
                say,
            ),
            "kek_rotation": bench_kek.measure_kek_rotation(
                list(scaled(base, sizes.kek_children, "kek")), root, say
            ),
            "receipts": _say_then(
                say, "(k) the guardian's receipt as HTML and as PDF",
                lambda: bench_receipts.measure_receipts(5 * sizes.repeats),
            ),
            "console": bench_console.measure_console(
                root, sizes.console_children, sizes.console_requests, say
            ),
            "backup": bench_backup.measure_backup_restore(
                list(scaled(base, sizes.backup_children, "bak")), root, say,
                changes=min(1_000, sizes.backup_children),
            ),
            "dropout_rounds": bench_dropout.measure_dropout_rounds(
                root, sizes.dropout_departments, sizes.repeats, say
            ),
        }  # fmt: skip


def _say_then(say: Say, message: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    say(message)
    return fn()


def render(result: dict[str, Any]) -> Table:
    """The figures as a readable table."""
    table = Table(title="childreg bench")
    for col in ("figure", "measured", "physical limit / baseline", "ratio", "goal"):
        table.add_column(col)
    imp = result["import"]
    table.add_row(
        f"import, {imp['children']} children (median of {imp['runs']} runs)",
        f"{imp['node_import_per_second']:,}/s",
        f"{imp['raw_sqlcipher_insert_per_second']:,}/s raw SQLCipher",
        f"{imp['ratio']} ({imp['ratio_min']}–{imp['ratio_max']})",
        f"≥ {imp['guard_min_ratio']} (regression guard)",
    )
    for row in result["national_table"]:
        what = (
            f"{row['departments']} departments × {row['children'] // row['departments']:,}, "
            f"by {' × '.join(row['dimensions'])}"
        )
        table.add_row(
            f"published table, first computation, {what}",
            f"{row['first_ms']} ms",
            f"{row['exact_count_ms']} ms exact count (central GROUP BY "
            f"{row['central_group_by_ms']} ms)",
            f"{row['first_ratio']}",
            "",
        )
        table.add_row(
            f"published table, repeat (release store), {what}",
            f"{row['repeat_ms']} ms",
            f"{row['exact_count_ms']} ms exact count",
            f"{row['repeat_ratio']}",
            "",
        )
    app = result["audit_appends"]
    table.add_row(
        f"durable audit appends ({app['leaf_bytes']}-byte leaves, one commit each)",
        f"{app['audit_appends_per_second']:,}/s",
        f"{app['raw_durable_inserts_per_second']:,}/s raw SQLCipher insert + commit",
        f"{app['ratio']}",
        "",
    )
    proofs = result["audit_proofs"]
    table.add_row(
        f"audit inclusion proof, {proofs['leaves']:,} leaves (consistency beside it)",
        f"{proofs['inclusion_proof_ms']} ms ({proofs['consistency_proof_ms']} ms)",
        "",
        "",
        f"≤ {proofs['goal_max_ms']} ms",
    )
    ext = result["extracts"]
    table.add_row(
        f"school extract, {ext['requests']} requests (p50 / p99)",
        f"{ext['extract_p50_ms']} / {ext['extract_p99_ms']} ms",
        f"{ext['commit_p50_ms']} / {ext['commit_p99_ms']} ms bare durable commit",
        f"{ext['p99_ratio']} (p99)",
        f"≤ {ext['goal_max_p99_ratio']}",
    )
    table.add_row(
        "the same extracts ÷ a bare durable commit interleaved with them (same moment, disk)",
        f"{ext['extract_p50_ms']} / {ext['extract_p99_ms']} ms",
        f"{ext['commit_beside_p50_ms']} / {ext['commit_beside_p99_ms']} ms",
        f"{ext['p99_ratio_beside']} (p99)",
        "",
    )
    table.add_row(
        "the transport's floor: a health check to the same node, same channel (p50 / p99)",
        f"{ext['rpc_floor_p50_ms']} / {ext['rpc_floor_p99_ms']} ms",
        f"{ext['commit_p50_ms']} / {ext['commit_p99_ms']} ms bare durable commit",
        f"{ext['rpc_floor_p99_ratio']} (p99)",
        "",
    )
    table.add_row(
        "gRPC-Python alone: a health check to a bare server, mutual TLS, no childreg code",
        f"{ext['bare_grpc_floor_p50_ms']} / {ext['bare_grpc_floor_p99_ms']} ms",
        f"{ext['commit_p50_ms']} / {ext['commit_p99_ms']} ms bare durable commit",
        f"{ext['bare_grpc_floor_p99_ratio']} (p99)",
        "",
    )
    for row in result["secure_rounds"]:
        table.add_row(
            f"national round, secure aggregation, {row['departments']} departments, "
            f"by {' × '.join(row['dimensions'])} (first of the snapshot, with settling: "
            f"{row['secure_first_round_with_settle_ms']} ms)",
            f"{row['secure_round_ms']} ms",
            f"{row['stage1_round_ms']} ms stage-1 round",
            f"{row['ratio']}",
            f"≤ {row['goal_max_ratio']}",
        )
    srch = result["search"]
    table.add_row(
        f"staff search by full name in the node, {srch['children']:,} children (p50 / p95)",
        f"{srch['search_p50_ms']} / {srch['search_p95_ms']} ms",
        f"{srch['get_child_p95_ms']} ms get_child p95",
        f"{srch['ratio']}",
        f"≤ {srch['goal_p95_ms']} ms p95",
    )
    reg = result["registration_check"]
    table.add_row(
        f"registration with the duplicate check ÷ without, {reg['children']:,} children (p50)",
        f"{reg['with_check_p50_ms']} ms",
        f"{reg['without_check_p50_ms']} ms without the check",
        f"{reg['ratio']}",
        f"≤ {reg['goal_max_ratio']}",
    )
    kek = result["kek_rotation"]
    table.add_row(
        f"KEK rotation, {kek['children']:,} children (every child key rewrapped, one commit)",
        f"{kek['seconds']} s",
        f"{kek['children_per_second']:,} children/s",
        f"{kek['seconds_for_100000']} s for 100,000",
        f"≤ {kek['goal_seconds_for_100000']} s for 100,000",
    )
    rec = result["receipts"]
    table.add_row(
        f"guardian's receipt as PDF, p95 of {rec['samples']} (WeasyPrint, fonts embedded)",
        f"{rec['pdf_p95_ms']} ms",
        f"{rec['html_p95_ms']} ms the same receipt as HTML (template)",
        f"{rec['ratio']}",
        f"≤ {rec['goal_pdf_p95_ms']:.0f} ms",
    )
    web = result["console"]
    for page, what in (("search", "search page"), ("child", "child's page"),
                       ("register", "registration")):  # fmt: skip
        table.add_row(
            f"console {what}, p95 of {web['requests']} on a node of {web['children']:,} children",
            f"{web[page + '_console_p95_ms']} ms",
            f"{web[page + '_grpc_p95_ms']} ms the matching gRPC call",
            f"{web[page + '_ratio']}",
            f"≤ {web['goal_max_ratio']:.0f}",
        )
    bak = result["backup"]
    table.add_row(
        f"online backup, {bak['children']:,} children ({bak['database_mb']} MB), node open",
        f"{bak['backup_seconds']} s",
        f"{bak['copy_files_seconds']} s copying its files",
        f"{bak['backup_ratio']}",
        f"≤ {bak['goal_max_backup_ratio']}",
    )
    table.add_row(
        f"restore drill's work: verify, place, replay {bak['changes_after_backup']} journaled "
        "changes, list them",
        f"{bak['restore_seconds']} s",
        f"{bak['restore_copy_seconds']} s copying the backup's files into place",
        f"{bak['restore_ratio']}",
        "",
    )
    drop = result["dropout_rounds"]
    one = drop["one_down"]
    table.add_row(
        f"secure round, 1 of {one['departments']} departments down (nodes in process)",
        f"{one['one_down_ms']} ms",
        f"{one['none_down_ms']} ms with none down",
        f"{one['ratio']}",
        f"≤ {one['goal_max_ratio']}",
    )
    scale = drop["scaling"]
    per = ", ".join(
        f"{c['departments']}: {c['coordinator_round_ms']} ms" for c in drop["coordinator"]
    )
    table.add_row(
        f"coordinator's time per secure round ({per})",
        f"{drop['coordinator'][-1]['coordinator_round_ms']} ms at {scale['to_departments']}",
        f"{drop['coordinator'][0]['coordinator_round_ms']} ms at {scale['from_departments']}",
        f"{scale['ratio']} (departments ×{scale['departments_ratio']:g})",
        f"≤ {scale['goal_max_ratio']}",
    )
    mem = result["memory"]
    table.add_row(
        f"node peak memory, {mem['children']:,} children (the larger of the node process's "
        f"peak RSS, {mem['peak_node_process_rss_mb']} MB, and the peak PSS of the node with "
        f"its {mem['import_workers']} import workers, {mem['peak_node_with_workers_pss_mb']} MB)",
        f"{mem['peak_node_mb']} MB",
        f"{mem['idle_node_mb']} MB idle node (PSS with workers)",
        "",
        f"≤ {mem['goal_max_mb']} MB",
    )
    return table


def bench(
    as_json: JsonOpt = False,
    quick: Annotated[
        bool, typer.Option("--quick", help="Tiny sizes: checks the benchmark works, in seconds.")
    ] = False,
) -> None:
    """Measure import rate, published-table latency and node memory against physical limits."""
    sizes = QUICK if quick else FULL
    say: Say = lambda msg: err.print(f"[dim]•[/dim] {msg}")  # noqa: E731
    result = run(sizes, say)
    result["sizes"] = "quick" if quick else "full"
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        out.print(render(result))
