"""Secure aggregation end to end: real node processes, a real coordinator, mutual TLS.

Four departments take part. The coordinator learns only the national noisy table; a
node process killed after the snapshot's set was settled is named and the table published
without it; a coordinator that claims a department dropped after a full round gets nothing
from any node; a department down on the day is settled out of the snapshot, flagged, and
stays out.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from childreg import codes
from childreg.v1 import statistics_pb2 as spb
from childreg.v1 import statistics_pb2_grpc as spb_grpc
from tests.e2e.conftest import cli, trim
from tools.clients import importer
from tools.dev import synth
from tools.dev.federation import LocalFederation

YEAR = "2023/24"
CHILDREN = 30
MECHANISM = "discrete_gaussian/zcdp/secure-aggregation"


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFederation]:
    """Four departments with 30 children each; secure aggregation is the default."""
    root = tmp_path_factory.mktemp("secure")
    manifest = synth.generate(4, root / "synthetic", seed=23, academic_year=YEAR)
    plans = [
        synth.DepartmentPlan(d.id, d.name, d.region, d.districts) for d in manifest.departments
    ]
    federation = LocalFederation(root / "fed", plans)
    assert federation.mechanism == "secure"
    with federation:
        federation.setup()
        federation.start_nodes()
        for d in manifest.departments:
            source = root / "synthetic" / d.file
            importer.import_file(
                federation.staff_endpoint(d.id), trim(source, root / f"{d.id}.csv", CHILDREN)
            )
        federation.start_coordinator()
        yield federation


def stats_json(fed: LocalFederation, *args: str) -> tuple[int, dict[str, Any], str]:
    """`childreg stats table … --json` as the demo statistician: exit code, JSON, stderr."""
    ep = fed.statistician_endpoint()
    year = () if "--year" in args else ("--year", YEAR)  # the data's, not today's
    r = cli("stats", "table", *args, *year, "--json", "--coordinator", ep.address,
            "--server-name", ep.server_name or "", "--identity", str(ep.identity_dir))  # fmt: skip
    return r.returncode, (json.loads(r.stdout) if r.returncode == 0 else {}), r.stderr


def departments(fed: LocalFederation) -> list[str]:
    return sorted(p.id for p in fed.departments)


def test_the_nation_is_published_from_masked_shares(fed: LocalFederation) -> None:
    """The published table states secure aggregation over all four departments (each added
    σ²/(t−c) = σ²/(3−1): a round may finish with 3 of 4), holds the nation only, and later
    tables agree with it on shared margins."""
    code, table, err = stats_json(fed, "--by", "education_form")
    assert code == 0, err
    privacy = table["privacy"]
    assert privacy["mechanism"] == MECHANISM
    assert (privacy["participants"], privacy["colluders"]) == (4, 1)
    assert privacy["share_sigma_squared"] == "8"  # σ² = 16 for ρ = 1/32, over t − c = 2
    assert table["missing_departments"] == []
    assert [a["area"] for a in table["areas"]] == ["national"]
    assert table["areas"][0]["departments"] == departments(fed)
    # National noise variance 4·8: the 95 % margin is ⌈1.96·√32⌉ = 12 (stage 1: 16).
    assert {c["margin"] for c in table["areas"][0]["cells"]} == {12}

    by_form = published(fed, "education_form").areas[0].values
    by_sex = published(fed, "sex", "education_form")  # every value, also those shown "<10"
    assert list(by_sex.dimensions) == ["education_form", "sex"]
    sexes = len(codes.SEXES)
    shared = [sum(by_sex.areas[0].values[i * sexes : (i + 1) * sexes]) for i in range(len(by_form))]
    assert shared == list(by_form)
    assert sum(by_form) > 0


def test_a_node_process_killed_after_settling_is_named_and_the_table_published(
    fed: LocalFederation,
) -> None:
    """The snapshot's set holds all four (settled by the first table); one node process is
    killed (SIGKILL) before the next table's round: the round completes over the other
    three (the threshold of four with the default 2 tolerated dropouts is 3), the table is
    published with the killed department named, and its node takes part in the next table
    once restarted (the set of the snapshot is unchanged)."""
    victim = departments(fed)[1]
    party = fed.nodes[victim]
    assert party.proc is not None
    party.proc.kill()
    party.proc.wait(30)
    try:
        code, table, err = stats_json(fed, "--by", "education_form", "--by", "age_band")
        assert code == 0, err
    finally:
        fed.restart_node(victim)
        fed.restart_coordinator()  # the node came back on a port of the OS's choosing
    assert table["missing_departments"] == [victim]
    assert table["privacy"]["participants"] == 3
    assert table["areas"][0]["departments"] == [d for d in departments(fed) if d != victim]
    code, later, err = stats_json(fed, "--by", "education_form", "--by", "care_setting")
    assert code == 0, err
    assert later["missing_departments"] == []


def published(fed: LocalFederation, *dims: str) -> spb.PublishedTable:
    """The published table through the API (every value, including those shown as <10)."""
    with fed.statistician_endpoint().channel() as channel:
        reply: spb.PublishedTable = spb_grpc.NationalStatisticsServiceStub(channel).PublishedTable(
            spb.TableRequest(academic_year=YEAR, dimensions=list(dims)), timeout=120
        )
    return reply


def coordinator_stub(fed: LocalFederation, dept: str) -> tuple[grpc.Channel, Any]:
    channel = fed.node_endpoint_as(dept, "coordinator").channel()
    return channel, spb_grpc.StatisticsServiceStub(channel)


def test_a_coordinator_claiming_a_department_dropped_gets_nothing(fed: LocalFederation) -> None:
    """After a full round, a round of the same table without department A — asked directly
    of every node with the coordinator's own identity and a fresh round id — is refused by
    every node, A's included, so no two sums over different sets ever exist."""
    code, _, err = stats_json(fed, "--by", "education_form")  # the full round (stored)
    assert code == 0, err
    dropped, *rest = departments(fed)
    request = spb.ShareRequest(
        signed_catalogue=fed.catalogue_file.read_bytes(),
        signed_roster=fed.roster_file.read_bytes(),
        table_id="education_form",
        academic_year=YEAR,
        round_id=secrets.token_hex(16),
        participants=rest,
    )
    for dept in departments(fed):
        channel, stub = coordinator_stub(fed, dept)
        with channel, pytest.raises(grpc.RpcError) as info:
            stub.Share(request, timeout=30)
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION, dept
        if dept != dropped:
            assert "another set of departments" in (info.value.details() or ""), dept
    # The same full set is still answered (a retry with fresh masks), so honest retries work.
    full = spb.ShareRequest()
    full.CopyFrom(request)
    full.participants[:] = departments(fed)
    for dept in departments(fed):  # every node's round key, as the coordinator forwards them
        channel, stub = coordinator_stub(fed, dept)
        with channel:
            full.round_keys.append(stub.RoundKeys(full, timeout=30))
    channel, stub = coordinator_stub(fed, rest[0])
    with channel:
        share: spb.MaskedShare = stub.Share(full, timeout=30)
    body = spb.ShareBody.FromString(share.body)
    assert list(body.participants) == departments(fed)
    assert len(body.values) == len(codes.EDUCATION_FORMS)


def test_a_department_down_on_the_day_is_settled_out_and_stays_out(
    fed: LocalFederation,
) -> None:
    """A department down when a snapshot's first table is asked is left out after the
    settling deadline; the table is published over the other three and flagged; a later
    table of the snapshot keeps that set even once the department is back."""
    snapshot = "2022/23"  # a snapshot whose participant set is not settled yet
    fed.restart_coordinator(state="state-down", settings={"settle_seconds": 3})
    victim = departments(fed)[-1]
    fed.stop_party(fed.nodes[victim])
    try:
        code, table, err = stats_json(fed, "--by", "education_form", "--year", snapshot)
        assert code == 0, err
    finally:
        fed.restart_node(victim)
        fed.restart_coordinator()  # the node came back on a port of the OS's choosing
    assert table["missing_departments"] == [victim]
    assert table["privacy"]["participants"] == 3
    assert table["areas"][0]["departments"] == [d for d in departments(fed) if d != victim]
    code, later, err = stats_json(fed, "--by", "sex", "--by", "age_band", "--year", snapshot)
    assert code == 0, err
    assert later["missing_departments"] == [victim]
    assert later["privacy"]["participants"] == 3


def test_the_text_output_flags_missing_departments(fed: LocalFederation, tmp_path: Path) -> None:
    """The statistician's readable table says which departments a publication left out."""
    ep = fed.statistician_endpoint()
    r = cli("stats", "table", "--by", "care_setting", "--by", "age_band", "--year", "2022/23",
            "--coordinator",
            ep.address, "--server-name", ep.server_name or "", "--identity",
            str(ep.identity_dir))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert departments(fed)[-1] in r.stdout + r.stderr
    assert "secure" in (r.stdout + r.stderr).lower()


def test_check_config_verifies_the_catalogue_and_roster(
    fed: LocalFederation, tmp_path: Path
) -> None:
    """`coordinator check-config` checks what `serve` checks before serving: it names the
    roster, and refuses an altered one with one line and a hint, no traceback."""
    assert fed.coordinator is not None
    config = fed.coordinator.config
    ok = cli("coordinator", "check-config", "--config", str(config))
    assert ok.returncode == 0, ok.stderr
    assert "secure: roster version 1, 4 departments, 1 assumed colluding" in ok.stderr
    assert ok.stdout.count("\n") == 4  # one line per department
    altered = tmp_path / "roster.signed.json"
    altered.write_text(
        fed.roster_file.read_text(encoding="utf-8").replace('"colluders": 1', '"colluders": 0'),
        encoding="utf-8",
    )
    text = config.read_text(encoding="utf-8").replace(str(fed.roster_file), str(altered))
    bad_config = tmp_path / "coordinator.toml"
    bad_config.write_text(text, encoding="utf-8")
    bad = cli("coordinator", "check-config", "--config", str(bad_config))
    assert bad.returncode != 0
    assert "roster" in bad.stderr
    assert "hint:" in bad.stderr
    assert "Traceback" not in bad.stderr
