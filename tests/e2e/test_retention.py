"""Retention rules end to end: real `childreg` processes against a real node process.

A node configured to erase records at age 18 and 5 years after closing holds a grown-up
child, a record closed long ago and a young child. `node retention --dry-run --json` (the
node stopped) lists the first two by pseudonym and erases nothing; once `node serve` runs,
its scheduled job erases exactly those two, each a `child.erase` leaf by the node's own
SPIFFE id; a child registered later and due is erased by `--apply`, by the operator.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import time
from collections.abc import Iterator

import pytest

from childreg.history import Closure
from childreg.models import ChildIn
from node.records.registry import Registry
from node.server import open_node
from tests.e2e.conftest import cli
from tools.clients.client import EXIT_REJECTED
from tools.dev.federation import LocalFederation
from tools.dev.synth import plan_departments

RULES = {"erase_at_age": 18, "erase_years_after_closed": 5, "run_every_hours": 24}


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFederation]:
    """One department's node with retention rules, laid out and holding three children,
    not yet serving."""
    plan = plan_departments(1)[0]
    root = tmp_path_factory.mktemp("retention") / "fed"
    federation = LocalFederation(root, [plan], node_settings={"retention": RULES})
    with federation:
        federation.setup()
        cfg, _ = federation.node_keyring(plan.id)
        store, keyring = open_node(cfg)
        try:
            registry = Registry(store, keyring)
            district = plan.districts[0]
            for cid, given, born in (
                ("R1", "Tural", dt.date(2005, 1, 10)),  # 18 long ago: due by age
                ("R2", "Leyla", dt.date(2016, 4, 2)),  # young, open: never due yet
                ("R3", "Nigar", dt.date(2010, 5, 3)),  # closed in 2015: due after 5 years
            ):
                registry.register_child(
                    ChildIn(child_id=cid, given_name=given, family_name="Həsənli",
                            date_of_birth=born, sex="female", district=district)
                )  # fmt: skip
            registry.close_child(
                Closure(child_id="R3", closed_on=dt.date(2015, 6, 1), reason="moved_abroad")
            )
        finally:
            store.close()
        yield federation


def node_cli(fed: LocalFederation, *args: str) -> tuple[int, str, str]:
    """Run `childreg node ARGS… --config <the node's>` on the node's host."""
    party = fed.nodes[fed.departments[0].id]
    r = cli("node", *args, "--config", str(party.config))
    return r.returncode, r.stdout, r.stderr


def show(fed: LocalFederation, child_id: str) -> tuple[int, str]:
    """`childreg child show ID` as the department's staff: (exit, stderr)."""
    dept = fed.departments[0].id
    node = fed.nodes[dept]
    r = cli("child", "show", child_id, "--node", node.address, "--server-name",
            node.server_name, "--identity", str(fed.identity(f"staff-{dept}")))  # fmt: skip
    return r.returncode, r.stderr


def pseudonym(fed: LocalFederation, child_id: str) -> str:
    """The child's pseudonym, computed from the keyring."""
    _, keyring = fed.node_keyring(fed.departments[0].id)
    return keyring.pseudonym(child_id).hex()


def test_dry_run_then_the_scheduled_run_then_apply(fed: LocalFederation) -> None:
    """dry run lists R1 and R3 and erases nothing; the serving node erases them by itself
    as its SPIFFE id; a due child registered later is erased by --apply as the operator."""
    code, out, err = node_cli(fed, "retention", "--dry-run", "--json")
    assert code == 0, err
    listed = json.loads(out)
    assert {d["pseudonym"]: d["rules"] for d in listed["due"]} == {
        pseudonym(fed, "R1"): ["retention_after_age"],
        pseudonym(fed, "R3"): ["retention_after_closed"],
    }
    assert listed["counts"] == {
        "retention_after_closed": 1, "retention_after_age": 1, "total": 2,
    }  # fmt: skip
    code, out, _ = node_cli(fed, "retention", "--dry-run", "--on", "2034-04-02", "--json")
    assert json.loads(out)["counts"]["total"] == 3  # R2 turns 18 then

    fed.start_nodes()
    deadline = time.monotonic() + 120  # the job's first run comes a few seconds after start
    while show(fed, "R1")[0] == 0 and time.monotonic() < deadline:
        time.sleep(1)
    for cid in ("R1", "R3"):
        code, err = show(fed, cid)
        assert code == EXIT_REJECTED
        assert "erased" in err
    assert show(fed, "R2")[0] == 0

    code, out, _ = node_cli(fed, "access-report", "R1", "--json")
    assert code == 0
    erasures = [a for a in json.loads(out)["accesses"] if a["action"] == "child.erase"]
    dept = fed.departments[0].id
    assert [(a["who"], a["purpose"]) for a in erasures] == [
        (f"spiffe://{fed.federation}/node/{dept}", "retention_after_age")
    ]

    district = fed.departments[0].districts[0]
    staff = ["--node", fed.nodes[dept].address, "--server-name", fed.nodes[dept].server_name,
             "--identity", str(fed.identity(f"staff-{dept}"))]  # fmt: skip
    r = cli("child", "register", "R4", "--given-name", "Elvin", "--family-name", "Məmmədli",
            "--born", "2006-02-03", "--sex", "male", "--district", district, *staff)  # fmt: skip
    assert r.returncode == 0, r.stderr
    code, out, err = node_cli(fed, "retention", "--apply", "--json")
    assert code == 0, err
    applied = json.loads(out)
    assert applied["erased"] == [{"pseudonym": pseudonym(fed, "R4"), "rule": "retention_after_age"}]
    assert show(fed, "R4")[0] == EXIT_REJECTED
    code, out, _ = node_cli(fed, "access-report", "R4", "--json")
    who = [a["who"] for a in json.loads(out)["accesses"] if a["action"] == "child.erase"]
    assert who == [f"department-operator/{dept}.{getpass.getuser()}"]
