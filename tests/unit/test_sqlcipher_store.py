"""SQLCipher-specific behaviour of the node's store: keys, authorizer, pragmas, migrations, disk."""

from __future__ import annotations

import datetime as dt
import secrets
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlcipher3

from childreg.errors import FailedPrecondition, KeyProblem
from childreg.models import AssessmentIn, ChildIn, FunctioningItem, PlacementIn
from node.keys import KekSource, Keyring, generate_key_file
from node.records import Registry
from node.store import migrations
from node.store.base import StoredChild
from node.store.sqlcipher import SqlCipherStore, _authorize, _count_sql


@pytest.fixture
def key_hex() -> str:
    """A random database key."""
    return secrets.token_hex(32)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where the database lives."""
    return tmp_path / "node.db"


@pytest.fixture
def store(db_path: Path, key_hex: str) -> Iterator[SqlCipherStore]:
    """A fresh SQLCipher store."""
    made = SqlCipherStore.open(db_path, key_hex, create=True)
    yield made
    made.close()


def raw_connection(path: Path, key_hex: str) -> Any:
    """A plain keyed sqlcipher3 connection (no authorizer), to look inside the file."""
    conn = sqlcipher3.connect(str(path), isolation_level=None)
    conn.execute(f"PRAGMA key = \"x'{key_hex}'\"")
    return conn


def a_child(child_id: str = "C1") -> StoredChild:
    """A stored child."""
    return StoredChild(child_id, 1, b"w", None, dt.date(2015, 1, 1), "male", "shaki", b"s")


# --- opening and keys ------------------------------------------------------------------


def test_wrong_key_gives_key_problem_naming_the_file(store: SqlCipherStore, db_path: Path) -> None:
    """Opening the database with another key fails fast with KeyProblem and a hint."""
    store.insert_child(a_child())
    store.close()
    with pytest.raises(KeyProblem) as info:
        SqlCipherStore.open(db_path, secrets.token_hex(32))
    assert "does not open" in str(info.value)
    assert str(db_path) in str(info.value)
    assert info.value.hint


def test_right_key_reopens_the_data(store: SqlCipherStore, db_path: Path, key_hex: str) -> None:
    """Reopening with the same key reads the same records."""
    store.insert_child(a_child())
    store.close()
    again = SqlCipherStore.open(db_path, key_hex)
    try:
        assert again.get_child("C1") == a_child()
    finally:
        again.close()


@pytest.mark.parametrize(
    "bad",
    ["ab" * 31, "ab" * 33, "zz" * 32, "ab" * 31 + "'\"", "ab" * 32 + "\n", ""],
    ids=["short", "long", "not-hex", "quote-injection", "newline", "empty"],
)
def test_key_must_be_64_hex_chars_before_anything_happens(db_path: Path, bad: str) -> None:
    """A key that is not exactly 64 hex characters is refused and no file is created."""
    with pytest.raises(KeyProblem, match="64 hexadecimal"):
        SqlCipherStore.open(db_path, bad, create=True)
    assert not db_path.exists()


def test_missing_file_is_refused_without_create(db_path: Path, key_hex: str) -> None:
    """Opening a database that does not exist fails clearly unless create=True."""
    with pytest.raises(FailedPrecondition, match="no database"):
        SqlCipherStore.open(db_path, key_hex)
    assert not db_path.exists()


def test_database_files_are_owner_only(store: SqlCipherStore, db_path: Path) -> None:
    """The database and its WAL are created with mode 0600."""
    store.insert_child(a_child())
    for path in (db_path, db_path.with_name(db_path.name + "-wal")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_stdlib_sqlite3_cannot_read_the_database(store: SqlCipherStore, db_path: Path) -> None:
    """The file has no SQLite header and stdlib sqlite3 cannot read it."""
    store.insert_child(a_child())
    store.close()
    assert not db_path.read_bytes().startswith(b"SQLite format 3")
    conn = sqlite3.connect(db_path)
    try:
        with pytest.raises(sqlite3.DatabaseError):
            conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
    finally:
        conn.close()


def test_plain_sqlite_file_is_refused(db_path: Path, key_hex: str) -> None:
    """An unencrypted SQLite database is not opened (it does not decrypt with the key)."""
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE t(x)")
    conn.commit()
    conn.close()
    with pytest.raises(KeyProblem):
        SqlCipherStore.open(db_path, key_hex)


def test_failed_create_leaves_no_file(
    db_path: Path, key_hex: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If opening a new database fails after the file was made, the file is removed again."""

    def broken(conn: Any) -> list[int]:
        raise sqlcipher3.OperationalError("disk I/O error")

    monkeypatch.setattr(migrations, "apply", broken)
    with pytest.raises(sqlcipher3.OperationalError):
        SqlCipherStore.open(db_path, key_hex, create=True)
    assert list(db_path.parent.iterdir()) == []


def test_database_is_sqlcipher_4(store: SqlCipherStore, db_path: Path, key_hex: str) -> None:
    """The file is SQLCipher 4 with HMAC-SHA512 pages and no plaintext header."""
    store.close()
    conn = raw_connection(db_path, key_hex)
    try:
        assert conn.execute("PRAGMA cipher_version").fetchone()[0].startswith("4.")
        assert conn.execute("PRAGMA cipher_hmac_algorithm").fetchone()[0] == "HMAC_SHA512"
        assert conn.execute("PRAGMA cipher_plaintext_header_size").fetchone()[0] == "0"
    finally:
        conn.close()


class _OldCipher:
    """Wraps a real connection but reports an old SQLCipher version."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, *args: Any) -> Any:
        if sql.strip().upper() == "PRAGMA CIPHER_VERSION":
            return self._conn.execute("SELECT '3.4.2 community'")
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def test_sqlcipher_other_than_4_is_refused(
    db_path: Path, key_hex: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the library is not SQLCipher 4.x the store refuses to open."""
    real_connect = sqlcipher3.connect
    monkeypatch.setattr(sqlcipher3, "connect", lambda *a, **k: _OldCipher(real_connect(*a, **k)))
    with pytest.raises(FailedPrecondition, match=r"SQLCipher 4\.x is required"):
        SqlCipherStore.open(db_path, key_hex, create=True)


def test_connection_pragmas_are_set(store: SqlCipherStore) -> None:
    """WAL, synchronous FULL, secure_delete, in-memory temp store and foreign keys are on."""
    conn = store._conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    assert conn.execute("PRAGMA secure_delete").fetchone()[0] == 1
    assert conn.execute("PRAGMA temp_store").fetchone()[0] == 2
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_close_truncates_the_wal_and_is_idempotent(store: SqlCipherStore, db_path: Path) -> None:
    """After close the WAL is empty or gone, and closing twice is harmless."""
    store.insert_child(a_child())
    store.close()
    store.close()
    wal = db_path.with_name(db_path.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0


# --- authorizer ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "ATTACH DATABASE ':memory:' AS plain",
        "ATTACH DATABASE '{dir}/plain.db' AS plain KEY ''",
        "DETACH DATABASE main",
        "VACUUM INTO '{dir}/copy.db'",
        "SELECT sqlcipher_export('main')",
        "SELECT SQLCipher_Export('main')",
        "PRAGMA key = 'x'",
        "PRAGMA main.rekey = 'x'",
        "PRAGMA hexkey = 'abcd'",
        "PRAGMA hexrekey = 'abcd'",
        "PRAGMA KEY = 'x'",
        "PRAGMA cipher_version",
        "PRAGMA cipher_compatibility = 3",
        "PRAGMA cipher_plaintext_header_size = 32",
        "PRAGMA Cipher_Page_Size = 1024",
    ],
)
def test_authorizer_denies_copying_rekeying_and_cipher_pragmas(
    store: SqlCipherStore, sql: str, tmp_path: Path
) -> None:
    """The service connection refuses ATTACH, DETACH, export, key and cipher pragmas."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    statement = sql.format(dir=scratch)
    # Without the authorizer SQLite does not say "not authorized" (so the test can fail).
    other = raw_connection(tmp_path / "other.db", secrets.token_hex(32))
    error = ""
    try:
        other.execute(statement)
    except sqlcipher3.DatabaseError as exc:
        error = str(exc)
    finally:
        other.close()
    assert "authoriz" not in error
    for leftover in scratch.iterdir():
        leftover.unlink()
    with pytest.raises(sqlcipher3.DatabaseError, match=r"not authorized|authorization denied"):
        store._conn.execute(statement)
    assert list(scratch.iterdir()) == []


def test_authorizer_denies_load_extension() -> None:
    """The authorizer denies the load_extension function in any letter case."""
    for name in ("load_extension", "LOAD_EXTENSION"):
        assert _authorize(sqlcipher3.SQLITE_FUNCTION, None, name) == sqlcipher3.SQLITE_DENY
    assert _authorize(sqlcipher3.SQLITE_FUNCTION, None, "count") == sqlcipher3.SQLITE_OK


def test_authorizer_allows_ordinary_work(store: SqlCipherStore) -> None:
    """Ordinary queries, transactions and non-key pragmas still work under the authorizer."""
    store.insert_child(a_child())
    assert store._conn.execute("SELECT count(*) FROM child").fetchone()[0] == 1
    assert store._conn.execute("PRAGMA user_version").fetchone()[0] == 0
    store._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")


# --- migrations ------------------------------------------------------------------------


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


def test_count_table_uses_the_covering_indexes(store: SqlCipherStore) -> None:
    """The count query searches placements by year and children by covering index, no scans."""
    sql, params = _count_sql(
        "2023/24",
        dt.date(2023, 9, 15),
        ["age_band", "care_setting", "impairment_band", "region"],
    )
    plan = " | ".join(r[3] for r in store._conn.execute("EXPLAIN QUERY PLAN " + sql, params))
    assert "SEARCH p USING PRIMARY KEY (academic_year=?)" in plan
    assert "COVERING INDEX child_categories" in plan
    assert "COVERING INDEX assessment_banded" in plan
    assert "SCAN" not in plan


# --- nothing in the clear on disk ------------------------------------------------------


def test_no_plaintext_marker_in_any_file_of_the_data_directory(tmp_path: Path) -> None:
    """A marker in a child's name, national id and diagnosis appears in no file on disk."""
    data = tmp_path / "data"
    data.mkdir()
    generate_key_file(tmp_path / "kek.key")  # the KEK lives off the data directory
    keyring = Keyring.create(data / "keyring.json", KekSource.from_key_file(tmp_path / "kek.key"))
    db = data / "node.db"
    store = SqlCipherStore.open(db, keyring.db_key_hex(), create=True)
    registry = Registry(store, keyring)
    token = secrets.token_hex(8).upper()
    marker = f"Marker{token}"
    nid = f"NID{token}"
    diagnosis = f"Q{secrets.randbelow(90) + 10}.{token[:4]}"
    registry.register_child(
        ChildIn(
            child_id="C1",
            national_id=nid,
            given_name=marker,
            family_name=f"Family{marker}",
            date_of_birth=dt.date(2016, 4, 2),
            sex="female",
            district="nasimi",
            guardian_name=f"Guardian{marker}",
        )
    )
    registry.record_placement(
        PlacementIn(child_id="C1", academic_year="2023/24", education_form="special_school")
    )
    registry.record_assessment(
        AssessmentIn(
            child_id="C1",
            assessment_date=dt.date(2023, 5, 1),
            commission="Baku PMPC",
            diagnoses=(diagnosis,),
            functioning=(FunctioningItem(domain="seeing", level="cannot_do_at_all"),),
        )
    )
    assert registry.get_child("C1").child.given_name == marker
    secrets_on_disk = [marker, nid, diagnosis]
    forbidden = [keyring.db_key, keyring.db_key_hex().encode()]
    for text in secrets_on_disk:
        forbidden += [text.encode(), text.encode("utf-16-le"), text.encode("utf-16-be")]

    def assert_clean() -> None:
        files = [p for p in data.iterdir() if p.is_file()]
        assert {p.name for p in files} >= {"node.db", "keyring.json"}
        for path in files:
            content = path.read_bytes()
            for needle in forbidden:
                assert needle not in content, f"found a secret in {path.name}"

    assert_clean()  # while open: database, -wal and -shm
    store.close()
    assert_clean()
    reopened = SqlCipherStore.open(db, keyring.db_key_hex())
    try:
        assert Registry(reopened, keyring).get_child("C1").assessments[0].diagnoses == (diagnosis,)
    finally:
        reopened.close()
