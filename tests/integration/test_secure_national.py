"""Real node desks and the coordinator's real secure rounds, joined by an in-process transport.

The node side (node/statistics/aggregation.py: ledger, participation, share noise, masks, signature)
and the coordinator side (coordinator/rounds/secure.py: settling, verification, unmasking) are the
production code; only the gRPC hop between them is replaced by a direct call (the e2e tests
run it over mutual TLS). This is where issue 5's arithmetic is checked at 3, 10 and 50
departments, where the coordinator's whole transcript is inspected, and where the national
error of stage 1 and stage 2 is measured over many snapshots against σ·√n and
σ·√(n/(t−c)) (t: the fewest survivors a round may complete with).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from google.protobuf.message import Message
from scipy import stats as sps
from structlog.testing import capture_logs

from childreg.catalogue import verify_catalogue
from childreg.models import NoisyTableQuestion
from childreg.secagg.masks import MODULUS
from childreg.secagg.roster import verify_roster
from childreg.v1 import statistics_pb2 as spb
from coordinator.publication.releases import ReleaseStore
from coordinator.rounds.federation import TableRound
from coordinator.rounds.secure import SecureRounds, SignedRoster
from tests.conftest import authority_key
from tests.unit.secagg_nodes import (
    CALLER,
    FEDERATION,
    YEAR,
    InProcessStub,
    Node,
    make_keyring,
    make_node,
    signed_catalogue,
    signed_roster,
)


def federation(tmp_path: Path, n: int, children: Callable[[int], int]) -> list[Node]:
    return [
        make_node(f"d{i:02d}", make_keyring(tmp_path / f"k{i:02d}"), children=children(i))
        for i in range(n)
    ]


def rounds(
    tmp_path: Path, nodes: Sequence[Node], observe: Callable[[str, Message], None] | None = None
) -> tuple[SecureRounds, ReleaseStore]:
    blob = signed_roster(nodes)
    roster = SignedRoster(
        blob, verify_roster(blob, authority_key().verify_key, federation=FEDERATION)
    )
    store = ReleaseStore(tmp_path / "releases.db")
    stubs = {node.department: InProcessStub(node) for node in nodes}
    secure = SecureRounds(
        stubs,  # type: ignore[arg-type]  # the in-process stand-in for the gRPC stubs
        roster,
        store,
        deadline_seconds=10,
        on_message=observe,
    )
    return secure, store


def question(table_id: str, snapshot: str = YEAR) -> TableRound:
    blob = signed_catalogue()
    catalogue = verify_catalogue(blob, authority_key().verify_key)
    return TableRound(blob, catalogue.version, catalogue.table(table_id), snapshot)


def stored_share(node: Node, table_id: str, snapshot: str = YEAR) -> list[int]:
    (entry,) = [e for e in node.store.ledger(snapshot) if e.table_id == table_id]
    assert entry.mechanism == "secure-aggregation"
    return list(entry.released)


@pytest.mark.parametrize("n", [3, 10, 50])
def test_the_unmasked_sum_is_the_sum_of_the_noisy_node_vectors(tmp_path: Path, n: int) -> None:
    """The coordinator's national vector equals, exactly, the sum of what every node stored
    as its noisy share; and nothing it received holds any node's vector."""
    nodes = federation(tmp_path, n, lambda i: 3 + i % 7)
    transcript: list[tuple[str, Message]] = []
    secure, store = rounds(tmp_path, nodes, lambda d, m: transcript.append((d, m)))
    try:
        with capture_logs() as logs:
            measured = secure.measure(question("care_by_age"))
    finally:
        store.close()
    (area,) = measured.areas.values()
    # Neither side logs a number of the data: ids, sizes and durations only.
    assert {e["event"] for e in logs} >= {"statistics.share", "round.done"}
    for event in logs:
        assert not {"values", "counts", "released", "share", "national"} & set(event)
        assert not any(
            isinstance(v, list | tuple) and any(isinstance(x, int) for x in v)
            for v in event.values()
        )
    shares = {node.department: stored_share(node, "care_by_age") for node in nodes}
    assert list(area.values) == [sum(col) for col in zip(*shares.values(), strict=True)]
    assert area.departments == tuple(sorted(shares))
    assert measured.missing_departments == ()

    uploads = [m for _, m in transcript if isinstance(m, spb.MaskedShare)]
    readies = [m for _, m in transcript if isinstance(m, spb.ReadyReply)]
    assert len(uploads) == n
    assert len(readies) >= n
    encoded = {tuple(v % MODULUS for v in share) for share in shares.values()}
    for upload in uploads:
        values = tuple(spb.ShareBody.FromString(upload.body).values)
        assert values not in encoded
        assert not set(values) & {v % MODULUS for s in shares.values() for v in s}
    for reply in readies:  # a readiness reply carries names and a version, no number of data
        assert set(reply.DESCRIPTOR.fields_by_name) == {
            "department",
            "roster_version",
            "recorded_participants",
        }


def test_a_single_upload_is_indistinguishable_from_uniform(tmp_path: Path) -> None:
    """One node's upload of a 462-cell table passes a uniformity test on [0, 2⁶⁴), while the
    same test rejects its unmasked noisy share outright (so the test can tell)."""
    nodes = federation(tmp_path, 4, lambda i: 40)
    transcript: list[tuple[str, Message]] = []
    secure, store = rounds(tmp_path, nodes, lambda d, m: transcript.append((d, m)))
    try:
        secure.measure(question("form_by_care_by_age"))
    finally:
        store.close()
    for dept, message in transcript:
        if not isinstance(message, spb.MaskedShare):
            continue
        values = spb.ShareBody.FromString(message.body).values
        assert len(values) == 462
        assert sps.kstest([v / MODULUS for v in values], "uniform").pvalue > 1e-4
        plain = next(stored_share(n, "form_by_care_by_age") for n in nodes if n.department == dept)
        assert sps.kstest([v % MODULUS / MODULUS for v in plain], "uniform").pvalue < 1e-12


def test_national_error_drops_from_sigma_root_n_to_sigma_root_n_over_t_minus_c(
    tmp_path: Path,
) -> None:
    """Ten empty departments, 150 snapshots, the 11-cell table: the national error's standard
    deviation is σ·√n ≈ 12.6 in stage 1 (each node's full-noise answer, summed) and
    σ·√(n/(t−c)) ≈ 4.78 in stage 2 (the unmasked secure sum; t = 8 survivors at least, with
    the default 2 tolerated dropouts), each within 10 %."""
    n, c, t, sigma, snapshots = 10, 1, 8, 4.0, 150
    stage1_nodes = federation(tmp_path / "one", n, lambda i: 0)
    stage2_nodes = federation(tmp_path / "two", n, lambda i: 0)
    years = [f"{y}/{(y + 1) % 100:02d}" for y in range(1850, 1850 + snapshots)]
    catalogue = signed_catalogue()
    stage1: list[int] = []
    for year in years:
        asked = NoisyTableQuestion(
            signed_catalogue=catalogue, table_id="education_form", academic_year=year
        )
        answers = [node.statistics.answer(asked, CALLER).counts for node in stage1_nodes]
        stage1 += [sum(col) for col in zip(*answers, strict=True)]  # truth is zero
    secure, store = rounds(tmp_path / "two", stage2_nodes)
    stage2: list[int] = []
    try:
        for year in years:
            (area,) = secure.measure(question("education_form", year)).areas.values()
            stage2 += list(area.values)
    finally:
        store.close()
    assert len(stage1) == len(stage2) == snapshots * 11
    sd1, sd2 = statistics.pstdev(stage1), statistics.pstdev(stage2)
    assert sd1 == pytest.approx(sigma * math.sqrt(n), rel=0.10)
    assert sd2 == pytest.approx(sigma * math.sqrt(n / (t - c)), rel=0.10)
    assert abs(statistics.fmean(stage2)) < 4 * sd2 / math.sqrt(len(stage2))  # unbiased
