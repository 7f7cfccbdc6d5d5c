"""`childreg bench` (o): dropout-tolerant secure rounds — a department down, and the
coordinator's share of a round as the federation grows.

Why this module exists: issue 19 asks that a round survive a department going down at
little cost (a round with 1 of 50 departments down ÷ one with none: goal ≤ 2) and that
the coordinator's work per round grow linearly with the number of departments
(time(200) ÷ time(50): goal ≤ 4.5). Hundreds of node processes do not fit a test machine,
so the nodes are real node desks in this process (node/statistics/aggregation.py over
memory stores: ledger, noise shares, Shamir shares, masks, signatures) called through an
in-process transport, and the coordinator is its real round code
(coordinator/rounds/secure.py, steps.py). Every call into a node is timed, so the
coordinator's time is the round's time minus the nodes' (in a real federation the nodes
work in parallel on their own machines; their O(n) work each, O(n²) in total, is not the
coordinator's). Times are CPU time of the bench's thread (``time.thread_time``), so other
processes on a shared machine do not enter them; wall times are reported beside. No
protobuf serialization happens in process: the gRPC encoding of the messages the
coordinator routes is not in the figure.

Each measured round is a table's first round in its snapshot after the participant set
was settled (a warm-up table settles it), so "none down" and "one down" measure the same
work but for the department lost.
"""

from __future__ import annotations

import datetime as dt
import gc
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.message import Message
from nacl.signing import SigningKey

from childreg.catalogue import parse_catalogue, sign_catalogue, verify_catalogue
from childreg.errors import ChildregError, status_for
from childreg.secagg.roster import parse_roster, sign_roster, verify_roster
from coordinator.publication.releases import ReleaseStore
from coordinator.rounds.federation import TableRound
from coordinator.rounds.secure import SecureRounds, SignedRoster
from node.crypto.keys import KekSource, Keyring, generate_key_file
from node.rpc.statistics import (
    masked_share_to_proto,
    ready_question_from_proto,
    ready_reply_to_proto,
    share_body_bytes,
    share_question_from_proto,
    signed_body_to_proto,
)
from node.statistics.aggregation import AggregationDesk, roster_entry
from node.statistics.desk import StatisticsDesk
from node.store.memory import MemoryStore
from tools.dev.federation import Say
from tools.dev.inprocess import Call, FakeRpcError

#: Goals of issue 19.
GOAL_DOWN_RATIO = 2.0
GOAL_SCALING_RATIO = 4.5
FEDERATION = "bench.childreg"
CALLER = f"spiffe://{FEDERATION}/coordinator/national"
#: The measured table (22 cells) and the warm-up table that settles each snapshot.
TABLE, WARM = ("education_form", "sex"), ("education_form",)
_STEPS = ("Ready", "RoundKeys", "KeyShares", "Share", "Unmask")


@dataclass
class _Clock:
    """Seconds spent inside node calls."""

    node_seconds: float = 0.0


@dataclass
class _Stub:
    """A node's stage-2 methods called in process, each call timed; ``down_from`` kills it."""

    department: str
    desk: AggregationDesk
    clock: _Clock
    down_from: str | None = None
    methods: dict[str, Callable[[Any], Message]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        d = self.desk
        self.methods = {
            "Ready": lambda r: ready_reply_to_proto(d.ready(ready_question_from_proto(r))),
            "RoundKeys": lambda r: signed_body_to_proto(d.round_keys(share_question_from_proto(r))),
            "KeyShares": lambda r: signed_body_to_proto(d.key_shares(share_question_from_proto(r))),
            "Share": lambda r: masked_share_to_proto(d.share(share_question_from_proto(r), CALLER)),
            "Unmask": lambda r: signed_body_to_proto(d.unmask(share_question_from_proto(r))),
        }

    def __getattr__(self, name: str) -> Any:
        if name not in _STEPS:
            raise AttributeError(name)
        return _Method(self, name)


@dataclass
class _Method:
    stub: _Stub
    name: str

    def future(self, request: Message, timeout: float) -> Call:
        stub = self.stub

        def run() -> Message:
            if stub.down_from is not None and _STEPS.index(self.name) >= _STEPS.index(
                stub.down_from
            ):
                raise FakeRpcError(grpc.StatusCode.UNAVAILABLE)
            started = time.thread_time()
            try:
                return stub.methods[self.name](request)
            except ChildregError as exc:
                raise FakeRpcError(status_for(exc)) from None
            finally:
                stub.clock.node_seconds += time.thread_time() - started

        return Call(run)


def _federation(root: Path, n: int, authority: SigningKey) -> tuple[list[_Stub], bytes, _Clock]:
    """``n`` empty departments in process and the roster that lists them."""
    clock = _Clock()
    stubs, entries = [], []
    for i in range(n):
        dept = f"d{i:03d}"
        directory = root / dept
        directory.mkdir(parents=True)
        generate_key_file(directory / "kek.key")
        keyring = Keyring.create(
            directory / "keyring.json", KekSource.from_key_file(directory / "kek.key")
        )
        store = MemoryStore()
        statistics_desk = StatisticsDesk(
            store,
            keyring.noise_secret(),
            authority.verify_key,
            federation=FEDERATION,
            max_snapshot_rho=Fraction(1, 4),
            clock=lambda: dt.datetime(2026, 12, 7, tzinfo=dt.UTC),
        )
        desk = AggregationDesk(
            statistics_desk,
            store,
            keyring.masking_key(),
            SigningKey(keyring.upload_signing_seed()),
            department=dept,
            federation=FEDERATION,
            authority=authority.verify_key,
            encode_share=share_body_bytes,
        )
        stubs.append(_Stub(dept, desk, clock))
        entries.append(roster_entry(keyring, federation=FEDERATION, department=dept))
    roster = parse_roster(
        {
            "federation": FEDERATION,
            "version": 1,
            "first_snapshot": "2000/01",
            "last_snapshot": "2099/00",
            "colluders": 1,
            "members": entries,
        }
    )
    return stubs, sign_roster(roster, authority), clock


def _catalogue(authority: SigningKey) -> bytes:
    tables = [
        {"id": "education_form", "title": "By form", "dimensions": list(WARM), "rho": "1/32"},
        {"id": "form_by_sex", "title": "By form and sex", "dimensions": list(TABLE), "rho": "1/32"},
    ]
    catalogue = parse_catalogue(
        {
            "federation": FEDERATION,
            "version": 1,
            "snapshot_rho": "1/4",
            "delta": 1e-9,
            "display_threshold": 10,
            "tables": tables,
        }
    )
    return sign_catalogue(catalogue, authority)


def _round(
    rounds: SecureRounds, blob: bytes, authority: SigningKey, dims: tuple[str, ...], year: str
) -> tuple[str, ...]:
    catalogue = verify_catalogue(blob, authority.verify_key)
    measured = rounds.measure(TableRound(blob, catalogue.version, catalogue.table_for(dims), year))
    return measured.dropped_departments


def measure_dropout_rounds(
    root: Path, sizes: Sequence[int], repeats: int, say: Say
) -> dict[str, Any]:
    """(o) the coordinator's time per round at each size (nodes in process), and at the
    smallest size a round with one department down ÷ one with none (wall time)."""
    authority = SigningKey.generate()
    blob = _catalogue(authority)
    per_size: list[dict[str, Any]] = []
    down_ratio: dict[str, Any] = {}
    for n in sorted(sizes):
        say(f"(o) dropout-tolerant secure rounds over {n} departments in process")
        with tempfile.TemporaryDirectory(dir=root) as tmp:
            stubs, roster_blob, clock = _federation(Path(tmp), n, authority)
            listed = verify_roster(roster_blob, authority.verify_key, federation=FEDERATION)
            store = ReleaseStore(Path(tmp) / "releases.db")
            rounds = SecureRounds(
                {s.department: s for s in stubs},  # type: ignore[misc]  # in-process stand-ins
                SignedRoster(roster_blob, listed),
                store,
                deadline_seconds=60.0,
            )
            walls: dict[str, list[float]] = {"none": [], "one": []}
            cpus: dict[str, list[float]] = {"none": [], "one": []}
            coordinator: list[float] = []
            snapshot = 2000
            try:
                for _ in range(repeats):
                    for label in ("none", "one") if n == min(sizes) else ("none",):
                        snapshot += 1  # each measured round in a snapshot of its own
                        year = f"{snapshot}/{(snapshot + 1) % 100:02d}"
                        for s in stubs:
                            s.down_from = None
                        _round(rounds, blob, authority, WARM, year)  # settles the snapshot
                        if label == "one":
                            stubs[n // 2].down_from = "Share"
                        # The in-process nodes' long-lived objects are frozen out of the
                        # collector, so its sweeps over them (which a coordinator process
                        # does not hold) are not charged to the round.
                        gc.collect()
                        gc.freeze()
                        node_before = clock.node_seconds
                        started, cpu_started = time.perf_counter(), time.thread_time()
                        try:
                            dropped = _round(rounds, blob, authority, TABLE, year)
                        finally:
                            wall = time.perf_counter() - started
                            cpu = time.thread_time() - cpu_started
                            gc.unfreeze()
                        if len(dropped) != (label == "one"):
                            raise RuntimeError(f"(o) expected {label} down, got {dropped}")
                        walls[label].append(wall)
                        cpus[label].append(cpu)
                        if label == "none":
                            coordinator.append(cpu - (clock.node_seconds - node_before))
            finally:
                store.close()
            per_size.append(
                {
                    "departments": n,
                    "threshold": listed.threshold(n),
                    "coordinator_round_ms": round(statistics.median(coordinator) * 1000, 1),
                    "round_cpu_ms_nodes_in_process": round(
                        statistics.median(cpus["none"]) * 1000, 1
                    ),
                    "round_wall_ms_nodes_in_process": round(
                        statistics.median(walls["none"]) * 1000, 1
                    ),
                }
            )
            if walls["one"]:
                none, one = statistics.median(cpus["none"]), statistics.median(cpus["one"])
                down_ratio = {
                    "departments": n,
                    "none_down_ms": round(none * 1000, 1),
                    "one_down_ms": round(one * 1000, 1),
                    "none_down_wall_ms": round(statistics.median(walls["none"]) * 1000, 1),
                    "one_down_wall_ms": round(statistics.median(walls["one"]) * 1000, 1),
                    "ratio": round(one / none, 3),
                    "goal_max_ratio": GOAL_DOWN_RATIO,
                }
    small, large = per_size[0], per_size[-1]
    return {
        "table_dimensions": list(TABLE),
        "repeats": repeats,
        "one_down": down_ratio,
        "coordinator": per_size,
        "scaling": {
            "from_departments": small["departments"],
            "to_departments": large["departments"],
            "ratio": round(large["coordinator_round_ms"] / small["coordinator_round_ms"], 3),
            "departments_ratio": large["departments"] / small["departments"],
            "goal_max_ratio": GOAL_SCALING_RATIO,
        },
    }
