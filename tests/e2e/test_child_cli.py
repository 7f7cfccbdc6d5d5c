"""The staff CLI `childreg child …` end to end: real `childreg` processes against a real node
process (SQLCipher store, mutual TLS), as department staff.

A child is registered; a look-alike is held (exit 9, the candidate listed, nothing
registered) and then registered with --not-duplicate; `find --json` finds the first child
by its name in the other script; an assessment, a placement and a care setting are
recorded; `show --json` reflects them. One child's whole life (register answering the
warning, find, assess, place, care twice, correct, close) shows in `history` and is one leaf
per step. A child erased with `erase` writes the guardian's receipt and then reads as
erased. Missing values off a terminal are an error naming each option; a code the node
does not know is refused naming its field.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import cli
from tools.clients.client import EXIT_HELD, EXIT_REFUSED, EXIT_REJECTED, EXIT_USAGE
from tools.dev.federation import LocalFederation
from tools.dev.synth import plan_departments


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFederation]:
    """One department's node process, running."""
    plan = plan_departments(1)[0]
    federation = LocalFederation(tmp_path_factory.mktemp("child-cli") / "fed", [plan])
    with federation:
        federation.setup()
        federation.start_nodes()
        yield federation


def child(fed: LocalFederation, command: str, *args: str) -> tuple[int, str, str]:
    """Run `childreg child COMMAND ARGS…` as the department's staff: (exit, stdout, stderr)."""
    dept = fed.departments[0].id
    node = fed.nodes[dept]
    r = cli(
        "child", command, *args, "--node", node.address, "--server-name", node.server_name,
        "--identity", str(fed.identity(f"staff-{dept}")),
    )  # fmt: skip
    return r.returncode, r.stdout, r.stderr


def person(fed: LocalFederation, child_id: str, given: str, family: str) -> list[str]:
    """The register arguments of a girl born 2016-04-02 in the department's first district."""
    return [
        child_id, "--given-name", given, "--family-name", family, "--born", "2016-04-02",
        "--sex", "female", "--district", fed.departments[0].districts[0],
    ]  # fmt: skip


def test_register_find_and_record_through_the_cli(fed: LocalFederation) -> None:
    """register → held look-alike (exit 9) → register --not-duplicate → find --json by the
    other script → assess, place, care → show --json holds all three."""
    code, out, _ = child(fed, "register", *person(fed, "K1", "Aysel", "Məmmədova"), "--json")
    assert code == 0
    assert json.loads(out) == {"registered": True, "duplicates": []}

    code, out, err = child(fed, "register", *person(fed, "K2", "Aysel", "Mammadova"))
    assert code == EXIT_HELD
    assert "K1" in out  # the candidate is listed
    assert "--not-duplicate" in err
    code, out, _ = child(fed, "show", "K2", "--json")
    assert code == EXIT_REJECTED  # nothing was registered

    code, out, _ = child(
        fed, "register", *person(fed, "K2", "Aysel", "Mammadova"),
        "--not-duplicate", "twin sister, other mother's name on file", "--json",
    )  # fmt: skip
    assert code == 0
    done = json.loads(out)
    assert done["registered"] is True
    assert [d["hit"]["child_id"] for d in done["duplicates"]] == ["K1"]

    code, out, _ = child(fed, "find", "--name", "Айсел Мамедова", "--json")
    assert code == 0
    found = json.loads(out)
    assert {h["child_id"] for h in found["hits"]} == {"K1", "K2"}
    assert found["next_page_token"] is None

    assert child(fed, "assess", "K1", "--date", "2024-02-01", "--commission", "Baku PMPC",
                 "--band", "pct_41_60", "--icf", "d140.2", "--icf", "b167.1",
                 "--diagnosis", "F84.0", "--functioning", "learning=some_difficulty",
                 "--functioning", "anxiety=weekly", "--recommended-form", "inclusive_class",
                 "--support", "speech_therapy", "--accommodation", "extra_time",
                 "--next-review", "2025-02-01")[0] == 0  # fmt: skip
    assert child(fed, "place", "K1", "--year", "2024/25", "--form", "inclusive_class",
                 "--institution", "School 6")[0] == 0  # fmt: skip
    assert child(fed, "care", "K1", "--setting", "family", "--since", "2024-03-01")[0] == 0

    code, out, _ = child(fed, "show", "K1", "--json")
    assert code == 0
    view = json.loads(out)
    assert view["child"]["family_name"] == "Məmmədova"
    [assessment] = view["assessments"]
    assert assessment["icf_codes"] == ["d140.2", "b167.1"]
    assert assessment["functioning"] == [
        {"domain": "learning", "level": "some_difficulty"},
        {"domain": "anxiety", "level": "weekly"},
    ]
    assert assessment["accommodations"] == ["extra_time"]
    assert assessment["next_review"] == "2025-02-01"
    assert view["placements"] == [
        {"child_id": "K1", "academic_year": "2024/25", "education_form": "inclusive_class",
         "institution": "School 6"}
    ]  # fmt: skip
    assert view["care_settings"] == [
        {"child_id": "K1", "care_setting": "family", "since": "2024-03-01"}
    ]


def test_missing_values_off_a_terminal_name_each_option(fed: LocalFederation) -> None:
    """Without a terminal, a command missing required values exits 2 naming every one."""
    code, _, err = child(fed, "place", "K1")
    assert code == EXIT_USAGE
    assert "missing --year, --form" in err
    code, _, err = child(fed, "find")
    assert code == EXIT_USAGE
    assert "--name" in err


def test_a_code_the_node_does_not_know_is_refused_naming_its_field(fed: LocalFederation) -> None:
    """A care setting outside the node's code list exits 6 naming care_setting."""
    code, _, err = child(fed, "care", "K1", "--setting", "castle", "--since", "2024-03-01")
    assert code == EXIT_REJECTED
    assert "care_setting" in err


def test_one_childs_whole_life_through_the_cli(fed: LocalFederation) -> None:
    """register (held, then answered with a reason) → find misspelled in Cyrillic → assess →
    place → care twice → correct the name with a reason → close → history: every version
    with actor, time and reason, and each step exactly one leaf about the child."""
    district = fed.departments[0].districts[0]

    def born(child_id: str, family: str, day: str) -> list[str]:
        return [child_id, "--given-name", "Aysel", "--family-name", family, "--born", day,
                "--sex", "female", "--district", district]  # fmt: skip

    assert child(fed, "register", *born("L0", "Mammadova", "2015-07-10"))[0] == 0
    code, out, _ = child(fed, "register", *born("L1", "Məmmədova", "2015-07-08"), "--json")
    assert code == EXIT_HELD
    assert [d["hit"]["child_id"] for d in json.loads(out)["duplicates"]] == ["L0"]
    why = "another girl, born two days later, other parents"
    assert child(fed, "register", *born("L1", "Məmmədova", "2015-07-08"),
                 "--not-duplicate", why)[0] == 0  # fmt: skip
    code, out, _ = child(fed, "find", "--name", "Айсэл Мамедова", "--born", "2015-07-08", "--json")
    assert [h["child_id"] for h in json.loads(out)["hits"]] == ["L1"]
    steps = [
        ("assess", "L1", "--date", "2023-05-02", "--commission", "PMPC", "--band", "pct_41_60"),
        ("place", "L1", "--year", "2023/24", "--form", "special_school"),
        ("care", "L1", "--setting", "state_residential_institution", "--since", "2018-01-10"),
        ("care", "L1", "--setting", "foster_family", "--since", "2023-02-01"),
        ("correct", "L1", "--family-name", "Məmmədzadə", "--reason", "birth certificate"),
        ("close", "L1", "--on", "2024-06-01", "--reason", "moved_abroad"),
    ]
    for command, *args in steps:
        code, _, err = child(fed, command, *args)
        assert code == 0, (command, err)
    code, out, _ = child(fed, "correct", "L1", "--given-name", "Aytən", "--reason", "typo")
    assert code == EXIT_REFUSED  # a closed record takes no more changes

    code, out, _ = child(fed, "history", "L1", "--json")
    assert code == 0
    book = json.loads(out)
    entries = book["entries"]
    assert [e["kind"] for e in entries] == [
        "registered",
        "assessed",
        "placed",
        "care_setting",
        "care_setting",
        "corrected",
        "closed",
    ]
    staff = entries[0]["actor"]
    assert staff.startswith("spiffe://")
    assert "/department-staff/" in staff
    assert all(e["actor"] == staff and e["at"].endswith("Z") for e in entries)
    assert entries[0]["reason"] == why
    assert entries[5]["reason"] == "birth certificate"
    assert entries[5]["changes"] == [
        {"field": "family_name", "before": "Məmmədova", "after": "Məmmədzadə"}
    ]
    assert (book["closed_on"], book["close_reason"]) == ("2024-06-01", "moved_abroad")
    code, out, _ = child(fed, "history", "L1")
    assert code == 0
    assert "Məmmədzadə" in out
    assert "birth certificate" in out

    party = fed.nodes[fed.departments[0].id]
    r = cli("node", "access-report", "L1", "--config", str(party.config), "--json")
    assert r.returncode == 0, r.stderr
    accesses = [(a["action"], a["who"], a["outcome"]) for a in json.loads(r.stdout)["accesses"]]
    assert accesses == [(action, staff, outcome) for action, outcome in [
        ("child.register", "OK"), ("child.register", "OK"), ("child.search", "OK"),
        ("assessment.record", "OK"), ("placement.record", "OK"), ("care_setting.record", "OK"),
        ("care_setting.record", "OK"), ("child.correct", "OK"), ("child.close", "OK"),
        ("child.correct", "FAILED_PRECONDITION"), ("child.history", "OK"),
        ("child.history", "OK"),
    ]]  # fmt: skip


def test_erase_through_the_cli(fed: LocalFederation, tmp_path: Path) -> None:
    """register → erase --receipt-dir --language ru --json → the receipt files (HTML, PDF,
    JSON, in Russian) and the pseudonym; show and
    a second erase then exit 6 saying "erased"; the access report lists the erasure leaf."""
    district = fed.departments[0].districts[0]
    who = ["--given-name", "Nərmin", "--family-name", "Quliyeva", "--born", "2012-01-20"]
    assert child(fed, "register", "E1", *who, "--sex", "female", "--district", district)[0] == 0
    assert child(fed, "place", "E1", "--year", "2023/24", "--form", "special_school")[0] == 0
    receipts = tmp_path / "receipts"
    receipts.mkdir()
    code, out, err = child(
        fed, "erase", "E1", "--reason", "guardian_request", "--receipt-dir", str(receipts),
        "--language", "ru", "--json",
    )  # fmt: skip
    assert code == 0, err
    done = json.loads(out)
    assert (done["erased"], done["child_id"]) == (True, "E1")
    pseudonym = done["pseudonym"]
    assert sorted(p.name for p in receipts.iterdir()) == [
        f"erasure-{pseudonym}.html",
        f"erasure-{pseudonym}.json",
        f"erasure-{pseudonym}.pdf",
    ]
    receipt = json.loads((receipts / f"erasure-{pseudonym}.json").read_text("utf-8"))
    assert (receipt["child_id"], receipt["reason"]) == ("E1", "guardian_request")
    page = (receipts / f"erasure-{pseudonym}.html").read_text("utf-8")
    assert "Запись удалена" in page  # in the guardian's language
    assert "spiffe://" not in page

    for args in (["show", "E1"], ["erase", "E1", "--reason", "guardian_request"]):
        code, _, err = child(fed, *args)
        assert code == EXIT_REJECTED
        assert "erased" in err

    party = fed.nodes[fed.departments[0].id]
    r = cli("node", "access-report", "E1", "--config", str(party.config), "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    actions = [(a["action"], a["outcome"]) for a in report["accesses"]]
    assert ("child.erase", "OK") in actions
    assert actions[-2:] == [("child.read", "NOT_FOUND"), ("child.erase", "NOT_FOUND")]
