"""`childreg bench` (g): the national round, secure aggregation (stage 2) against stage 1.

Why this module exists: issue 5 asks what hiding department tables costs in time. Both
mechanisms are measured in the same run, against the same running node processes (real
mutual TLS, real SQLCipher stores), by the coordinator's own round code called in this
process, so the figure is the round itself — the nodes' budget check, count, noise and
(stage 2) masking and signing, the transport, and the coordinator's checks and sum — and
not post-processing, which is the same for both.

Every attempt is a first computation at every node (a new catalogue version, so each node
charges, counts and noises anew). A node takes part in one participant set only per
snapshot, and a set must hold more than half of the roster, so each federation size is
measured at a snapshot of its own, with a roster of its own departments: the
smaller federations' nodes hold the same synthetic children under an extra academic year
(tools/dev/bench.py fills them), and stage 1 is measured at the same snapshot as stage 2.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from typing import Any

from childreg.catalogue import load_verify_key, verify_catalogue
from childreg.pki import IdentityFiles
from childreg.secagg.roster import verify_roster
from coordinator.config import Department
from coordinator.publication.releases import ReleaseStore
from coordinator.rounds.channels import NodeChannels
from coordinator.rounds.federation import Federation, PerDepartmentRounds, Rounds, TableRound
from coordinator.rounds.secure import SecureRounds, SignedRoster
from tools.dev.federation import FEDERATION, LocalFederation, Say, default_catalogue

#: Goal of issue 5: a secure round takes at most this many times a stage-1 round.
GOAL_MAX_RATIO = 3.0
DEADLINE_SECONDS = 60.0
#: Round times per (federation size, table dimensions), in seconds.
Timings = dict[tuple[int, tuple[str, ...]], list[float]]


def snapshot_for(n: int, sizes: Sequence[int], seed_year: str) -> str:
    """The snapshot federation size ``n`` is measured at: the seed year for the largest,
    one earlier academic year per smaller size (their nodes hold those years too)."""
    ordered = sorted(sizes, reverse=True)
    start = int(seed_year[:4]) - ordered.index(n)
    return f"{start}/{(start + 1) % 100:02d}"


def measure_rounds(
    fed: LocalFederation,
    sizes: Sequence[int],
    tables: Sequence[tuple[str, ...]],
    *,
    seed_year: str,
    rho: str,
    repeats: int,
    first_version: int,
    say: Say,
) -> list[dict[str, Any]]:
    """Round times of both mechanisms per federation size and table; nodes must be running
    with per-department aggregation (they are switched to secure aggregation here)."""
    authority = load_verify_key(fed.authority_dir / "authority.pub")
    version = first_version
    stage1: Timings = {}
    stage2: Timings = {}
    settle_ms: dict[int, float] = {}

    def channels_to(n: int) -> NodeChannels:
        return NodeChannels(_departments(fed, n), IdentityFiles(fed.identity("coordinator")))

    def attempt(n: int, rounds: Rounds, into: Timings) -> None:
        nonlocal version
        version += 1
        fed.sign_catalogue(default_catalogue(FEDERATION, version, rho))
        blob = fed.catalogue_file.read_bytes()
        catalogue = verify_catalogue(blob, authority)
        for dims in tables:
            table = catalogue.table_for(dims)
            question = TableRound(blob, catalogue.version, table, snapshot_for(n, sizes, seed_year))
            started = time.perf_counter()
            rounds.measure(question)
            into.setdefault((n, dims), []).append(time.perf_counter() - started)

    for n in sorted(sizes):
        say(f"(g) stage-1 rounds over {n} departments")
        regions = {p.id: p.region for p in fed.departments[:n]}
        channels = channels_to(n)
        try:
            stage_one = PerDepartmentRounds(Federation(channels, DEADLINE_SECONDS), regions)
            for _ in range(repeats):
                attempt(n, stage_one, stage1)
        finally:
            channels.close()

    say("(g) switching every node to secure aggregation")
    fed.switch_aggregation("secure")
    for n in sorted(sizes):
        fed.sign_roster([p.id for p in fed.departments[:n]], version=n)
        signed = fed.roster_file.read_bytes()
        roster = SignedRoster(signed, verify_roster(signed, authority, federation=fed.federation))
        say(f"(g) secure-aggregation rounds over {n} departments")
        store = ReleaseStore(fed.root / f"bench-secure-{n}.db")
        channels = channels_to(n)
        try:
            secure = SecureRounds(
                channels, roster, store, deadline_seconds=DEADLINE_SECONDS, settle_seconds=30.0
            )
            # The first round of a snapshot settles the participant set (one Ready per
            # department); it is reported apart from the rounds that follow it.
            warm: Timings = {}
            attempt(n, secure, warm)
            settle_ms[n] = round(warm[n, tables[0]][0] * 1000, 1)
            for _ in range(repeats):
                attempt(n, secure, stage2)
        finally:
            channels.close()
            store.close()

    results = []
    for n in sorted(sizes):
        for dims in tables:
            s1 = statistics.median(stage1[n, dims])
            s2 = statistics.median(stage2[n, dims])
            results.append(
                {
                    "departments": n,
                    "dimensions": list(dims),
                    "snapshot": snapshot_for(n, sizes, seed_year),
                    "stage1_round_ms": round(s1 * 1000, 1),
                    "secure_round_ms": round(s2 * 1000, 1),
                    "secure_first_round_with_settle_ms": settle_ms[n],
                    "ratio": round(s2 / s1, 3),
                    "goal_max_ratio": GOAL_MAX_RATIO,
                }
            )
    return results


def _departments(fed: LocalFederation, n: int) -> tuple[Department, ...]:
    """The coordinator's view of the first ``n`` departments (addresses of running nodes)."""
    return tuple(
        Department(
            id=p.id,
            address=fed.nodes[p.id].address,
            server_name=fed.nodes[p.id].server_name,
            region=p.region,
        )
        for p in fed.departments[:n]
    )


def years_to_fill(sizes: Sequence[int], seed_year: str) -> dict[str, int]:
    """Extra academic years and how many departments (the first ones) hold each."""
    return {snapshot_for(n, sizes, seed_year): n for n in sizes if n != max(sizes)}
