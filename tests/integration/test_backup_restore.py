"""Backup, verify and restore of a real SQLCipher node with its change journal, in process.

A node with a journal takes changes, is backed up, takes more (a registration, a
correction, a privacy-ledger charge, a consent withdrawal), and its data directory is
wiped; `childreg node restore` then rebuilds a log byte-identical to the one before the
wipe (so its checkpoint of that size is the same signed note), the ledger charge is back,
the withdrawn consent is withdrawn, and the registration and correction after the
backup are listed for staff to enter again. A tampered backup fails `backup verify`; a
restore refuses without a journal, into a directory holding a node, over a journal
that does not reach back to the backup, and over one that lost leaves a witness holds.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import shutil
import threading
import tomllib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pytest
import tomli_w
from nacl.signing import SigningKey
from structlog.testing import capture_logs
from typer.testing import CliRunner

from childreg.audit.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from childreg.audit.leaf import AuditEvent
from childreg.audit.note import NoteSigner
from childreg.config import load_config
from childreg.errors import AlreadyExists, FailedPrecondition, KeyProblem
from childreg.history import ErasureIn
from childreg.models import ChildIn
from node.audit.actor import Actor
from node.audit.log import AuditLog, node_signer
from node.audit.service import Audited
from node.config import NodeConfig, WitnessEndpoint
from node.consent.desk import ConsentDesk
from node.consent.extract import grant_ref
from node.crypto.keys import Keyring, generate_key_file
from node.journal import ChangeJournal
from node.records.registry import Registry
from node.restore import RestoreReport
from node.restore import restore_node as restore_core
from node.server import (
    backup_node,
    init_node,
    kek_source,
    open_node,
    restore_node,
    rotate_kek,
    rotate_key,
    verify_backup,
)
from node.store.sqlcipher import SqlCipherStore
from node.store.sqlcipher.backup import CopyReader
from node.store.types import LedgerEntry, StoredConsent
from tests.conftest import FEDERATION, IssueFn
from tools.cli.main import app

DEPARTMENT = "alpha"
STAFF = Actor.operator(DEPARTMENT, "clerk")


def child(cid: str, n: int) -> ChildIn:
    """A child with id ``cid``."""
    return ChildIn(child_id=cid, national_id=f"AZE{5550000 + n:07d}", given_name="Samira",
                   family_name="Aliyeva", date_of_birth=dt.date(2015, 9, 9), sex="female",
                   district="shaki")  # fmt: skip


Work = Callable[[Audited, Registry, SqlCipherStore, Keyring], None]


def register(audited: Audited, registry: Registry, n: int) -> None:
    """Register child C<n> through the audited service (one child.register leaf)."""
    audited.change(
        STAFF,
        "child.register",
        b"r%d" % n,
        lambda: registry.register_child(child(f"C{n}", n), not_duplicate_reason="test"),
        f"C{n}",
    )


@dataclass
class Node:
    """A stopped node with a journal, opened for each step."""

    config: Path

    @property
    def cfg(self) -> NodeConfig:
        """The node's configuration."""
        return load_config(NodeConfig, self.config)

    def work(self, fn: Work) -> None:
        """Run ``fn(audited, registry, store, keyring)`` on the opened node."""
        store, keyring = open_node(self.cfg)
        try:
            audit = AuditLog(
                store, keyring.audit_signing_seed(), federation=FEDERATION, department=DEPARTMENT
            )
            fn(Audited(store, keyring, audit), Registry(store, keyring), store, keyring)
            audit.checkpoint()
        finally:
            store.close()

    def leaves_and_note(self) -> tuple[list[bytes], str | None]:
        """Every leaf, and the latest checkpoint note."""
        store, keyring = open_node(self.cfg)
        try:
            audit = AuditLog(
                store, keyring.audit_signing_seed(), federation=FEDERATION, department=DEPARTMENT
            )
            return audit.leaves(), audit.latest_checkpoint()
        finally:
            store.close()


@pytest.fixture
def node(tmp_path: Path, issue: IssueFn, monkeypatch: pytest.MonkeyPatch) -> Node:
    """An initialised node with a journal and three children, one with a consent."""
    monkeypatch.setattr(getpass, "getuser", lambda: "ops-1")
    identity = issue("node", DEPARTMENT).directory
    generate_key_file(tmp_path / "kek.key")
    (tmp_path / "journal").mkdir()
    data = {
        "department_id": DEPARTMENT, "name": "Alpha", "region": "shaki_zagatala",
        "districts": ["shaki"], "data_dir": str(tmp_path / "data"), "identity_dir": str(identity),
        "kek_file": str(tmp_path / "kek.key"), "denylist_file": str(tmp_path / "denylist.json"),
        "statistics_authority_key": str(tmp_path / "authority.pub"),
        "backup": {"journal_dir": str(tmp_path / "journal")},
    }  # fmt: skip
    (tmp_path / "node.toml").write_text(tomli_w.dumps(data))
    made = Node(tmp_path / "node.toml")
    init_node(made.cfg)

    def setup(
        audited: Audited, registry: Registry, store: SqlCipherStore, keyring: Keyring
    ) -> None:
        for n in range(3):
            register(audited, registry, n)

    made.work(setup)
    return made


def entry() -> LedgerEntry:
    """A statistics release's ledger entry."""
    return LedgerEntry(
        snapshot="2023/24", catalogue_version=1, catalogue_digest="d", table_id="t1",
        rho=Fraction(1, 32), released=(4, 5), requested_by="coord",
        released_at=dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC),
    )  # fmt: skip


def run(*args: str) -> tuple[int, str, BaseException | None]:
    """`childreg ARGS --json` in process."""
    with capture_logs():
        result = CliRunner().invoke(app, [*args, "--json"])
    return result.exit_code, result.stdout, result.exception


def test_restore_rebuilds_the_log_ledger_and_withdrawals_and_lists_the_rest(
    node: Node, tmp_path: Path
) -> None:
    """After a wipe, the restored log is the one before it (same checkpoint note), the
    ledger charge and the consent withdrawal are back, the record changes are listed."""
    consent: dict[str, StoredConsent] = {}

    def give(audited: Audited, registry: Registry, store: SqlCipherStore, keyring: Keyring) -> None:
        desk = ConsentDesk(store, keyring, FEDERATION)
        stored, _ = desk.grant(desk.parse({
            "child_id": "C1", "guardian_name": "Leyla Aliyeva", "purpose": "iep_preparation",
            "school": f"spiffe://{FEDERATION}/school/s-1",
            "valid_from": dt.date.today().isoformat(),
            "valid_until": (dt.date.today() + dt.timedelta(days=90)).isoformat(),
            "evidence_ref": "form 12",
        }), "staff")  # fmt: skip
        consent["stored"] = stored

    node.work(give)
    code, out, exc = run(
        "node", "backup", "--config", str(node.config), "--out", str(tmp_path / "b1")
    )
    assert code == 0, exc
    assert json.loads(out)["audit_size"] == 3

    def after(
        audited: Audited, registry: Registry, store: SqlCipherStore, keyring: Keyring
    ) -> None:
        register(audited, registry, 9)
        audited.change(STAFF, "child.correct", b"c0", lambda: None, "C0")
        audited.change(STAFF, "statistics.release", b"s", lambda: store.append_ledger(entry()))
        stored = consent["stored"]
        desk = ConsentDesk(store, keyring, FEDERATION)
        audited.change(STAFF, "consent.withdraw", b"w",
                       lambda: desk.withdraw(stored.consent_id, "x"), "C1",
                       grant=grant_ref(stored.grant_hash))  # fmt: skip

    node.work(after)
    leaves, note = node.leaves_and_note()
    assert len(leaves) == 7
    shutil.rmtree(tmp_path / "data")

    code, out, exc = run(
        "node", "restore", "--config", str(node.config), "--from", str(tmp_path / "b1")
    )
    assert code == 0, exc
    report = json.loads(out)
    assert (report["backup_audit_size"], report["leaves_replayed"]) == (3, 4)
    assert report["ledger_entries_replayed"] == 1
    assert [r["done"] for r in report["reapplied"]] == ["consent withdrawn again"]
    listed = [(r["action"], r["child_id"], r["actor"]) for r in report["reenter"]]
    assert listed == [("child.register", None, STAFF.name), ("child.correct", "C0", STAFF.name)]

    restored, _ = node.leaves_and_note()
    assert restored[:7] == leaves
    assert AuditEvent.from_bytes(restored[7]).action == "node.restore"
    store, keyring = open_node(node.cfg)
    try:
        audit = AuditLog(
            store, keyring.audit_signing_seed(), federation=FEDERATION, department=DEPARTMENT
        )
        assert store.ledger("2023/24") == [entry()]
        assert store.consents_of("C1")[0].withdrawn_at is not None
        assert store.get_child("C9") is None
        assert audit.size == 8
    finally:
        store.close()
    assert note is not None
    assert _note_at(node, 7) == note  # the checkpoint the witnesses saw, signed again


def _note_at(node: Node, size: int) -> str:
    """The checkpoint note the node signs for its first ``size`` leaves."""
    store, keyring = open_node(node.cfg)
    try:
        audit = AuditLog(
            store, keyring.audit_signing_seed(), federation=FEDERATION, department=DEPARTMENT
        )
        signer = node_signer(
            keyring.audit_signing_seed(), federation=FEDERATION, department=DEPARTMENT
        )
        return sign_checkpoint(Checkpoint(audit.origin, size, audit.root(size)), signer)
    finally:
        store.close()


def test_a_tampered_backup_fails_verify(node: Node, tmp_path: Path) -> None:
    """Changing a byte of the backup's database or manifest makes `backup verify` fail."""
    summary = backup_node(node.cfg, tmp_path / "b")
    assert verify_backup(node.cfg, tmp_path / "b").manifest == summary.manifest
    code, out, exc = run(
        "node", "backup", "verify", str(tmp_path / "b"), "--config", str(node.config)
    )
    assert code == 0, exc
    assert json.loads(out)["audit_size"] == 3
    db = tmp_path / "b" / "records.db"
    blob = bytearray(db.read_bytes())
    blob[5000] ^= 1
    db.write_bytes(bytes(blob))
    with pytest.raises(FailedPrecondition, match="differs from the manifest"):
        verify_backup(node.cfg, tmp_path / "b")
    manifest = tmp_path / "b" / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"children": 3', '"children": 4'))
    with pytest.raises(FailedPrecondition, match="MAC"):
        verify_backup(node.cfg, tmp_path / "b")


def test_restore_refuses_a_node_in_place_and_a_journal_that_starts_late(
    node: Node, tmp_path: Path
) -> None:
    """A data directory holding a node is not overwritten; a journal starting after the
    backup's size (leaves in between lost) is refused and nothing is left in place."""
    backup_node(node.cfg, tmp_path / "b")
    with pytest.raises(FailedPrecondition, match="already holds a node"):
        restore_node(node.cfg, tmp_path / "b")
    shutil.rmtree(tmp_path / "data")
    journal = tmp_path / "journal" / f"{DEPARTMENT}.journal"
    journal.write_bytes(b"")
    late = ChangeJournal.open(tmp_path / "journal", DEPARTMENT, _seed(node, tmp_path / "b"))
    late.leaf(5, b"later")
    late.close()
    with pytest.raises(FailedPrecondition, match="starts at leaf 5"):
        restore_node(node.cfg, tmp_path / "b")
    assert not (tmp_path / "data" / "records.db").exists()


def _seed(node: Node, backup: Path) -> bytes:
    return Keyring.open(backup / "keyring.json", kek_source(node.cfg)).audit_signing_seed()


def test_restore_without_a_journal_is_refused_unless_asked(node: Node, tmp_path: Path) -> None:
    """With no journal configured a restore says why it refuses; --without-journal goes on."""
    backup_node(node.cfg, tmp_path / "b")
    shutil.rmtree(tmp_path / "data")
    text = node.config.read_text().replace("[backup]", "[unused]")
    data = tomllib.loads(text)
    data.pop("unused")
    node.config.write_text(tomli_w.dumps(data))
    with pytest.raises(FailedPrecondition, match="no change journal"):
        restore_node(node.cfg, tmp_path / "b")
    report = restore_node(node.cfg, tmp_path / "b", without_journal=True)
    assert report.leaves_replayed == 0
    assert report.warnings


class HoldingWitness:
    """A witness client whose one witness holds ``note``."""

    def __init__(self, note: str) -> None:
        self.note = note

    @contextmanager
    def connect(self, witness: WitnessEndpoint) -> Iterator[HoldingWitness]:
        """A session (this object)."""
        yield self

    def held(self, origin: str) -> str:
        """The note held."""
        return self.note

    def add(
        self, note: str, old_size: int, proof: list[bytes], transitions: Sequence[str] = ()
    ) -> str:
        """Not used by a restore."""
        raise AssertionError("a restore never adds a checkpoint")


def test_restore_refuses_a_journal_missing_leaves_a_witness_cosigned(
    node: Node, tmp_path: Path
) -> None:
    """When the journal lost its tail, the rebuilt log would not extend the witness's
    checkpoint: the restore refuses and leaves no node in place (without a journal, the
    last resort, it warns instead); with the whole journal it goes ahead and reports the
    witness extended."""
    backup_node(node.cfg, tmp_path / "b")

    def more(audited: Audited, registry: Registry, store: SqlCipherStore, keyring: Keyring) -> None:
        for n in (7, 8):
            register(audited, registry, n)

    node.work(more)
    _, note = node.leaves_and_note()
    assert note is not None
    shutil.rmtree(tmp_path / "data")
    journal = tmp_path / "journal" / f"{DEPARTMENT}.journal"
    whole = journal.read_bytes()
    journal.write_bytes(b"".join(whole.splitlines(keepends=True)[:-1]))
    witness = WitnessEndpoint(
        name="w1", address="127.0.0.1:9",
        verifier_key=NoteSigner("w1", SigningKey.generate()).verifier().key_string(),
    )  # fmt: skip
    cfg = node.cfg

    def restore(journal_dir: Path | None = cfg.backup.journal_dir) -> RestoreReport:
        return restore_core(
            tmp_path / "b", cfg.data_dir, kek_source(cfg), federation=FEDERATION,
            department=DEPARTMENT, actor=STAFF, journal_dir=journal_dir,
            without_journal=journal_dir is None, witness_client=HoldingWitness(note),
            witnesses=(witness,),
        )  # fmt: skip

    with pytest.raises(FailedPrecondition, match="does not extend"):
        restore()
    assert not (cfg.data_dir / "records.db").exists()
    last_resort = restore(None)  # without a journal: the witness's refusal is a warning
    assert last_resort.witnesses[0]["extends"] is False
    assert any("w1" in w for w in last_resort.warnings)
    shutil.rmtree(cfg.data_dir)
    journal.write_bytes(whole)
    report = restore()
    assert report.witnesses == [{"name": "w1", "reachable": True, "size": 5, "extends": True}]


def test_a_backup_under_writes_holds_each_change_with_its_leaf(node: Node, tmp_path: Path) -> None:
    """Backups taken while another thread registers children hold, each, exactly the
    children whose registration leaves they hold (one committed state), and verify."""
    store, keyring = open_node(node.cfg)
    stop = threading.Event()

    def write() -> None:
        audit = AuditLog(
            store, keyring.audit_signing_seed(), federation=FEDERATION, department=DEPARTMENT
        )
        audited, registry = Audited(store, keyring, audit), Registry(store, keyring)
        n = 100
        while not stop.is_set():
            register(audited, registry, n)
            n += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        for i in range(5):
            backup_node(node.cfg, tmp_path / f"b{i}")
    finally:
        stop.set()
        writer.join()
        store.close()
    sizes = set()
    for i in range(5):
        summary = verify_backup(node.cfg, tmp_path / f"b{i}")
        with CopyReader(tmp_path / f"b{i}" / "records.db", keyring.db_key_hex()) as copy:
            leaves = [AuditEvent.from_bytes(b) for b in copy.audit_leaves(0, copy.audit_size())]
            children = copy.counts()["children"]
        assert children == sum(e.action == "child.register" for e in leaves)
        sizes.add(summary.audit_size)
    assert len(sizes) > 1  # the writes went on between the backups


def erase(audited: Audited, registry: Registry, child_id: str) -> None:
    """Erase a child through the audited service (one child.erase leaf with its reason)."""
    audited.change(
        STAFF,
        "child.erase",
        child_id.encode(),
        lambda: registry.erase_child(ErasureIn(child_id=child_id, reason="guardian_request")),
        child_id,
        purpose="guardian_request",
    )


def test_an_erasure_after_the_backup_holds_across_the_restore(node: Node, tmp_path: Path) -> None:
    """A child of the backup erased after it is erased again (no row, no key, tombstone
    kept); a child registered and erased after it keeps its tombstone and is not listed
    for re-entry; neither id can be registered again."""
    backup_node(node.cfg, tmp_path / "b")

    def after(
        audited: Audited, registry: Registry, store: SqlCipherStore, keyring: Keyring
    ) -> None:
        erase(audited, registry, "C2")
        register(audited, registry, 9)
        erase(audited, registry, "C9")

    node.work(after)
    shutil.rmtree(tmp_path / "data")
    report = restore_node(node.cfg, tmp_path / "b")
    assert [r["done"] for r in report.reapplied] == [
        "erased again",
        "tombstone kept (registered after the backup)",
    ]
    assert report.reenter == []
    store, keyring = open_node(node.cfg)
    try:
        assert store.get_child("C2") is None
        assert {c for page in store.wrapped_keys() for _, c, _, _ in page} == {"C0", "C1"}
        erased = {t.pseudonym for t in store.erased_children()}
        assert erased == {keyring.pseudonym("C2"), keyring.pseudonym("C9")}
        registry = Registry(store, keyring)
        for n in (2, 9):
            with pytest.raises(AlreadyExists, match="erased"):
                registry.register_child(child(f"C{n}", n), not_duplicate_reason="again")
    finally:
        store.close()


def test_neither_the_backup_nor_the_journal_holds_a_name_or_id(node: Node, tmp_path: Path) -> None:
    """A planted name, national id and child id appear in no byte of the backup's files
    or of the change journal (the backup is encrypted; leaves name children by pseudonym)."""

    def plant(
        audited: Audited, registry: Registry, store: SqlCipherStore, keyring: Keyring
    ) -> None:
        planted = child("PLANTED77", 77).model_copy(
            update={"given_name": "Zarifaplanted", "national_id": "AZE7777777"}
        )
        audited.change(STAFF, "child.register", b"p",
                       lambda: registry.register_child(planted, not_duplicate_reason="t"),
                       "PLANTED77")  # fmt: skip

    node.work(plant)
    backup_node(node.cfg, tmp_path / "b")
    files = [*(tmp_path / "b").iterdir(), *(tmp_path / "journal").iterdir()]
    assert len(files) == 4
    for path in files:
        raw = path.read_bytes()
        for marker in (b"Zarifaplanted", b"AZE7777777", b"PLANTED77"):
            assert marker not in raw, (path.name, marker)


def test_a_backup_from_before_a_kek_rotation_restores_with_its_kek(
    node: Node, tmp_path: Path
) -> None:
    """After a KEK rotation a backup made before it opens only with the old KEK
    (--kek-file); the restore warns, and rotating again makes the new KEK the node's."""
    backup_node(node.cfg, tmp_path / "b")
    generate_key_file(tmp_path / "new.key")
    rotate_kek(node.cfg, tmp_path / "new.key")  # its keys.rotate leaf is journaled
    new_config = tmp_path / "node-new.toml"
    new_config.write_text(node.config.read_text().replace("kek.key", "new.key"))
    new = load_config(NodeConfig, new_config)
    shutil.rmtree(tmp_path / "data")
    with pytest.raises(KeyProblem):
        restore_node(new, tmp_path / "b")
    report = restore_node(new, tmp_path / "b", kek_file=tmp_path / "kek.key")
    assert any("rotated after this backup" in w for w in report.warnings)
    rotate_kek(node.cfg, tmp_path / "new.key")
    store, _ = open_node(new)
    store.close()


def test_a_signing_key_rotated_after_the_backup_stays_rotated_across_the_restore(
    node: Node, tmp_path: Path
) -> None:
    """An audit-key rotation after the backup comes back from the journal: the restored
    node keeps the same transition statement, extends the checkpoint the witness holds
    (signed by the new key) and signs its own checkpoints with the new key."""
    backup_node(node.cfg, tmp_path / "b")
    rotate_key(node.cfg, "audit")  # node stopped; its statement and leaf are journaled
    store, _ = open_node(node.cfg)
    try:
        transitions = store.key_transitions()
    finally:
        store.close()
    assert [which for which, _ in transitions] == ["audit"]
    _, note = node.leaves_and_note()
    assert note is not None
    shutil.rmtree(tmp_path / "data")
    witness = WitnessEndpoint(
        name="w1", address="127.0.0.1:9",
        verifier_key=NoteSigner("w1", SigningKey.generate()).verifier().key_string(),
    )  # fmt: skip
    cfg = node.cfg
    report = restore_core(
        tmp_path / "b", cfg.data_dir, kek_source(cfg), federation=FEDERATION,
        department=DEPARTMENT, actor=STAFF, journal_dir=cfg.backup.journal_dir,
        witness_client=HoldingWitness(note), witnesses=(witness,),
    )  # fmt: skip
    assert report.transitions_replayed == 1
    assert report.witnesses[0]["extends"] is True
    store, keyring = open_node(cfg)
    try:
        assert store.key_transitions() == transitions
        assert keyring.signing_generation("audit") == 2
        latest = store.audit_checkpoint()
    finally:
        store.close()
    assert latest is not None
    new_key = node_signer(
        keyring.audit_signing_seed(2), federation=FEDERATION, department=DEPARTMENT
    ).verifier()
    checkpoint, _ = open_checkpoint(latest[1], [new_key])
    assert checkpoint.size == report.audit_size
