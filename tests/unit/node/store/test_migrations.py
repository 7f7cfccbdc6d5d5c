"""The schema's migrations (node/store/migrations.py): recorded once, all or nothing, in order."""

from __future__ import annotations

import datetime as dt
import secrets
import sqlite3
from pathlib import Path

import pytest

from node.store import migrations
from node.store.sqlcipher import SqlCipherStore
from tests.unit.node.store.sqlcipher.support import raw_connection


def test_migrations_are_recorded_once(store: SqlCipherStore, db_path: Path, key_hex: str) -> None:
    """Every migration is recorded with a description and time, and reopening adds none."""
    store.close()
    SqlCipherStore.open(db_path, key_hex).close()
    conn = raw_connection(db_path, key_hex)
    try:
        rows = conn.execute(
            "SELECT version, description, applied_at FROM schema_migrations ORDER BY version"
        ).fetchall()
        assert [r[0] for r in rows] == [m.version for m in migrations.MIGRATIONS]
        assert all(r[1] and dt.datetime.fromisoformat(r[2]) for r in rows)
        assert migrations.applied_versions(conn) == [m.version for m in migrations.MIGRATIONS]
        assert migrations.apply(conn) == []
    finally:
        conn.close()


def test_failed_migration_rolls_back_with_its_record(tmp_path: Path) -> None:
    """A migration that fails half-way leaves neither its changes nor its record."""
    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    try:
        good = migrations.Migration(1, "one", ("CREATE TABLE a(x)",))
        bad = migrations.Migration(2, "two", ("CREATE TABLE b(x)", "THIS IS NOT SQL"))
        with pytest.raises(sqlite3.OperationalError):
            migrations.apply(conn, [good, bad])
        assert migrations.applied_versions(conn) == [1]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert "a" in tables
        assert "b" not in tables
        fixed = migrations.Migration(2, "two", ("CREATE TABLE b(x)",))
        assert migrations.apply(conn, [good, fixed]) == [2]
    finally:
        conn.close()


def test_migrations_must_be_ascending(tmp_path: Path) -> None:
    """A migration list out of order or with a repeated version is refused before running."""
    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    try:
        one = migrations.Migration(1, "one", ("CREATE TABLE a(x)",))
        with pytest.raises(ValueError, match="ascending"):
            migrations.apply(conn, [one, one])
        assert migrations.applied_versions(conn) == []
    finally:
        conn.close()


def test_migration_7_keeps_earlier_ledger_entries_as_per_department(tmp_path: Path) -> None:
    """A database with stage-1 entries, migrated to version 7, reads them as per-department."""
    path, key = tmp_path / "old.db", secrets.token_hex(32)
    conn = raw_connection(path, key)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        migrations.apply(conn, [m for m in migrations.MIGRATIONS if m.version < 7])
        conn.execute(
            "INSERT INTO privacy_ledger(snapshot, catalogue_version, catalogue_digest, table_id,"
            " rho_numerator, rho_denominator, released, released_at, requested_by)"
            " VALUES ('2023/24', 1, 'd', 'sex', 1, 32, '[4,-1]', ?, 'coordinator')",
            (dt.datetime(2026, 1, 1, tzinfo=dt.UTC).isoformat(),),
        )
    finally:
        conn.close()
    store = SqlCipherStore.open(path, key)
    try:
        [entry] = store.ledger("2023/24")
        assert (entry.mechanism, entry.released) == ("per-department", (4, -1))
    finally:
        store.close()
