"""Statistics with a privacy guarantee, end to end: real node and coordinator processes.

Repeats are byte-identical and free; questions outside the catalogue are refused; every
published table is consistent; a statistician's sub-budget and the snapshot cap are
enforced by the coordinator before any node is contacted, survive a restart, and — with
the coordinator's ledger wiped — the nodes still refuse on their own.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from childreg import codes
from childreg.catalogue import Catalogue, parse_catalogue
from childreg.v1 import statistics_pb2 as spb
from childreg.v1 import statistics_pb2_grpc as spb_grpc
from tests.e2e.conftest import cli, trim
from tools.clients import importer
from tools.dev.federation import LocalFederation, default_catalogue
from tools.dev.synth import DepartmentPlan

YEAR = "2023/24"
BOB = "bob"


@pytest.fixture(scope="module")
def fed(
    tmp_path_factory: pytest.TempPathFactory, synthetic: tuple[list[DepartmentPlan], list[Path]]
) -> Iterator[LocalFederation]:
    """Three departments with 40 children each; statisticians: the demo one (1/2), bob (1/32).

    Stage 1 (per-department noise, regional tables): it stays available as a configuration;
    tests/e2e/test_secure_aggregation.py covers stage 2, the default.
    """
    plans, files = synthetic
    root = tmp_path_factory.mktemp("private")
    federation = LocalFederation(root / "fed", plans, aggregation="per-department")
    with federation:
        federation.setup()
        federation.issue_statistician(BOB)
        federation.start_nodes()
        for plan, f in zip(plans, files, strict=True):
            importer.import_file(
                federation.staff_endpoint(plan.id), trim(f, root / f"{plan.id}.csv", 40)
            )
        federation.start_coordinator(statisticians={"demo-statistician": "1/2", BOB: "1/32"})
        yield federation


def stats(
    fed: LocalFederation, command: str, *args: str, who: str | None = None
) -> tuple[int, str, str]:
    """Run `childreg stats COMMAND …` against the coordinator as a statistician."""
    ep = fed.statistician_endpoint(ident=who)
    if "--year" not in args:  # the data's year, not the one today falls in
        args = (*args, "--year", YEAR)
    r = cli("stats", command, *args, "--coordinator", ep.address,
            "--server-name", ep.server_name or "", "--identity", str(ep.identity_dir))  # fmt: skip
    return r.returncode, r.stdout, r.stderr


def published(fed: LocalFederation, *dims: str) -> spb.PublishedTable:
    """The published table through the API (every value, including those shown as <10)."""
    with fed.statistician_endpoint().channel() as channel:
        reply: spb.PublishedTable = spb_grpc.NationalStatisticsServiceStub(channel).PublishedTable(
            spb.TableRequest(academic_year=YEAR, dimensions=list(dims)), timeout=120
        )
    return reply


def noisy_calls(fed: LocalFederation) -> int:
    """How many NoisyTable calls the nodes have served, from their logs (one line per RPC)."""
    return sum(
        line.count("/childreg.v1.StatisticsService/NoisyTable")
        for party in fed.nodes.values()
        for line in party.log.read_text(encoding="utf-8").splitlines()
    )


def spent(fed: LocalFederation, who: str | None = None) -> dict[str, object]:
    code, out, err = stats(fed, "budget", "--json", who=who)
    assert code == 0, err
    data: dict[str, object] = json.loads(out)
    return data


def test_repeats_in_any_order_are_byte_identical_and_free(
    fed: LocalFederation, tmp_path: Path
) -> None:
    """The same question twice, or with dimensions in another order: identical bytes (output
    and every export), one charge, one round."""
    first = stats(fed, "table", "--by", "education_form", "--by", "sex", "--json",
                  "--out", str(tmp_path / "a.xml"), "--out", str(tmp_path / "a.png"))  # fmt: skip
    assert first[0] == 0, first[2]
    rounds = noisy_calls(fed)
    again = stats(fed, "table", "--by", "sex", "--by", "education_form", "--json",
                  "--out", str(tmp_path / "b.xml"), "--out", str(tmp_path / "b.png"))  # fmt: skip
    assert again == first
    assert (tmp_path / "a.xml").read_bytes() == (tmp_path / "b.xml").read_bytes()
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert noisy_calls(fed) == rounds  # no node was asked again
    assert spent(fed)["statistician_spent"] == "1/32"
    data = json.loads(first[1])
    assert data["privacy"]["rho"] == "1/32"
    assert data["privacy"]["sigma"] == 4.0
    assert abs(data["privacy"]["epsilon"] - 1.4696) < 1e-3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--by", "region"], "no catalogue table has the dimensions region"),
        (["--by", "sex", "--by", "impairment_band", "--by", "age_band"], "no catalogue table"),
        (["--by", "colour"], "unknown dimension"),
        (["--by", "sex", "--by", "age_band", "--area", "atlantis"], "unknown area"),
        (["--by", "sex", "--by", "age_band", "--year", "2023/25"], "academic_year"),
    ],
    ids=["region", "not-in-catalogue", "unknown-dimension", "unknown-area", "bad-year"],
)
def test_questions_outside_the_catalogue_are_refused(
    fed: LocalFederation, args: list[str], message: str
) -> None:
    """Refused with exit 6 and a message about the question, before any node is asked."""
    rounds = noisy_calls(fed)
    code, out, err = stats(fed, "table", *args)
    assert code == 6, err
    assert message in err
    assert out == ""
    if "--area" not in args:
        assert noisy_calls(fed) == rounds


def test_published_tables_are_consistent(fed: LocalFederation) -> None:
    """Non-negative integers; regions add up to the nation; shared margins agree."""
    by_form = published(fed, "education_form")
    by_form_sex = published(fed, "sex", "education_form")
    by_sex_age = published(fed, "age_band", "sex")
    assert list(by_form_sex.dimensions) == ["education_form", "sex"]  # canonical order
    for table in (by_form, by_form_sex, by_sex_age):
        areas = {a.area: list(a.values) for a in table.areas}
        nation = areas.pop("national")
        assert nation == [sum(col) for col in zip(*areas.values(), strict=True)]
        assert all(v >= 0 for vs in (nation, *areas.values()) for v in vs)
    sexes = len(codes.SEXES)
    for a_form, a_both, a_age in zip(
        by_form.areas, by_form_sex.areas, by_sex_age.areas, strict=True
    ):
        both = list(a_both.values)
        assert list(a_form.values) == [
            sum(both[i * sexes : (i + 1) * sexes]) for i in range(len(a_form.values))
        ]
        by_sex = [sum(both[s::sexes]) for s in range(sexes)]
        ages = len(a_age.values) // sexes
        assert by_sex == [sum(a_age.values[s * ages : (s + 1) * ages]) for s in range(sexes)]


def test_a_statisticians_sub_budget_is_enforced_before_any_node(fed: LocalFederation) -> None:
    """Bob (1/32) may read published tables for free, publish one new table, and is refused
    the next before any node is contacted; his spend survives a coordinator restart."""
    assert stats(fed, "table", "--by", "education_form", who=BOB)[0] == 0  # published: free
    code, _, err = stats(fed, "table", "--by", "impairment_band", "--by", "sex", who=BOB)
    assert code == 0, err
    rounds = noisy_calls(fed)
    code, out, err = stats(fed, "table", "--by", "care_setting", "--by", "age_band", who=BOB)
    assert code == 7
    assert "sub-budget" in err
    assert out == ""
    assert noisy_calls(fed) == rounds
    fed.restart_coordinator(statisticians={"demo-statistician": "1/2", BOB: "1/32"})
    assert spent(fed, BOB)["statistician_spent"] == "1/32"


def catalogue_v2(fed: LocalFederation) -> Catalogue:
    """Version 2: the same tables at 1/36 each, and a new three-way table at 1/36."""
    tables = [
        {"id": t.id, "title": t.title, "dimensions": list(t.dimensions), "rho": "1/36"}
        for t in default_catalogue(fed.federation).tables
    ]
    tables.append(
        {"id": "form_sex_age", "title": "By form, sex and age band", "rho": "1/36",
         "dimensions": ["education_form", "sex", "age_band"]}
    )  # fmt: skip
    return parse_catalogue(
        {"federation": fed.federation, "version": 2, "snapshot_rho": "1/4", "delta": 1e-9,
         "display_threshold": 10, "tables": tables}
    )  # fmt: skip


def test_the_snapshot_cap_holds_for_all_and_at_the_nodes_without_the_coordinator(
    fed: LocalFederation,
) -> None:
    """Publish every table (1/4 = the cap). Under a re-signed catalogue, a table published
    before is served as it was, free; a new table is refused by the coordinator before any
    node; with the coordinator's ledger wiped, every node refuses it on its own."""
    for table in default_catalogue(fed.federation).tables:
        assert stats(fed, "table", *[f"--by={d}" for d in table.dimensions])[0] == 0
    assert spent(fed)["snapshot_spent"] == "1/4"
    fed.sign_catalogue(catalogue_v2(fed))
    fed.restart_coordinator(statisticians={"demo-statistician": "1/2", BOB: "1/32"})
    rounds = noisy_calls(fed)
    code, out, err = stats(fed, "table", "--by", "education_form", "--json")
    assert code == 0, err
    assert json.loads(out)["release_key"] == f"{YEAR}/catalogue-1/education_form"
    new_table = ["--by", "education_form", "--by", "sex", "--by", "age_band"]
    code, _, err = stats(fed, "table", *new_table)
    assert code == 7
    assert "spent by all statisticians" in err
    assert noisy_calls(fed) == rounds
    assert fed.coordinator is not None
    fed.stop_party(fed.coordinator)
    shutil.rmtree(fed.root / "coordinator" / "state")
    fed.start_coordinator(statisticians={"demo-statistician": "1/2", BOB: "1/32"})
    code, out, err = stats(fed, "table", *new_table)
    assert code == 3, err
    assert out == ""
    for dept in fed.nodes:
        assert f"{dept} (RESOURCE_EXHAUSTED)" in err
