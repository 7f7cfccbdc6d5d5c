"""The operator's commands that run with the KEK leave their leaf (issue 15, item 5).

`childreg node access-report` and `childreg node pseudonym` open the node's real SQLCipher
database on its host and link a child id to the log's pseudonym; each now leaves exactly
one ``audit.read`` leaf naming the operator, ``department-operator/<department>.<login>``,
through the same audited service as every gRPC call, and no personal data.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import tomli_w
from structlog.testing import capture_logs
from typer.testing import CliRunner

from childreg.audit.leaf import AuditEvent
from childreg.config import load_config
from childreg.errors import FailedPrecondition, InvalidInput
from childreg.models import ChildIn
from node.audit.actor import Actor
from node.audit.log import AuditLog
from node.audit.service import Audited
from node.config import NodeConfig
from node.crypto.keys import generate_key_file
from node.records.registry import Registry
from node.server import init_node, open_node
from tests.conftest import FEDERATION, IssueFn
from tools.cli.main import app

DEPARTMENT = "alpha"
STAFF = f"spiffe://{FEDERATION}/department-staff/alpha.registrar-1"
LOGIN = "ops-1"
OPERATOR = f"department-operator/{DEPARTMENT}.{LOGIN}"
NAME, NATIONAL_ID = "Samira", "AZE4440002"


@dataclass
class Host:
    """A node's configuration file on its host, the node not running."""

    config: Path

    def cli(self, *args: str) -> tuple[int, str, BaseException | None]:
        """Run `childreg node …` with this node's configuration."""
        command, *rest = args
        with capture_logs():
            result = CliRunner().invoke(app, ["node", command, *rest, "--config", str(self.config)])
        return result.exit_code, result.stdout, result.exception

    def leaves(self) -> list[bytes]:
        """Every leaf of the node's log, as stored."""
        store, keyring = open_node(load_config(NodeConfig, self.config))
        try:
            log = AuditLog(
                store, keyring.audit_signing_seed(), federation=FEDERATION, department=DEPARTMENT
            )
            return log.leaves()
        finally:
            store.close()

    def pseudonym(self, child_id: str) -> str:
        """The child's pseudonym, computed here without any command."""
        store, keyring = open_node(load_config(NodeConfig, self.config))
        store.close()
        return keyring.pseudonym(child_id).hex()


@pytest.fixture
def host(tmp_path: Path, issue: IssueFn, monkeypatch: pytest.MonkeyPatch) -> Host:
    """An initialised node holding child C1 (registered by staff, one leaf, checkpointed),
    with the operator logged in as ``ops-1``."""
    generate_key_file(tmp_path / "kek.key")
    config = tmp_path / "node.toml"
    config.write_text(
        tomli_w.dumps(
            {
                "department_id": DEPARTMENT, "name": "Alpha", "region": "shaki_zagatala",
                "districts": ["shaki"], "data_dir": str(tmp_path / "data"),
                "identity_dir": str(issue("node", DEPARTMENT).directory),
                "kek_file": str(tmp_path / "kek.key"),
                "denylist_file": str(tmp_path / "denylist.json"),
                "statistics_authority_key": str(tmp_path / "authority.pub"),
            }
        )
    )  # fmt: skip
    cfg = load_config(NodeConfig, config)
    init_node(cfg)
    store, keyring = open_node(cfg)
    try:
        log = AuditLog(
            store, keyring.audit_signing_seed(), federation=FEDERATION, department=DEPARTMENT
        )
        child = ChildIn(
            child_id="C1", national_id=NATIONAL_ID, given_name=NAME, family_name="Aliyeva",
            date_of_birth=dt.date(2015, 9, 9), sex="female", district="shaki",
        )  # fmt: skip
        registry = Registry(store, keyring)
        Audited(store, keyring, log).change(
            Actor.machine(STAFF), "child.register", b"register C1",
            lambda: registry.register_child(child), "C1",
        )  # fmt: skip
        log.checkpoint()
    finally:
        store.close()
    monkeypatch.setattr(getpass, "getuser", lambda: LOGIN)
    return Host(config)


def operator_leaf(before: list[bytes], after: list[bytes]) -> AuditEvent:
    """The one leaf a command added (the log grew by exactly one)."""
    assert after[: len(before)] == before
    (added,) = after[len(before) :]
    for secret in (NAME, NATIONAL_ID, "C1"):
        assert secret.encode() not in added
    return AuditEvent.from_bytes(added)


def test_access_report_leaves_one_leaf_naming_the_operator(host: Host) -> None:
    """`node access-report C1` lists the staff's registration and appends exactly one
    audit.read leaf by department-operator/alpha.ops-1, about C1's pseudonym, with no
    personal data; the next report lists that access too."""
    before = host.leaves()
    code, out, exc = host.cli("access-report", "C1", "--json")
    assert code == 0, exc
    report = json.loads(out)
    assert [(a["action"], a["who"]) for a in report["accesses"]] == [("child.register", STAFF)]
    assert report["verified_leaves"] == 1
    leaf = operator_leaf(before, host.leaves())
    assert (leaf.actor, leaf.action, leaf.purpose, leaf.outcome) == (
        OPERATOR,
        "audit.read",
        "access-report",
        "OK",
    )
    assert leaf.subject == report["subject"] == host.pseudonym("C1")
    assert leaf.request
    assert leaf.grant == ""
    code, out, exc = host.cli("access-report", "C1", "--json")
    assert code == 0, exc
    assert [(a["action"], a["who"]) for a in json.loads(out)["accesses"]] == [
        ("child.register", STAFF),
        ("audit.read", OPERATOR),
    ]


def test_pseudonym_leaves_one_leaf_naming_the_operator(host: Host) -> None:
    """`node pseudonym C1` prints the pseudonym and appends exactly one audit.read leaf by
    the operator about that pseudonym, with no personal data."""
    before = host.leaves()
    code, out, exc = host.cli("pseudonym", "C1", "--json")
    assert code == 0, exc
    subject = json.loads(out)["subject"]
    assert subject == host.pseudonym("C1")
    leaf = operator_leaf(before, host.leaves())
    assert (leaf.actor, leaf.action, leaf.purpose, leaf.outcome, leaf.subject) == (
        OPERATOR,
        "audit.read",
        "pseudonym",
        "OK",
        subject,
    )


def test_the_key_commands_leave_no_leaf(host: Host) -> None:
    """audit-key, extract-key and roster-entry read only public keys: no leaf."""
    before = host.leaves()
    for command in ("audit-key", "extract-key", "roster-entry"):
        code, _, exc = host.cli(command, "--json")
        assert code == 0, exc
    assert host.leaves() == before


def test_an_operator_login_that_is_no_actor_is_refused_before_anything(
    host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A login that cannot name an actor (here with a space and capitals) is refused with
    InvalidInput on the login field, and the log is left as it was."""
    monkeypatch.setattr(getpass, "getuser", lambda: "Root User")
    before = host.leaves()
    for command in ("access-report", "pseudonym"):
        code, _, exc = host.cli(command, "C1")
        assert code != 0
        assert isinstance(exc, InvalidInput)
        assert [v.field for v in exc.violations] == ["login"]
    assert host.leaves() == before


def test_retention_without_rules_is_refused_and_leaves_no_leaf(host: Host) -> None:
    """`node retention --dry-run` on a node with no [retention] rule is refused saying what
    to set, and neither it nor `--apply` leaves a leaf or erases anything."""
    before = host.leaves()
    for mode in ("--dry-run", "--apply"):
        code, _, exc = host.cli("retention", mode)
        assert code != 0
        assert isinstance(exc, FailedPrecondition)
        assert "[retention]" in str(exc)
    assert host.leaves() == before
