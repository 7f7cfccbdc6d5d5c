"""Rotating a node's KEK (issue 18, item 3): the old KEK opens nothing, nothing is lost.

A real SQLCipher node of a few hundred children registered through the registry (each with
a wrapped data key, sealed identity and a sealed assessment) has its KEK rotated with
`childreg node rotate-kek`; then a real subprocess doing the rotation is killed with SIGKILL
at each of its steps, and the node must open with exactly one of the two KEKs, every child
intact. A child erased before the rotation is skipped, and its old sealed fields open with
no key of either keyring.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import getpass
import json
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
from childreg.config import load_config
from childreg.errors import Erased, FailedPrecondition, KeyProblem
from childreg.history import ErasureIn
from childreg.models import AssessmentIn, ChildIn
from node.audit.actor import Actor, acting_as
from node.config import NodeConfig
from node.crypto.keys import KekSource, Keyring, generate_key_file
from node.kek_rotation import DataDirLock, next_keyring_path
from node.records.registry import IDENTITY_CONTEXT, Registry
from node.server import init_node, open_keyring, open_node
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
CHILDREN = 300
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Host:
    """A stopped node on its host: its directory, two configurations (old and new KEK)."""

    root: Path

    @property
    def old_config(self) -> Path:
        """The configuration naming the KEK the node was made with."""
        return self.root / "node.toml"

    @property
    def new_config(self) -> Path:
        """The same configuration naming the new KEK."""
        return self.root / "node-new.toml"

    @property
    def new_kek(self) -> Path:
        """The new key file."""
        return self.root / "new.key"

    def cfg(self, new: bool = False) -> NodeConfig:
        """The node's configuration (with the new KEK when ``new``)."""
        return load_config(NodeConfig, self.new_config if new else self.old_config)

    def snapshot(self, new: bool) -> dict[str, str]:
        """Every child as the registry reads it (sealed fields opened), with that KEK."""
        return read_children(self.cfg(new), CHILDREN)

    def opens(self, new: bool) -> bool:
        """Whether the node opens with that KEK."""
        try:
            store, _ = open_node(self.cfg(new))
        except KeyProblem:
            return False
        store.close()
        return True

    def leaves(self, new: bool) -> list[AuditEvent]:
        """Every leaf of the node's log."""
        return audit_leaves(self.cfg(new))


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, issue: IssueFn) -> Path:
    """A stopped node holding CHILDREN children, each with a sealed assessment."""
    root = tmp_path_factory.mktemp("kek-template")
    identity = issue("node", DEPARTMENT).directory
    generate_key_file(root / "old.key")
    generate_key_file(root / "new.key")
    (root / "node.toml").write_text(tomli_w.dumps(node_config(root, identity, root / "old.key")))
    (root / "node-new.toml").write_text(
        tomli_w.dumps(node_config(root, identity, root / "new.key"))
    )
    cfg = load_config(NodeConfig, root / "node.toml")
    init_node(cfg)
    store, keyring = open_node(cfg)
    try:
        registry = Registry(store, keyring)
        with store.atomic():
            for i in range(CHILDREN):
                cid = f"C{i:04d}"
                registry.register_child(
                    ChildIn(
                        child_id=cid, national_id=f"AZE{4440000 + i:07d}", given_name="Samira",
                        family_name="Aliyeva", date_of_birth=dt.date(2015, 9, 9), sex="female",
                        district="shaki",
                    ),
                    not_duplicate_reason="test fixture: look-alike children on purpose",
                )  # fmt: skip
                registry.record_assessment(
                    AssessmentIn(
                        child_id=cid, assessment_date=dt.date(2024, 3, 1), commission="PMPC-1",
                        impairment_band="pct_41_60",
                    )
                )  # fmt: skip
    finally:
        store.close()
    return root


@pytest.fixture
def host(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Host:
    """A fresh copy of the template node, the operator logged in as ``ops-1``."""
    root = tmp_path / "host"
    copy_node(template, root, ("node.toml", "node-new.toml"))
    monkeypatch.setattr(getpass, "getuser", lambda: LOGIN)
    return Host(root)


def rotate_cli(host: Host) -> tuple[int, str, BaseException | None]:
    """`childreg node rotate-kek --json` with the old configuration and the new key file."""
    args = ["node", "rotate-kek", "--config", str(host.old_config), "--new-kek", str(host.new_kek)]
    with capture_logs():
        result = CliRunner().invoke(app, [*args, "--json"])
    return result.exit_code, result.stdout, result.exception


def test_after_rotation_the_old_kek_opens_nothing_and_the_new_one_opens_every_child(
    host: Host,
) -> None:
    """After `rotate-kek` the old KEK opens neither the keyring nor any child's key, the new
    one opens every child's sealed fields as before, and one keys.rotate leaf names the
    operator, with no key material."""
    before = host.snapshot(new=False)
    old_kek = KekSource.from_key_file(host.root / "old.key")
    old_keyring = Keyring.open(host.cfg().keyring_path, old_kek)
    leaves_before = len(host.leaves(new=False))
    code, out, exc = rotate_cli(host)
    assert code == 0, exc
    summary = json.loads(out)
    assert (summary["children_rewrapped"], summary["to_generation"]) == (CHILDREN, 2)

    with pytest.raises(KeyProblem, match="does not open the keyring"):
        Keyring.open(host.cfg().keyring_path, old_kek)
    with pytest.raises(KeyProblem) as refused:
        open_node(host.cfg())
    assert "rotated" in refused.value.hint
    assert not next_keyring_path(host.cfg().keyring_path).exists()
    store, new_keyring = open_node(host.cfg(new=True))
    try:
        rows = [row for page in store.wrapped_keys() for row in page]
    finally:
        store.close()
    assert len(rows) == CHILDREN
    for _, child_id, version, wrapped in rows:
        assert version == 2
        with pytest.raises(KeyProblem):
            old_keyring.child_key(child_id, version, wrapped)
        with pytest.raises(KeyProblem):
            old_keyring.child_key(child_id, 1, wrapped)
        new_keyring.child_key(child_id, version, wrapped)
    assert host.snapshot(new=True) == before

    leaves = host.leaves(new=True)
    (leaf,) = leaves[leaves_before:]
    assert (leaf.action, leaf.actor, leaf.outcome, leaf.subject) == (
        "keys.rotate",
        f"department-operator/{DEPARTMENT}.{LOGIN}",
        "OK",
        "",
    )
    raw = json.dumps(dataclasses.asdict(leaf), default=str)
    for secret in (host.new_kek.read_text().strip(), (host.root / "old.key").read_text().strip()):
        assert secret not in raw


def test_rotation_skips_an_erased_child_whose_fields_open_with_no_key(host: Host) -> None:
    """A child erased before `rotate-kek` is skipped (not refused); afterwards its identity
    sealed before the erasure opens with no key of the old or the new keyring, nor with any
    held child's key, and it still reads as erased."""
    store, keyring = open_node(host.cfg())
    try:
        erased = store.get_child("C0007")
        assert erased is not None
        with acting_as(Actor.operator(DEPARTMENT, LOGIN)):
            Registry(store, keyring).erase_child(
                ErasureIn(child_id="C0007", reason="guardian_request")
            )
    finally:
        store.close()
    old_keyring = Keyring.open(
        host.cfg().keyring_path, KekSource.from_key_file(host.root / "old.key")
    )
    code, out, exc = rotate_cli(host)
    assert code == 0, exc
    assert json.loads(out)["children_rewrapped"] == CHILDREN - 1

    store, new_keyring = open_node(host.cfg(new=True))
    try:
        with pytest.raises(Erased):
            Registry(store, new_keyring).get_child("C0007")
        rows = [row for page in store.wrapped_keys() for row in page]
        child_keys = [new_keyring.child_key(c, v, w) for _, c, v, w in rows]
    finally:
        store.close()
    assert "C0007" not in {c for _, c, _, _ in rows}
    for ring in (old_keyring, new_keyring):
        kek = ring._kek._key  # the test tries the KEKs themselves
        lookup = ring._lookup_key
        for key in (kek, ring.db_key, lookup, ring.search_index_key(), *child_keys):
            with pytest.raises(KeyProblem, match="does not open"):
                ring.unseal(key, "C0007", IDENTITY_CONTEXT, erased.sealed_identity)


def test_rotation_refuses_while_the_node_serves(host: Host) -> None:
    """With the data directory locked as a serving node locks it, `rotate-kek` refuses,
    says to stop the node, and the old KEK still opens every child."""
    before = host.snapshot(new=False)
    with DataDirLock(host.cfg().data_dir):
        code, _, exc = rotate_cli(host)
    assert code != 0
    assert isinstance(exc, FailedPrecondition)
    assert "stop the node first" in str(exc)
    assert (host.opens(new=False), host.opens(new=True)) == (True, False)
    assert host.snapshot(new=False) == before


def test_rotating_to_the_current_kek_is_refused(host: Host) -> None:
    """Giving the KEK in use as the new one is refused with what to do, nothing changed."""
    args = ["node", "rotate-kek", "--config", str(host.old_config)]
    with capture_logs():
        result = CliRunner().invoke(app, [*args, "--new-kek", str(host.root / "old.key")])
    assert result.exit_code != 0
    assert isinstance(result.exception, KeyProblem)
    assert "childreg node keygen" in result.exception.hint
    assert host.opens(new=False)
    assert not next_keyring_path(host.cfg().keyring_path).exists()


_KILLER = """
import os, signal, sys
from pathlib import Path
import node.store.sqlcipher.keys as keys
keys._PAGE = 50  # several batches of child keys
from childreg.config import load_config
from node.config import NodeConfig
from node.server import rotate_kek
config, new_kek, point, nth = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
seen = [0]
def fault(step):
    if step == point:
        seen[0] += 1
        if seen[0] == nth:
            os.kill(os.getpid(), signal.SIGKILL)
rotate_kek(load_config(NodeConfig, config), new_kek, "ops-1", fault=fault)
"""


@pytest.mark.parametrize(
    ("point", "nth", "committed"),
    [
        ("before-next", 1, False),
        ("after-next", 1, False),
        ("batch", 1, False),
        ("batch", 4, False),
        ("before-commit", 1, False),
        ("after-commit", 1, True),
        ("after-switch", 1, True),
    ],
)
def test_a_rotation_killed_midway_leaves_a_node_that_opens_with_exactly_one_kek(
    host: Host, point: str, nth: int, committed: bool
) -> None:
    """A rotation SIGKILLed at a step leaves the node opening with exactly one of the two
    KEKs (the old before the commit point, the new after it), every child intact, and
    running `rotate-kek` again finishes it so only the new KEK opens the node."""
    before = host.snapshot(new=False)
    proc = subprocess.run(
        [sys.executable, "-c", _KILLER, str(host.old_config), str(host.new_kek), point, str(nth)],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert (host.opens(new=False), host.opens(new=True)) == (not committed, committed)
    assert host.snapshot(new=committed) == before

    code, out, exc = rotate_cli(host)
    assert code == 0, exc
    assert json.loads(out)["finished_interrupted_rotation"] is committed
    assert (host.opens(new=False), host.opens(new=True)) == (False, True)
    assert host.snapshot(new=True) == before
    assert not next_keyring_path(host.cfg().keyring_path).exists()
    rotations = [e for e in host.leaves(new=True) if e.action == "keys.rotate"]
    assert [e.outcome for e in rotations] == ["OK"]


def kill_at(host: Host, point: str) -> None:
    """Run a rotation in a subprocess and SIGKILL it when it reaches ``point``."""
    proc = subprocess.run(
        [sys.executable, "-c", _KILLER, str(host.old_config), str(host.new_kek), point, "1"],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]


def test_a_starting_node_finishes_a_rotation_past_its_commit_point(host: Host) -> None:
    """Killed after the commit, the old KEK is refused with a message naming what to do,
    and a node starting with the new KEK finishes the switch (keyring.json is the new one)."""
    kill_at(host, "after-commit")
    with pytest.raises(KeyProblem, match="opens nothing") as refused:
        open_node(host.cfg())
    assert "kek_file" in refused.value.hint
    keyring_path = host.cfg().keyring_path
    open_keyring(host.cfg(new=True), repair=True)  # what start_node does, under its lock
    assert not next_keyring_path(keyring_path).exists()
    assert Keyring.open(keyring_path, KekSource.from_key_file(host.new_kek)).generation == 2


def test_a_starting_node_discards_a_rotation_before_its_commit_point(host: Host) -> None:
    """Killed before the commit, the new KEK is refused with a message naming the old one,
    and a node starting with the old KEK removes the left-over new keyring."""
    kill_at(host, "batch")
    keyring_path = host.cfg().keyring_path
    assert next_keyring_path(keyring_path).exists()
    with pytest.raises(KeyProblem, match="before its commit point"):
        open_node(host.cfg(new=True))
    open_keyring(host.cfg(), repair=True)
    assert not next_keyring_path(keyring_path).exists()
    assert (host.opens(new=False), host.opens(new=True)) == (True, False)


def test_a_child_key_that_does_not_open_stops_the_rotation_with_nothing_changed(
    host: Host,
) -> None:
    """If one child's wrapped key does not open with the current KEK, the rotation is
    refused, no child key changes, the new keyring is removed, the old KEK still opens the
    node and a failed keys.rotate leaf is kept."""
    store, _ = open_node(host.cfg())
    try:
        row, _, version, _ = next(iter(store.wrapped_keys()))[7]
        store.put_wrapped_keys([(row, b"\0" * 72, version)])
        keys_before = [r for page in store.wrapped_keys() for r in page]
    finally:
        store.close()
    code, _, exc = rotate_cli(host)
    assert code != 0
    assert isinstance(exc, KeyProblem)
    assert (host.opens(new=False), host.opens(new=True)) == (True, False)
    assert not next_keyring_path(host.cfg().keyring_path).exists()
    store, _ = open_node(host.cfg())
    try:
        assert [r for page in store.wrapped_keys() for r in page] == keys_before
        assert store.kek_generation() == 1
    finally:
        store.close()
    (leaf,) = [e for e in host.leaves(new=False) if e.action == "keys.rotate"]
    assert leaf.outcome != "OK"


def test_a_second_rotation_leaves_only_the_newest_kek_opening_the_node(host: Host) -> None:
    """Rotating twice (generation 3) leaves neither the first nor the second KEK opening
    the node, and every child opens with the third."""
    before = host.snapshot(new=False)
    assert rotate_cli(host)[0] == 0
    third = host.root / "third.key"
    generate_key_file(third)
    args = ["node", "rotate-kek", "--config", str(host.new_config), "--new-kek", str(third)]
    with capture_logs():
        result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.exception
    assert json.loads(result.stdout)["to_generation"] == 3
    assert (host.opens(new=False), host.opens(new=True)) == (False, False)
    host.new_config.write_text(host.new_config.read_text().replace("new.key", "third.key"))
    assert host.snapshot(new=True) == before
