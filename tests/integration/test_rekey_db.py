"""Rekeying a node's database (issue 18, item 3): a new SQLCipher key, nothing lost.

A real SQLCipher node of a hundred children registered through the registry is rekeyed
with `childreg node rekey-db`; a copy of its old keyring.json (a backup's) must no longer
open the live database. Then a real subprocess doing the rekey is killed with SIGKILL at
each of its steps, and the node must open with exactly one of the two database keys,
every child intact, and one keys.rekey_db leaf once it is finished. Last, `childreg node
rotate-key` on the same stopped node.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import tomli_w
from structlog.testing import capture_logs
from typer.testing import CliRunner

from childreg.audit.leaf import AuditEvent
from childreg.audit.note import NoteVerifier
from childreg.config import load_config
from childreg.errors import FailedPrecondition, KeyProblem
from childreg.key_transition import follow
from childreg.models import ChildIn
from node.config import NodeConfig
from node.crypto.keys import KekSource, Keyring, generate_key_file
from node.kek_rotation import DataDirLock
from node.records.registry import Registry
from node.rekey import rekey_path
from node.server import init_node, open_keyring, open_node, rekey_db
from node.store.sqlcipher import SqlCipherStore
from node.store.sqlcipher.rekey import key_opens
from tests.conftest import IssueFn
from tests.integration.stopped_node import (
    DEPARTMENT,
    audit_leaves,
    copy_node,
    node_config,
    read_children,
)
from tools.cli.main import app

LOGIN = "ops-1"
CHILDREN = 100
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Host:
    """A stopped node on its host: its directory and configuration."""

    root: Path

    @property
    def config(self) -> Path:
        """The node's configuration file."""
        return self.root / "node.toml"

    def cfg(self) -> NodeConfig:
        """The node's configuration."""
        return load_config(NodeConfig, self.config)

    @property
    def kek(self) -> KekSource:
        """The node's KEK."""
        return KekSource.from_key_file(self.root / "kek.key")

    def snapshot(self) -> dict[str, str]:
        """Every child as the registry reads it (sealed fields opened)."""
        return read_children(self.cfg(), CHILDREN)

    def leaves(self) -> list[AuditEvent]:
        """Every leaf of the node's log."""
        return audit_leaves(self.cfg())

    def db_key(self, keyring_file: Path) -> str:
        """The database key a keyring file holds, unwrapped with the node's KEK."""
        return Keyring.open(keyring_file, self.kek).db_key_hex()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, issue: IssueFn) -> Path:
    """A stopped node holding CHILDREN children."""
    root = tmp_path_factory.mktemp("rekey-template")
    identity = issue("node", DEPARTMENT).directory
    generate_key_file(root / "kek.key")
    (root / "node.toml").write_text(tomli_w.dumps(node_config(root, identity, root / "kek.key")))
    cfg = load_config(NodeConfig, root / "node.toml")
    init_node(cfg)
    store, keyring = open_node(cfg)
    try:
        registry = Registry(store, keyring)
        with store.atomic():
            for i in range(CHILDREN):
                registry.register_child(
                    ChildIn(
                        child_id=f"C{i:04d}", national_id=f"AZE{5550000 + i:07d}",
                        given_name="Samira", family_name="Aliyeva",
                        date_of_birth=dt.date(2015, 9, 9), sex="female", district="shaki",
                    ),
                    not_duplicate_reason="test fixture: look-alike children on purpose",
                )  # fmt: skip
    finally:
        store.close()
    return root


@pytest.fixture
def host(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Host:
    """A fresh copy of the template node, the operator logged in as ``ops-1``."""
    root = tmp_path / "host"
    copy_node(template, root, ("node.toml",))
    monkeypatch.setattr(getpass, "getuser", lambda: LOGIN)
    return Host(root)


def rekey_cli(host: Host) -> tuple[int, str, BaseException | None]:
    """`childreg node rekey-db --json` with the node's configuration."""
    with capture_logs():
        result = CliRunner().invoke(
            app, ["node", "rekey-db", "--config", str(host.config), "--json"]
        )
    return result.exit_code, result.stdout, result.exception


def rekeys(host: Host) -> list[AuditEvent]:
    """The node's keys.rekey_db leaves."""
    return [e for e in host.leaves() if e.action == "keys.rekey_db"]


def test_after_a_rekey_a_backed_up_keyring_no_longer_opens_the_live_database(host: Host) -> None:
    """After `rekey-db` the database opens with the new key and every child reads as before,
    a copy of the old keyring.json opens with the KEK but its database key opens nothing,
    the pseudonyms and audit key stay, and one keys.rekey_db leaf names the operator."""
    cfg = host.cfg()
    before = host.snapshot()
    backup = host.root / "keyring-backup.json"
    shutil.copy(cfg.keyring_path, backup)
    old_keyring = Keyring.open(backup, host.kek)
    code, out, exc = rekey_cli(host)
    assert code == 0, exc
    summary = json.loads(out)
    assert summary["pages_reencrypted"] > 0
    assert summary["finished_interrupted_rekey"] is False

    assert not key_opens(cfg.db_path, old_keyring.db_key_hex())
    with pytest.raises(KeyProblem, match="database key does not open"):
        SqlCipherStore.open(cfg.db_path, old_keyring.db_key_hex())
    new_keyring = open_keyring(cfg)
    assert new_keyring.db_key_hex() != old_keyring.db_key_hex()
    assert new_keyring.pseudonym("C0001") == old_keyring.pseudonym("C0001")
    assert new_keyring.audit_signing_seed() == old_keyring.audit_signing_seed()
    assert host.snapshot() == before
    assert not rekey_path(cfg.keyring_path).exists()
    (leaf,) = rekeys(host)
    assert (leaf.actor, leaf.outcome, leaf.subject) == (
        f"department-operator/{DEPARTMENT}.{LOGIN}",
        "OK",
        "",
    )
    assert new_keyring.db_key_hex() not in json.dumps(leaf.__dict__)


def test_rekey_refuses_while_the_node_serves(host: Host) -> None:
    """With the data directory locked as a serving node locks it, `rekey-db` refuses,
    says to stop the node, and the database key is unchanged."""
    key = host.db_key(host.cfg().keyring_path)
    with DataDirLock(host.cfg().data_dir):
        code, _, exc = rekey_cli(host)
    assert code != 0
    assert isinstance(exc, FailedPrecondition)
    assert "stop the node first" in str(exc)
    assert key_opens(host.cfg().db_path, key)
    assert not rekey_path(host.cfg().keyring_path).exists()


def test_a_failure_before_the_commit_point_leaves_the_old_key(host: Host) -> None:
    """A rekey failing just before `PRAGMA rekey` removes its new keyring, leaves the old
    key opening the database and records no leaf."""
    cfg = host.cfg()
    key = host.db_key(cfg.keyring_path)

    def fail(step: str) -> None:
        if step == "before-rekey":
            raise RuntimeError("injected")

    with pytest.raises(RuntimeError, match="injected"):
        rekey_db(cfg, LOGIN, fault=fail)
    assert key_opens(cfg.db_path, key)
    assert not rekey_path(cfg.keyring_path).exists()
    assert rekeys(host) == []


def test_a_failure_after_the_commit_point_is_finished_by_the_starting_node(host: Host) -> None:
    """A rekey failing after the commit point leaves the node opening with the new key
    only; the node opening under its lock (as it starts) records the leaf once and
    switches keyring.json to the new key."""
    cfg = host.cfg()
    before = host.snapshot()
    old_key = host.db_key(cfg.keyring_path)

    def fail(step: str) -> None:
        if step == "after-commit":
            raise RuntimeError("injected")

    with pytest.raises(RuntimeError, match="injected"):
        rekey_db(cfg, LOGIN, fault=fail)
    pending = rekey_path(cfg.keyring_path)
    new_key = host.db_key(pending)
    assert (key_opens(cfg.db_path, old_key), key_opens(cfg.db_path, new_key)) == (False, True)
    assert host.snapshot() == before  # opens through the pending keyring, changing nothing
    assert pending.exists()
    with DataDirLock(cfg.data_dir):
        open_keyring(cfg, repair=True)
    assert not pending.exists()
    assert host.db_key(cfg.keyring_path) == new_key
    assert [e.outcome for e in rekeys(host)] == ["OK"]


_KILLER = """
import os, signal, sys
from pathlib import Path
from childreg.config import load_config
from node.config import NodeConfig
from node.server import rekey_db
config, point = Path(sys.argv[1]), sys.argv[2]
def fault(step):
    if step == point:
        os.kill(os.getpid(), signal.SIGKILL)
rekey_db(load_config(NodeConfig, config), "ops-1", fault=fault)
"""


@pytest.mark.parametrize(
    ("point", "committed"),
    [
        ("before-pending", False),
        ("after-pending", False),
        ("before-rekey", False),
        ("after-rekey", True),
        ("after-commit", True),
        ("after-leaf", True),
    ],
)
def test_a_rekey_killed_midway_leaves_a_node_that_opens_with_exactly_one_key(
    host: Host, point: str, committed: bool
) -> None:
    """A rekey SIGKILLed at a step leaves the database opening with exactly one of the two
    database keys (the old before the commit point, the new after it), every child intact,
    and `rekey-db` run again leaves one new key and exactly one keys.rekey_db leaf."""
    cfg = host.cfg()
    before = host.snapshot()
    old_key = host.db_key(cfg.keyring_path)
    proc = subprocess.run(
        [sys.executable, "-c", _KILLER, str(host.config), point],
        cwd=ROOT,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    pending = rekey_path(cfg.keyring_path)
    opens_old = key_opens(cfg.db_path, old_key)
    opens_new = pending.exists() and key_opens(cfg.db_path, host.db_key(pending))
    assert (opens_old, opens_new) == (not committed, committed)
    assert host.snapshot() == before

    code, out, exc = rekey_cli(host)
    assert code == 0, exc
    assert json.loads(out)["finished_interrupted_rekey"] is committed
    assert not pending.exists()
    assert not key_opens(cfg.db_path, old_key)
    assert host.snapshot() == before
    assert [e.outcome for e in rekeys(host)] == ["OK"]


def rotate_key_cli(host: Host, which: str) -> tuple[int, str, BaseException | None]:
    """`childreg node rotate-key --which WHICH --json` with the node's configuration."""
    args = ["node", "rotate-key", "--config", str(host.config), "--which", which, "--json"]
    with capture_logs():
        result = CliRunner().invoke(app, args)
    return result.exit_code, result.stdout, result.exception


def audit_key_cli(host: Host) -> str:
    """The verifier key `childreg node audit-key --json` prints."""
    with capture_logs():
        result = CliRunner().invoke(
            app, ["node", "audit-key", "--config", str(host.config), "--json"]
        )
    assert result.exit_code == 0, result.exception
    return str(json.loads(result.stdout)["verifier_key"])


def test_rotate_key_on_a_stopped_node_announces_the_new_audit_key(host: Host) -> None:
    """`rotate-key --which audit` on a SQLCipher node prints the old and new key and the
    statement; `audit-key` then prints the new key, the statement leads from the old one,
    the rekeyed database still opens, and one keys.rotate_signing leaf names the operator."""
    old = audit_key_cli(host)
    code, out, exc = rotate_key_cli(host, "audit")
    assert code == 0, exc
    summary = json.loads(out)
    assert (summary["which"], summary["from_generation"], summary["to_generation"]) == (
        "audit",
        1,
        2,
    )
    assert summary["old_key"] == old
    assert audit_key_cli(host) == summary["new_key"] != old
    pinned = NoteVerifier.from_key_string(old)
    (transition,) = follow(pinned.public_key, [summary["statement"]], "audit", pinned.name)
    assert transition.new == NoteVerifier.from_key_string(summary["new_key"]).public_key
    code, _, exc = rekey_cli(host)  # the other key commands keep working after it
    assert code == 0, exc
    assert audit_key_cli(host) == summary["new_key"]
    (leaf,) = [e for e in host.leaves() if e.action == "keys.rotate_signing"]
    assert (leaf.actor, leaf.outcome) == (f"department-operator/{DEPARTMENT}.{LOGIN}", "OK")


def test_rotate_key_refuses_while_the_node_serves_and_for_an_unknown_key(host: Host) -> None:
    """With the data directory locked `rotate-key` refuses and says to stop the node; an
    unknown --which is a usage error; the audit key is unchanged either way."""
    old = audit_key_cli(host)
    with DataDirLock(host.cfg().data_dir):
        code, _, exc = rotate_key_cli(host, "audit")
    assert code != 0
    assert isinstance(exc, FailedPrecondition)
    assert "stop the node first" in str(exc)
    code, _, _ = rotate_key_cli(host, "masking")
    assert code == 2
    assert audit_key_cli(host) == old
