"""`childreg bench`, backup and restore: the online backup ÷ copying the files; the restore.

(m) ``childreg node backup``'s work (node/backup.py) on a real SQLCipher node of ``n``
    children imported through the registry, its store open as a serving node's is: the
    online copy (the encrypted file and its log copied under a pinned read transaction,
    the log folded into the copy: node/store/sqlcipher/backup.py), the keyring, the
    SHA-256 of both files, the audit root of the copy and the manifest, all synced.
    Baseline, in the same run on the same disk: copying the node's two files with
    ``shutil.copyfile`` and fsync (what "back up both" did, with the node stopped).
    Goal: ≤ 3.
(n) The restore drill's work: after the backup the node takes ``changes`` more journaled
    leaves and a privacy-ledger charge (the change journal on, as in production); its data
    directory is wiped, and ``childreg node restore``'s work (node/restore.py) verifies the
    backup, places it, reads and checks the journal, replays the leaves and the charge,
    lists the changes and appends its own leaf. Baseline: copying the backup's files into
    the data directory. Process start and witness round trips are not in it (the e2e
    drill, tests/e2e/test_restore_drill.py, runs them).
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

from childreg.models import ImportRecord
from childreg.secretfile import fsync_path
from node.audit.actor import Actor
from node.audit.log import AuditLog
from node.audit.service import Audited
from node.backup import DB_FILE, KEYRING_FILE, make_backup
from node.crypto.keys import KekSource, Keyring, generate_key_file
from node.journal import ChangeJournal, catch_up, journal_seed
from node.records.registry import Registry
from node.restore import restore_node
from node.store.sqlcipher import SqlCipherStore
from node.store.types import LedgerEntry
from tools.dev.federation import Say

GOAL_RATIO: Final = 3.0
FEDERATION: Final = "bench.test"
DEPARTMENT: Final = "b"
_BATCH: Final = 5_000


def _copy_files(files: Sequence[Path], into: Path) -> float:
    """Seconds to copy ``files`` into the new directory ``into``, each synced."""
    into.mkdir(parents=True)
    started = time.perf_counter()
    for path in files:
        target = into / path.name
        shutil.copyfile(path, target)
        fsync_path(target)
    return time.perf_counter() - started


def _node(records: Sequence[ImportRecord], data: Path, source: KekSource, say: Say) -> None:
    data.mkdir(parents=True)
    keyring = Keyring.create(data / KEYRING_FILE, source)
    store = SqlCipherStore.open(data / DB_FILE, keyring.db_key_hex(), create=True)
    try:
        registry = Registry(store, keyring)
        for start in range(0, len(records), _BATCH):
            registry.import_records(records[start : start + _BATCH])
            say(f"(m) imported {min(start + _BATCH, len(records)):,} children")
    finally:
        store.close()


def measure_backup_restore(
    records: Sequence[ImportRecord], root: Path, say: Say, changes: int = 1_000
) -> dict[str, Any]:
    """(m) and (n) on a fresh node holding ``records``."""
    n = len(records)
    work = root / "backup"
    work.mkdir(parents=True, exist_ok=True)
    generate_key_file(work / "kek.key")
    source = KekSource.from_key_file(work / "kek.key")
    data, journal_dir = work / "data", work / "journal"
    journal_dir.mkdir()
    say(f"(m) importing {n:,} children for the backup")
    _node(records, data, source, say)
    files = [data / DB_FILE, data / KEYRING_FILE]
    size_mb = sum(p.stat().st_size for p in files) / 1e6
    copy_s = _copy_files(files, work / "plain-copy")

    keyring = Keyring.open(data / KEYRING_FILE, source)
    store = SqlCipherStore.open(data / DB_FILE, keyring.db_key_hex())
    journal = ChangeJournal.open(journal_dir, DEPARTMENT, journal_seed(keyring))
    try:
        catch_up(journal, store)
        store.attach_journal(journal)
        say(f"(m) online backup of {n:,} children ({size_mb:.0f} MB), the store open")
        summary = make_backup(
            data, source, work / "b1", federation=FEDERATION, department=DEPARTMENT
        )
        audit = AuditLog(
            store, keyring.audit_signing_seed(), federation=FEDERATION, department=DEPARTMENT
        )
        audited = Audited(store, keyring, audit)
        actor = Actor.operator(DEPARTMENT, "bench")
        say(f"(n) {changes} journaled changes after the backup")
        for i in range(changes):
            audited.change(
                actor, "child.correct", b"c%d" % i, lambda: None, records[i % n].child.child_id
            )
        entry = LedgerEntry(
            snapshot="2023/24", catalogue_version=1, catalogue_digest="d", table_id="t",
            rho=Fraction(1, 32), released=(1, 2), requested_by="bench",
            released_at=dt.datetime.now(dt.UTC),
        )  # fmt: skip
        audited.change(actor, "statistics.release", b"s", lambda: store.append_ledger(entry))
    finally:
        store.close()
        journal.close()
    shutil.rmtree(data)
    restore_copy_s = _copy_files(
        [work / "b1" / DB_FILE, work / "b1" / KEYRING_FILE], work / "plain-restore"
    )
    say(f"(n) restoring {n:,} children and replaying {changes + 1} journaled leaves")
    started = time.perf_counter()
    report = restore_node(
        work / "b1", data, source, federation=FEDERATION, department=DEPARTMENT,
        actor=Actor.operator(DEPARTMENT, "bench"), journal_dir=journal_dir,
    )  # fmt: skip
    restore_s = time.perf_counter() - started
    if (report.leaves_replayed, report.ledger_replayed) != (changes + 1, 1):
        raise RuntimeError(
            f"the restore replayed {report.leaves_replayed} leaves and "
            f"{report.ledger_replayed} ledger entries, not {changes + 1} and 1"
        )
    return {
        "children": n,
        "database_mb": round(size_mb, 1),
        "backup_seconds": round(summary.seconds, 3),
        "copy_files_seconds": round(copy_s, 3),
        "backup_ratio": round(summary.seconds / copy_s, 2),
        "goal_max_backup_ratio": GOAL_RATIO,
        "changes_after_backup": changes + 1,
        "restore_seconds": round(restore_s, 3),
        "restore_copy_seconds": round(restore_copy_s, 3),
        "restore_ratio": round(restore_s / restore_copy_s, 2),
        "listed_for_reentry": len(report.reenter),
    }
