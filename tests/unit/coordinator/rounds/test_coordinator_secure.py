"""The coordinator's secure-aggregation rounds (coordinator/rounds/secure.py) against fake nodes.

Each fake node holds a plain vector per table (its noise share plus counts, arbitrary
here), masks it with the real pairwise masks (childreg.secagg.masks.masked) and signs it
with its own upload key (childreg.secagg.upload.sign_share), as a roster signed by a test
authority lists. The fakes are called in-process through stub-like objects (and once over
a real loopback gRPC server); they can be down, lose uploads, or bend an upload.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import grpc
import numpy as np
import pytest
from google.protobuf.message import Message
from nacl.public import PrivateKey, PublicKey
from nacl.signing import SigningKey
from rich.console import Console
from scipy import stats

from childreg import codes
from childreg.catalogue import Catalogue, parse_catalogue, sign_catalogue
from childreg.config import load_config
from childreg.dp import zcdp
from childreg.errors import FailedPrecondition, InvalidInput, KeyProblem
from childreg.models import TableQuery
from childreg.secagg import recovery, unmasking
from childreg.secagg.masks import MODULUS
from childreg.secagg.roster import Roster, parse_roster, sign_roster, verify_roster
from childreg.secagg.upload import sign_share
from childreg.v1 import statistics_pb2 as spb
from childreg.v1 import statistics_pb2_grpc as spb_grpc
from coordinator.config import CoordinatorConfig
from coordinator.publication import releases
from coordinator.publication.margins import cell_variances
from coordinator.publication.published import unit_variance
from coordinator.publication.publisher import Publisher, SignedCatalogue
from coordinator.publication.releases import ReleaseStore
from coordinator.rounds.federation import (
    IncompleteRound,
    PerDepartmentRounds,
    RoundResult,
    TableRound,
)
from coordinator.rounds.secure import RoundAborted, SecureRounds, SignedRoster
from coordinator.rpc.convert import PUBLISHED_TABLES, privacy_from_proto
from coordinator.server import load_roster
from node.rpc.statistics import share_question_from_proto
from tools.clients.published import PublishedView
from tools.dev.inprocess import FakeRpcError, Method

FED = "test.childreg"
YEAR = "2023/24"
AUTHORITY = SigningKey(bytes(range(32)))
FORM, SEX, BIG = ("education_form",), ("sex",), ("education_form", "age_band", "care_setting")
CATALOGUE: Catalogue = parse_catalogue(
    {
        "federation": FED,
        "version": 1,
        "snapshot_rho": "1/4",
        "delta": 1e-9,
        "display_threshold": 10,
        "tables": [
            {"id": "form", "title": "By form", "dimensions": list(FORM), "rho": "1/32"},
            {"id": "sex", "title": "By sex", "dimensions": list(SEX), "rho": "1/32"},
            {"id": "big", "title": "Form, age, care", "dimensions": list(BIG), "rho": "1/32"},
        ],
    }
)
SIGNED = SignedCatalogue(sign_catalogue(CATALOGUE, AUTHORITY), CATALOGUE)
SIGMA2 = Fraction(16)  # rho 1/32


@dataclass
class FakeNode:
    """One department: plain vectors, its keys, and knobs to misbehave."""

    dept: str
    masking: PrivateKey = field(default_factory=PrivateKey.generate)
    signing: SigningKey = field(default_factory=SigningKey.generate)
    roster: Roster | None = None
    down: bool = False
    lose_shares: int = 0  # the next N uploads are lost (UNAVAILABLE)
    tamper: Callable[[spb.ShareBody], None] | None = None
    flip: str = ""  # "body" or "signature": one bit of the signed upload
    refuse_ready: grpc.StatusCode | None = None  # answers Ready with this refusal
    recorded: dict[str, tuple[str, ...]] = field(default_factory=dict)  # per snapshot
    ready_calls: int = 0
    share_requests: list[spb.ShareRequest] = field(default_factory=list)
    down_at: set[str] = field(default_factory=set)  # steps it does not answer (UNAVAILABLE)
    steps: list[str] = field(default_factory=list)
    sent: list[Message] = field(default_factory=list)

    def vector(self, table_id: str) -> list[int]:
        """This node's plain vector for a table (fixed per node and table; some negative)."""
        size = codes.grid_size(CATALOGUE.table(table_id).dimensions)
        seed = int.from_bytes(f"{self.dept}/{table_id}".encode(), "big") % 2**32
        return [int(v) for v in np.random.default_rng(seed).integers(-5, 300, size)]

    def ready(self, request: spb.ReadyRequest) -> spb.ReadyReply:
        self.ready_calls += 1
        if self.down:
            raise FakeRpcError(grpc.StatusCode.UNAVAILABLE)
        if self.refuse_ready is not None:
            raise FakeRpcError(self.refuse_ready)
        assert self.roster is not None
        recorded = self.recorded.get(request.academic_year, ())
        reply = spb.ReadyReply(
            department=self.dept,
            roster_version=self.roster.version,
            recorded_participants=list(recorded),
        )
        self.sent.append(reply)
        return reply

    def _context(self, request: spb.ShareRequest) -> str:
        assert self.roster is not None
        return recovery.round_context(
            federation=FED,
            catalogue_version=CATALOGUE.version,
            catalogue_digest=recovery.catalogue_digest(request.signed_catalogue),
            dimensions=CATALOGUE.table(request.table_id).dimensions,
            roster_version=self.roster.version,
            participants=list(request.participants),
        )

    def _secrets(self, request: spb.ShareRequest) -> recovery.RoundSecrets:
        return recovery.round_secrets(
            self.masking,
            round_id=request.round_id,
            table_id=request.table_id,
            snapshot=request.academic_year,
            context=self._context(request),
        )

    def _holders(self, request: spb.ShareRequest) -> dict[str, PublicKey]:
        assert self.roster is not None
        out = {}
        for k in request.round_keys:
            dept = json.loads(k.body)["department"]
            out[dept] = recovery.open_advert(
                recovery.Signed(k.body, k.signature),
                self.roster.member(dept).verify_key,
                federation=FED,
                department=dept,
                round_id=request.round_id,
            )
        return out

    def _step(self, name: str) -> None:
        self.steps.append(name)
        if self.down or name in self.down_at:
            raise FakeRpcError(grpc.StatusCode.UNAVAILABLE)

    def round_keys(self, request: spb.ShareRequest) -> spb.SignedBody:
        self._step("RoundKeys")
        signed = recovery.advert(
            self._secrets(request),
            self.signing,
            federation=FED,
            department=self.dept,
            round_id=request.round_id,
        )
        reply = spb.SignedBody(body=signed.body, signature=signed.signature, blob=signed.blob)
        self.sent.append(reply)
        return reply

    def key_shares(self, request: spb.ShareRequest) -> spb.SignedBody:
        self._step("KeyShares")
        assert self.roster is not None
        holders = self._holders(request)
        signed = recovery.key_shares(
            self._secrets(request),
            self.signing,
            self.masking,
            {d: self.roster.member(d).public_key for d in holders},
            federation=FED,
            department=self.dept,
            round_id=request.round_id,
            all_participants=list(request.participants),
            t=self.roster.threshold(len(request.participants)),
        )
        reply = spb.SignedBody(body=signed.body, signature=signed.signature, blob=signed.blob)
        self.sent.append(reply)
        return reply

    def unmask(self, request: spb.ShareRequest) -> spb.SignedBody:
        self._step("Unmask")
        assert self.roster is not None
        signed = recovery.reveal(
            self.masking,
            {s: self.roster.member(s).public_key for s in request.senders},
            dict(share_question_from_proto(request).sealed),
            self.signing,
            federation=FED,
            department=self.dept,
            round_id=request.round_id,
            survivors=list(request.survivors),
        )
        reply = spb.SignedBody(body=signed.body, signature=signed.signature, blob=signed.blob)
        self.sent.append(reply)
        return reply

    def share(self, request: spb.ShareRequest) -> spb.MaskedShare:
        self.share_requests.append(request)
        if self.down or self.lose_shares or "Share" in self.down_at:
            self.lose_shares = max(0, self.lose_shares - 1)
            raise FakeRpcError(grpc.StatusCode.UNAVAILABLE)
        assert self.roster is not None
        key, parts = request.academic_year, tuple(request.participants)
        if self.recorded.setdefault(key, parts) != parts:  # the node's one-set rule
            raise FakeRpcError(grpc.StatusCode.FAILED_PRECONDITION)
        holders = self._holders(request)
        values = recovery.masked_upload(
            self.vector(request.table_id),
            self._secrets(request),
            self.dept,
            holders,
            round_id=request.round_id,
            table_id=request.table_id,
            snapshot=request.academic_year,
            context=self._context(request),
        )
        body = spb.ShareBody(
            federation=FED,
            department=self.dept,
            round_id=request.round_id,
            catalogue_version=CATALOGUE.version,
            table_id=request.table_id,
            academic_year=request.academic_year,
            dimensions=list(CATALOGUE.table(request.table_id).dimensions),
            roster_version=self.roster.version,
            participants=sorted(parts),
            values=values,
            key_holders=sorted(holders),
        )
        if self.tamper is not None:
            self.tamper(body)
        share = sign_share(body, self.signing)
        if self.flip:
            raw = bytearray(getattr(share, self.flip))
            raw[len(raw) // 2] ^= 0x10
            setattr(share, self.flip, bytes(raw))
        self.sent.append(share)
        return share


class FakeStub:
    """The calls of StatisticsServiceStub that secure rounds use, in-process."""

    def __init__(self, node: FakeNode) -> None:
        self.Ready = Method(node.ready)
        self.RoundKeys = Method(node.round_keys)
        self.KeyShares = Method(node.key_shares)
        self.Share = Method(node.share)
        self.Unmask = Method(node.unmask)


@dataclass
class Federation:
    nodes: dict[str, FakeNode]
    roster: SignedRoster
    store: ReleaseStore
    transcript: list[tuple[str, Message]]

    def rounds(self, **kwargs: Any) -> SecureRounds:
        stubs = {
            d: cast(spb_grpc.StatisticsServiceStub, FakeStub(n)) for d, n in self.nodes.items()
        }
        options: dict[str, Any] = {
            "deadline_seconds": 5.0,
            "settle_seconds": 0.3,
            "retry_interval": 0.05,
            "on_message": lambda d, m: self.transcript.append((d, m)),
        }
        return SecureRounds(stubs, self.roster, self.store, **{**options, **kwargs})

    def publisher(self, **kwargs: Any) -> Publisher:
        return Publisher(
            SIGNED,
            self.rounds(**kwargs),
            self.store,
            {"alice": Fraction(1, 4)},
            codec=PUBLISHED_TABLES,
        )


def make_federation(tmp: Path, n: int, colluders: int = 1) -> Federation:
    nodes = {f"d{i:02d}": FakeNode(f"d{i:02d}") for i in range(n)}
    authored = {
        "federation": FED,
        "version": 3,
        "first_snapshot": "2020/21",
        "last_snapshot": "2030/31",
        "colluders": colluders,
        "members": [
            {
                "department": d,
                "identity": f"spiffe://{FED}/node/{d}",
                "masking_key": base64.b64encode(bytes(node.masking.public_key)).decode(),
                "upload_key": base64.b64encode(bytes(node.signing.verify_key)).decode(),
            }
            for d, node in nodes.items()
        ],
    }
    blob = sign_roster(parse_roster(authored), AUTHORITY)
    roster = verify_roster(blob, AUTHORITY.verify_key, federation=FED)
    for node in nodes.values():
        node.roster = roster
    return Federation(nodes, SignedRoster(blob, roster), ReleaseStore(tmp / "releases.db"), [])


@pytest.fixture
def fed(tmp_path: Path) -> Iterator[Federation]:
    made = make_federation(tmp_path, 4)
    yield made
    made.store.close()


@pytest.fixture
def unmasked(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts calls of unmasking.unmask by the coordinator (an aborted round never unmasks)."""
    calls: list[int] = []
    real = unmasking.unmask

    def spy(*args: Any, **kwargs: Any) -> list[int]:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(unmasking, "unmask", spy)
    return calls


def question(table_id: str) -> TableRound:
    return TableRound(SIGNED.blob, CATALOGUE.version, CATALOGUE.table(table_id), YEAR)


def publish(pub: Publisher, dims: tuple[str, ...]) -> spb.PublishedTable:
    body = pub.table(TableQuery(academic_year=YEAR, dimensions=dims), "alice")
    return spb.PublishedTable.FromString(body)


def plain_sum(nodes: list[FakeNode], table_id: str) -> list[int]:
    return [sum(col) for col in zip(*(n.vector(table_id) for n in nodes), strict=True)]


# --- the sum -----------------------------------------------------------------------------


@pytest.mark.parametrize("n", [3, 10, 50])
def test_the_unmasked_sum_is_the_sum_of_the_vectors(tmp_path: Path, n: int) -> None:
    """3, 10 and 50 departments: the national vector is exactly the sum of the plain ones."""
    fed = make_federation(tmp_path, n)
    measured = fed.rounds().measure(question("form"))
    (area,) = measured.areas.values()
    assert list(area.values) == plain_sum(list(fed.nodes.values()), "form")
    assert area.departments == tuple(sorted(fed.nodes))
    assert measured.missing_departments == measured.dropped_departments == ()
    t = fed.roster.roster.threshold(n)  # the fewest survivors: shares carry σ²/(t − c)
    assert t == {3: 3, 10: 8, 50: 48}[n]
    assert measured.unit_variance == n * SIGMA2 / (t - 1)


def test_a_real_grpc_stub_runs_the_same_round(fed: Federation) -> None:
    """Over loopback gRPC (real stubs and futures) the round gives the same sum."""

    class Servicer(spb_grpc.StatisticsServiceServicer):
        def __init__(self, node: FakeNode) -> None:
            self.node = node

        def NoisyTable(self, request: spb.NoisyTableRequest, context: Any) -> spb.NoisyTable:
            raise NotImplementedError  # stage 1 only

        def Ready(self, request: spb.ReadyRequest, context: Any) -> spb.ReadyReply:
            return self.node.ready(request)

        def RoundKeys(self, request: spb.ShareRequest, context: Any) -> spb.SignedBody:
            return self.node.round_keys(request)

        def KeyShares(self, request: spb.ShareRequest, context: Any) -> spb.SignedBody:
            return self.node.key_shares(request)

        def Share(self, request: spb.ShareRequest, context: Any) -> spb.MaskedShare:
            return self.node.share(request)

        def Unmask(self, request: spb.ShareRequest, context: Any) -> spb.SignedBody:
            return self.node.unmask(request)

    servers, channels, stubs = [], [], {}
    for dept, node in fed.nodes.items():
        server = grpc.server(ThreadPoolExecutor(max_workers=2))
        spb_grpc.add_StatisticsServiceServicer_to_server(Servicer(node), server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        servers.append(server)
        channels.append(channel)
        stubs[dept] = spb_grpc.StatisticsServiceStub(channel)
    try:
        rounds = SecureRounds(stubs, fed.roster, fed.store, deadline_seconds=10)
        (area,) = rounds.measure(question("sex")).areas.values()
        assert list(area.values) == plain_sum(list(fed.nodes.values()), "sex")
    finally:
        for channel in channels:
            channel.close()
        for server in servers:
            server.stop(None)


# --- all or nothing ---------------------------------------------------------------------


def _bend(field: str) -> Callable[[spb.ShareBody], None]:
    def bend(body: spb.ShareBody) -> None:
        if field == "round_id":
            body.round_id = "0" * 32
        elif field == "table_id":
            body.table_id = "sex"
        elif field == "participants":
            body.participants[:] = sorted([*body.participants[:-1], "intruder"])
        elif field == "length":
            body.values.append(1)
        elif field == "federation":
            body.federation = "other.childreg"
        elif field == "department":
            body.department = "d00"
        elif field == "catalogue_version":
            body.catalogue_version += 1
        elif field == "academic_year":
            body.academic_year = "2022/23"
        elif field == "dimensions":
            body.dimensions.append("sex")
        elif field == "roster_version":
            body.roster_version += 1

    return bend


@pytest.mark.parametrize(
    ("knob", "reason"),
    [
        ({"flip": "body"}, "bad_signature"),
        ({"flip": "signature"}, "bad_signature"),
        ({"tamper": _bend("round_id")}, "wrong_round_id"),
        ({"tamper": _bend("table_id")}, "wrong_table_id"),
        ({"tamper": _bend("participants")}, "wrong_participants"),
        ({"tamper": _bend("length")}, "wrong_length"),
        *(
            ({"tamper": _bend(f)}, f"wrong_{f}")
            for f in (
                "federation",
                "department",
                "catalogue_version",
                "academic_year",
                "dimensions",
                "roster_version",
            )
        ),
    ],
)
def test_a_bad_upload_aborts_the_round_naming_the_department(
    fed: Federation, unmasked: list[int], knob: dict[str, Any], reason: str
) -> None:
    """One bent upload: nothing unmasked, nothing published, the department and why named,
    and no second attempt (only lost uploads are retried)."""
    bad = fed.nodes["d02"]
    for name, value in knob.items():
        setattr(bad, name, value)
    pub = fed.publisher()
    with pytest.raises(RoundAborted, match=f"d02 \\({reason}\\)") as info:
        publish(pub, FORM)
    assert info.value.reasons == {"d02": reason}
    assert str(info.value).startswith("incomplete round")  # the CLI's exit code 3
    assert unmasked == []
    assert fed.store.bodies(YEAR) == []
    assert all(len(n.share_requests) == 1 for n in fed.nodes.values())


def test_a_signed_but_wrongly_computed_upload_is_not_published(fed: Federation) -> None:
    """d01 signs an upload 2⁴⁰ off in one cell: bound and signed, but the unmasked national
    value is impossible, so the round aborts and nothing is published."""

    def skew(body: spb.ShareBody) -> None:
        body.values[0] = (body.values[0] + 2**40) % MODULUS

    fed.nodes["d01"].tamper = skew
    with pytest.raises(RoundAborted, match="out of range"):
        publish(fed.publisher(), FORM)
    assert fed.store.bodies(YEAR) == []


def test_a_lost_upload_drops_the_department_and_the_round_completes_without_it(
    fed: Federation, unmasked: list[int]
) -> None:
    """The upload of d01 is lost: the round unmasks once, in its first attempt, the sum of
    the three others, and names d01 as dropped and missing."""
    fed.nodes["d01"].lose_shares = 1
    measured = fed.rounds().measure(question("form"))
    assert unmasked == [1]
    assert all(len(node.share_requests) == 1 for node in fed.nodes.values())
    (area,) = measured.areas.values()
    others = [n for d, n in fed.nodes.items() if d != "d01"]
    assert list(area.values) == plain_sum(others, "form")
    assert area.departments == ("d00", "d02", "d03")
    assert measured.dropped_departments == measured.missing_departments == ("d01",)
    assert measured.statement.participants == 3
    assert measured.unit_variance == 3 * SIGMA2 / (3 - 1)  # t = 3, c = 1


def test_too_few_uploads_in_every_attempt_abort_and_never_unmask(
    fed: Federation, unmasked: list[int]
) -> None:
    """d02 and d03 lose every upload, leaving 2 of 4 (fewer than the threshold 3): three
    attempts, three round ids, no unmasking, no table, and a reason naming both."""
    fed.nodes["d02"].lose_shares = 99
    fed.nodes["d03"].lose_shares = 99
    with pytest.raises(RoundAborted, match=r"needs at least 3") as info:
        publish(fed.publisher(round_attempts=3), FORM)
    assert "\n" not in str(info.value)
    assert "d02 (UNAVAILABLE)" in str(info.value)
    assert info.value.reasons == {"d02": "UNAVAILABLE", "d03": "UNAVAILABLE"}
    assert unmasked == []
    assert fed.store.bodies(YEAR) == []
    ids = [r.round_id for r in fed.nodes["d00"].share_requests]
    assert len(ids) == 3
    assert len(set(ids)) == 3


# --- settling the participant set ------------------------------------------------------


def test_a_department_down_at_settling_is_left_out_for_the_whole_snapshot(
    fed: Federation, tmp_path: Path
) -> None:
    """d03 is down through the settle deadline: the set is d00–d02, recorded; a later table
    uses it even with d03 back up; both publications name d03; a reopened store keeps it."""
    down = fed.nodes["d03"]
    down.down = True
    pub = fed.publisher()
    first = publish(pub, FORM)
    assert down.ready_calls >= 2  # retried until the deadline
    assert list(first.missing_departments) == ["d03"]
    down.down = False
    calls_before = down.ready_calls
    second = publish(pub, SEX)
    assert list(second.missing_departments) == ["d03"]
    assert down.share_requests == []
    assert down.ready_calls == calls_before
    assert [a.area for a in second.areas] == ["national"]
    assert list(second.areas[0].departments) == ["d00", "d01", "d02"]
    fed.store.close()
    reopened = ReleaseStore(tmp_path / "releases.db")
    settled = reopened.participant_set(YEAR)
    assert settled is not None
    assert (settled.participants, settled.missing) == (("d00", "d01", "d02"), ("d03",))
    again = reopened.settle_participants(YEAR, ["d00", "d01", "d02", "d03"], [], roster_version=3)
    assert again == settled  # written once
    fed.store = reopened


@pytest.mark.parametrize(
    "status",
    [
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.PERMISSION_DENIED,
    ],
)
def test_a_department_refusing_ready_stops_settling_and_is_not_left_out(
    fed: Federation, status: grpc.StatusCode
) -> None:
    """A node that answers and refuses (its keys, its budget, version skew) is not "down":
    settling stops at once naming it, nothing is recorded, so it is not silently left out
    of the whole snapshot."""
    fed.nodes["d02"].refuse_ready = status
    with pytest.raises(RoundAborted, match=f"d02 \\({status.name}\\)") as info:
        publish(fed.publisher(), FORM)
    assert info.value.reasons == {"d02": status.name}
    assert fed.nodes["d02"].ready_calls == 1  # not retried until the deadline
    assert fed.store.participant_set(YEAR) is None
    assert fed.store.bodies(YEAR) == []
    assert all(n.share_requests == [] for n in fed.nodes.values())


def test_fewer_than_three_ready_is_refused_and_nothing_is_recorded(fed: Federation) -> None:
    """Two of four down at the deadline: refused naming both; no set, no table, no upload."""
    fed.nodes["d01"].down = fed.nodes["d03"].down = True
    with pytest.raises(IncompleteRound, match=r"d01 \(UNAVAILABLE\), d03 \(UNAVAILABLE\)") as info:
        publish(fed.publisher(), FORM)
    assert str(info.value).startswith("incomplete round")
    assert fed.store.participant_set(YEAR) is None
    assert fed.store.bodies(YEAR) == []
    assert all(n.share_requests == [] for n in fed.nodes.values())


def test_a_set_the_nodes_already_took_part_with_is_used(fed: Federation) -> None:
    """The coordinator lost its state; d00–d02 report they took part with d00–d02: that set
    is settled although d03 is ready too."""
    for dept in ("d00", "d01"):  # d02 had not uploaded yet: it reports nothing
        fed.nodes[dept].recorded[YEAR] = ("d00", "d01", "d02")
    published = publish(fed.publisher(), FORM)
    assert list(published.missing_departments) == ["d03"]
    assert published.privacy.participants == 3
    assert list(published.areas[0].departments) == ["d00", "d01", "d02"]


def test_a_reported_set_is_adopted_only_when_all_its_members_confirm_it(
    fed: Federation,
) -> None:
    """One node's report alone cannot shrink the snapshot: d00 reports d00–d02 but d02 is
    down, so nothing is settled or published (it is asked again later)."""
    fed.nodes["d00"].recorded[YEAR] = ("d00", "d01", "d02")
    fed.nodes["d02"].down = True
    with pytest.raises(IncompleteRound, match="d02 did not answer"):
        publish(fed.publisher(), FORM)
    assert fed.store.participant_set(YEAR) is None
    assert all(n.share_requests == [] for n in fed.nodes.values())


def test_a_snapshot_outside_the_rosters_range_is_refused_before_any_node(
    fed: Federation,
) -> None:
    """The roster applies to 2020/21–2030/31: a table of 2031/32 asks no node."""
    with pytest.raises(FailedPrecondition, match="applies to snapshots"):
        fed.rounds().measure(TableRound(SIGNED.blob, 1, CATALOGUE.table("form"), "2031/32"))
    assert all(n.ready_calls == 0 for n in fed.nodes.values())


def test_nodes_reporting_different_sets_fail_clearly(fed: Federation) -> None:
    """Nodes that recorded different participant sets for a snapshot stop the round, and
    no set is settled."""
    fed.nodes["d00"].recorded[YEAR] = ("d00", "d01", "d02")
    fed.nodes["d01"].recorded[YEAR] = ("d00", "d01", "d03")
    with pytest.raises(FailedPrecondition, match="different participant sets"):
        publish(fed.publisher(), FORM)
    assert fed.store.participant_set(YEAR) is None


def test_a_later_table_recorded_with_another_set_fails_clearly(fed: Federation) -> None:
    """Settled d00–d03; d01 says it took part in "sex" with d00–d02: refused, no upload."""
    pub = fed.publisher()
    publish(pub, FORM)
    fed.nodes["d01"].recorded[YEAR] = ("d00", "d01", "d02")
    before = [len(n.share_requests) for n in fed.nodes.values()]
    with pytest.raises(FailedPrecondition, match="another participant set"):
        publish(pub, SEX)
    assert [len(n.share_requests) for n in fed.nodes.values()] == before


def test_a_participant_down_on_a_later_table_is_dropped_and_named_and_the_set_stays(
    fed: Federation,
) -> None:
    """A settled participant down on a later table is dropped from that round, which
    publishes over the others naming it; once back it takes part again in the same set."""
    pub = fed.publisher()
    publish(pub, FORM)
    fed.nodes["d02"].down = True
    table = publish(pub, SEX)
    assert list(table.missing_departments) == ["d02"]
    assert list(table.areas[0].departments) == ["d00", "d01", "d03"]
    fed.nodes["d02"].down = False
    big = publish(pub, BIG)
    assert list(big.areas[0].departments) == ["d00", "d01", "d02", "d03"]
    assert list(big.missing_departments) == []


# --- what the coordinator sees ---------------------------------------------------------


def test_the_transcript_holds_every_message_and_no_plain_vector(fed: Federation) -> None:
    """Every reply and upload passes the observer; no upload equals (or shares cells with)
    any node's plain vector."""
    fed.rounds().measure(question("big"))
    sent = [(n.dept, m) for n in fed.nodes.values() for m in n.sent]
    assert sorted(map(repr, fed.transcript)) == sorted(map(repr, sent))
    assert sum(isinstance(m, spb.MaskedShare) for _, m in fed.transcript) == 4
    plain = [[v % MODULUS for v in n.vector("big")] for n in fed.nodes.values()]
    for _, message in fed.transcript:
        assert not isinstance(message, spb.ShareRequest | spb.NoisyTable)
        if isinstance(message, spb.MaskedShare):
            values = list(spb.ShareBody.FromString(message.body).values)
            for vector in plain:
                assert sum(a == b for a, b in zip(values, vector, strict=True)) == 0


def _byte_p_value(values: list[int]) -> float:
    raw = np.frombuffer(np.array(values, dtype=np.uint64).tobytes(), dtype=np.uint8)
    return float(stats.chisquare(np.bincount(raw, minlength=256)).pvalue)


def test_a_single_upload_looks_uniform(fed: Federation) -> None:
    """The 3,696 bytes of one upload of 462 cells pass a chi-square test of uniformity;
    the same node's plain vector fails it (the test can fail)."""
    fed.rounds().measure(question("big"))
    share = next(m for d, m in fed.transcript if isinstance(m, spb.MaskedShare))
    values = list(spb.ShareBody.FromString(share.body).values)
    assert len(values) == 462
    assert _byte_p_value(values) > 1e-4
    plain = [v % MODULUS for v in fed.nodes["d00"].vector("big")]
    assert _byte_p_value(plain) < 1e-4


# --- the publication --------------------------------------------------------------------


def test_the_published_statement_and_margins_of_secure_aggregation(fed: Federation) -> None:
    """National only; n, c and σ²/(t−c) stated (t = 3 of 4 may finish a round); margins from
    n·σ²/(t−c) through the fit."""
    pub = fed.publisher()
    first, second = publish(pub, FORM), publish(pub, SEX)
    p = first.privacy
    assert p.mechanism == "discrete_gaussian/zcdp/secure-aggregation"
    assert (p.rho, p.sigma_squared, p.sigma) == ("1/32", "16", 4.0)
    assert p.epsilon == zcdp.epsilon(Fraction(1, 32), 1e-9)
    assert (p.participants, p.colluders, p.share_sigma_squared) == (4, 1, "8")
    unit = 4 * Fraction(16, 2)
    assert unit_variance(privacy_from_proto(p)) == unit
    assert [a.area for a in first.areas] == ["national"]
    assert list(first.missing_departments) == []
    assert list(first.areas[0].values) == plain_sum(list(fed.nodes.values()), "form")
    assert set(first.areas[0].margins) == {zcdp.margin95(unit)}
    expected = cell_variances([(FORM, unit), (SEX, unit)])[-1]
    assert list(second.areas[0].margins) == [zcdp.margin95(float(v)) for v in expected]


def test_statisticians_see_the_secure_statement_and_the_missing_departments(
    fed: Federation,
) -> None:
    """Rich caption and title flag d03 as missing and state n, c and σ²/(t−c); the JSON
    carries them; a stage-1 JSON keeps exactly its documented keys."""
    fed.nodes["d03"].down = True
    view = PublishedView.from_proto(publish(fed.publisher(), FORM))
    caption = view.caption()
    assert caption.startswith("INCOMPLETE: 1 department(s)")
    assert "not included" in caption
    assert "d03" in caption
    assert "secure aggregation over 3 departments, 1 assumed colluding" in caption
    assert "each added noise of variance σ²/(t−c) = 8" in caption
    console = Console(width=200, record=True)
    console.print(view.to_rich())
    assert "INCOMPLETE" in console.export_text()
    doc = view.to_json()
    assert doc["missing_departments"] == ["d03"]
    assert list(doc)[-1] == "missing_departments"
    assert {k: doc["privacy"][k] for k in ("participants", "colluders", "share_sigma_squared")} == {
        "participants": 3,
        "colluders": 1,
        "share_sigma_squared": "8",
    }
    stage1 = PublishedView.from_proto(
        spb.PublishedTable(
            dimensions=["sex"],
            privacy=spb.PrivacyStatement(mechanism="discrete_gaussian/zcdp/per-department"),
            areas=[spb.AreaValues(area="national", values=[50, 60], margins=[8, 8],
                                  confidential=[False, False])],
        )
    )  # fmt: skip
    assert "missing_departments" not in stage1.to_json()
    assert "participants" not in stage1.to_json()["privacy"]
    assert "INCOMPLETE" not in stage1.caption()


def test_a_snapshot_never_mixes_mechanisms(fed: Federation) -> None:
    """A snapshot begun per department (regional state) refuses secure rounds before any
    node is asked, and the other way round."""

    class PerDepartment:
        def noisy_round(self, request: spb.NoisyTableRequest, **_: Any) -> RoundResult:
            return RoundResult({"d00": [20] * 11}, ())

    stage1 = Publisher(
        SIGNED,
        PerDepartmentRounds(PerDepartment(), {"d00": "baku"}),
        fed.store,
        {"alice": Fraction(1, 4)},
        codec=PUBLISHED_TABLES,
    )
    publish(stage1, FORM)
    with pytest.raises(FailedPrecondition, match="cannot mix aggregation mechanisms"):
        publish(fed.publisher(), SEX)
    assert all(n.ready_calls == 0 for n in fed.nodes.values())
    stage2 = fed.publisher()
    body = stage2.table(TableQuery(academic_year="2024/25", dimensions=FORM), "alice")
    assert spb.PublishedTable.FromString(body).areas[0].area == "national"
    with pytest.raises(FailedPrecondition, match="cannot mix"):
        stage1.table(TableQuery(academic_year="2024/25", dimensions=SEX), "alice")


# --- configuration, roster at start, the store's schema ---------------------------------


def write_config(tmp: Path, extra: str, departments: tuple[str, ...] = ("d00", "d01")) -> Path:
    path = tmp / "coordinator.toml"
    text = (
        f'federation = "{FED}"\nidentity_dir = "identity"\ndenylist_file = "denylist.json"\n'
        'statistics_authority_key = "authority.pub"\ncatalogue_file = "catalogue.json"\n'
        f'state_dir = "state"\n{extra}\n'
        '[[statisticians]]\nid = "alice"\nrho = "1/8"\n'
    )
    for i, dept in enumerate(departments):
        text += f'[[departments]]\nid = "{dept}"\naddress = "n{i}.example:7443"\nregion = "baku"\n'
    path.write_text(text, encoding="utf-8")
    return path


def test_secure_aggregation_without_a_roster_is_refused_saying_how_to_make_one(
    tmp_path: Path,
) -> None:
    """Secure aggregation (the default) without roster_file is refused, saying how to sign
    one; per-department needs none, and a given roster path is resolved next to the file."""
    with pytest.raises(InvalidInput) as info:
        load_config(CoordinatorConfig, write_config(tmp_path, ""))  # "secure" is the default
    text = " ".join(str(v) for v in info.value.violations)
    assert "roster_file" in text
    assert "childreg stats roster sign" in text
    stage1 = load_config(
        CoordinatorConfig, write_config(tmp_path, 'aggregation = "per-department"')
    )
    assert stage1.roster_file is None
    cfg = load_config(CoordinatorConfig, write_config(tmp_path, 'roster_file = "roster.json"'))
    assert cfg.aggregation == "secure"
    assert cfg.roster_file == tmp_path.resolve() / "roster.json"
    assert (cfg.settle_seconds, cfg.round_attempts) == (30.0, 3)


@pytest.mark.parametrize(
    "extra",
    [
        "settle_seconds = 0",
        "settle_seconds = 3601",
        "round_attempts = 0",
        "round_attempts = 11",
        'aggregation = "both"',
    ],
)
def test_secure_settings_out_of_range_are_refused(tmp_path: Path, extra: str) -> None:
    """Settle time, round attempts and the aggregation mechanism outside their ranges are
    refused when the configuration is loaded."""
    with pytest.raises(InvalidInput):
        load_config(CoordinatorConfig, write_config(tmp_path, f'roster_file = "r.json"\n{extra}'))


def test_the_roster_is_verified_at_start(fed: Federation, tmp_path: Path) -> None:
    """Pinned key, federation, readable file, every configured department a member."""
    (tmp_path / "roster.json").write_bytes(fed.roster.blob)
    members = tuple(fed.nodes)
    cfg = load_config(
        CoordinatorConfig, write_config(tmp_path, 'roster_file = "roster.json"', members)
    )
    loaded = load_roster(cfg, AUTHORITY.verify_key)
    assert loaded is not None
    assert loaded.roster == fed.roster.roster
    with pytest.raises(KeyProblem, match="pinned statistics-authority key"):
        load_roster(cfg, SigningKey.generate().verify_key)
    strangers = write_config(tmp_path, 'roster_file = "roster.json"', (*members, "x1", "x2"))
    with pytest.raises(KeyProblem, match=r"not in the roster .*: x1, x2$"):
        load_roster(load_config(CoordinatorConfig, strangers), AUTHORITY.verify_key)
    absent = write_config(tmp_path, 'roster_file = "absent.json"', members)
    with pytest.raises(KeyProblem, match="cannot read the roster") as info:
        load_roster(load_config(CoordinatorConfig, absent), AUTHORITY.verify_key)
    assert "childreg stats roster sign" in info.value.hint
    stage1 = write_config(tmp_path, 'aggregation = "per-department"', members)
    assert load_roster(load_config(CoordinatorConfig, stage1), AUTHORITY.verify_key) is None


def test_a_store_written_before_participant_sets_opens_and_keeps_its_tables(
    tmp_path: Path,
) -> None:
    """The old schema (no participant_sets) opens; its releases stay; a set is recorded."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for statement in releases._SCHEMA:
        if "participant_sets" not in statement:
            conn.execute(statement)
    conn.execute("INSERT INTO releases VALUES ('k', ?, 'form', 'education_form', x'01')", (YEAR,))
    conn.commit()
    conn.close()
    store = ReleaseStore(path)
    try:
        assert store.bodies(YEAR) == [b"\x01"]
        assert store.participant_set(YEAR) is None
        settled = store.settle_participants(YEAR, ["b", "a", "c"], ["d"], roster_version=1)
        assert (settled.participants, settled.missing) == (("a", "b", "c"), ("d",))
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            store._conn.execute("DELETE FROM participant_sets")
    finally:
        store.close()


def test_a_configuration_that_can_never_hold_a_majority_of_the_roster_is_refused(
    tmp_path: Path,
) -> None:
    """3 of a 7-member roster could never settle a set (nodes need 4): refused at start."""
    big = make_federation(tmp_path / "fed", 7)
    try:
        (tmp_path / "roster.json").write_bytes(big.roster.blob)
        three = tuple(big.nodes)[:3]
        cfg = load_config(
            CoordinatorConfig, write_config(tmp_path, 'roster_file = "roster.json"', three)
        )
        with pytest.raises(KeyProblem, match="needs at least 4 configured departments"):
            load_roster(cfg, AUTHORITY.verify_key)
        four = write_config(tmp_path, 'roster_file = "roster.json"', tuple(big.nodes)[:4])
        assert load_roster(load_config(CoordinatorConfig, four), AUTHORITY.verify_key)
    finally:
        big.store.close()
