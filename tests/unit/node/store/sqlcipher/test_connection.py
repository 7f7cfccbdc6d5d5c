"""How the SQLCipher file is opened and locked down (node/store/sqlcipher/connection.py).

Keys, the cipher checks, the pragmas of both connections, the authorizer, closing, and
nothing in the clear in any file of the data directory.
"""

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
from node.crypto.keys import KekSource, Keyring, generate_key_file
from node.records.registry import Registry
from node.store import migrations
from node.store.sqlcipher import SqlCipherStore
from tests.unit.node.store.sqlcipher.support import a_child, raw_connection


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


@pytest.mark.parametrize("which", ["writer", "reader"])
def test_connection_pragmas_are_set(store: SqlCipherStore, which: str) -> None:
    """Both connections: WAL, synchronous FULL, secure_delete, memory temp, FKs, 8 MiB cache."""
    conn = store._conn if which == "writer" else store._reader
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    assert conn.execute("PRAGMA secure_delete").fetchone()[0] == 1
    assert conn.execute("PRAGMA temp_store").fetchone()[0] == 2
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA cache_size").fetchone()[0] == -8192
    assert conn.execute("PRAGMA query_only").fetchone()[0] == (which == "reader")


def test_reader_connection_cannot_write(store: SqlCipherStore) -> None:
    """The reader connection refuses writes (query_only), so only the writer changes the file."""
    with pytest.raises(sqlcipher3.OperationalError, match="readonly"):
        store._reader.execute("DELETE FROM child")
    store.insert_child(a_child())
    with pytest.raises(sqlcipher3.OperationalError, match="readonly"):
        store._reader.execute("UPDATE child SET sex = 'female'")
    assert store.get_child("C1") == a_child()


def test_close_truncates_the_wal_and_is_idempotent(store: SqlCipherStore, db_path: Path) -> None:
    """After close the WAL is empty or gone, and closing twice is harmless."""
    store.insert_child(a_child())
    store.close()
    store.close()
    wal = db_path.with_name(db_path.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0


DENIED_SQL = [
    # copying the data out, re-keying, unlocking
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
    # weakening the settings made at open
    "PRAGMA secure_delete = OFF",
    "PRAGMA secure_delete = FAST",
    "PRAGMA temp_store = FILE",
    "PRAGMA journal_mode = DELETE",
    "PRAGMA main.journal_mode = MEMORY",
    "PRAGMA writable_schema = ON",
    "PRAGMA synchronous = OFF",
    "PRAGMA foreign_keys = OFF",
    "PRAGMA query_only = OFF",
    "PRAGMA cache_size = -1000000",
    "PRAGMA mmap_size = 268435456",
    "PRAGMA trusted_schema = ON",
    "PRAGMA wal_autocheckpoint = 0",
    # changing the schema (migrations run before the authorizer is installed)
    "CREATE TABLE t(x)",
    "CREATE TEMP TABLE t(x)",
    "CREATE INDEX i ON child(sex)",
    "CREATE VIEW v AS SELECT child_id FROM child",
    "CREATE TEMP VIEW v AS SELECT 1",
    "CREATE TRIGGER tr AFTER INSERT ON child BEGIN SELECT 1; END",
    "CREATE TEMP TRIGGER tr AFTER INSERT ON child BEGIN SELECT 1; END",
    "CREATE VIRTUAL TABLE v USING fts5(x)",
    "CREATE VIRTUAL TABLE r USING rtree(id, lo, hi)",
    "DROP TABLE placement",
    "DROP INDEX child_categories",
    "ALTER TABLE child ADD COLUMN note TEXT",
    "ALTER TABLE child RENAME TO kid",
    "REINDEX",
    "ANALYZE",
]


@pytest.fixture
def control(tmp_path: Path) -> Iterator[Any]:
    """A keyed connection without the authorizer to another database with the node's schema."""
    key = secrets.token_hex(32)
    SqlCipherStore.open(tmp_path / "control.db", key, create=True).close()
    conn = raw_connection(tmp_path / "control.db", key)
    yield conn
    conn.close()


def service_state(conn: Any) -> tuple[object, ...]:
    """What a denied statement must leave unchanged: the schema and the connection settings."""
    return (
        conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall(),
        *(
            conn.execute(f"PRAGMA {name}").fetchone()[0]
            for name in (
                "journal_mode",
                "secure_delete",
                "temp_store",
                "synchronous",
                "foreign_keys",
            )
        ),
        conn.execute("PRAGMA cache_size").fetchone()[0],
        conn.execute("PRAGMA query_only").fetchone()[0],
    )


@pytest.mark.parametrize("which", ["writer", "reader"])
@pytest.mark.parametrize("sql", DENIED_SQL)
def test_authorizer_denies_copying_rekeying_weakening_and_schema_changes(
    store: SqlCipherStore, control: Any, sql: str, which: str, tmp_path: Path
) -> None:
    """Each service connection refuses the statement, which works or fails otherwise unguarded."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    statement = sql.format(dir=scratch)
    # Without the authorizer SQLite does not say "not authorized" (so the test can fail).
    error = ""
    try:
        control.execute(statement)
    except sqlcipher3.DatabaseError as exc:
        error = str(exc)
    assert "not authorized" not in error
    assert "authorization denied" not in error
    for leftover in scratch.iterdir():
        leftover.unlink()
    conn = store._conn if which == "writer" else store._reader
    before = service_state(conn)
    with pytest.raises(sqlcipher3.DatabaseError, match=r"not authorized|authorization denied"):
        conn.execute(statement)
    assert service_state(conn) == before
    assert list(scratch.iterdir()) == []
    store.insert_child(a_child())
    assert store.get_child("C1") == a_child()


@pytest.mark.parametrize("which", ["writer", "reader"])
def test_authorizer_denies_load_extension_even_when_loading_is_enabled(
    store: SqlCipherStore, control: Any, which: str, tmp_path: Path
) -> None:
    """load_extension is refused by the authorizer, not only by extension loading being off."""
    statement = f"SELECT load_extension('{tmp_path / 'no-such-library'}')"
    control.enable_load_extension(True)
    with pytest.raises(sqlcipher3.OperationalError) as unguarded:
        control.execute(statement)
    assert "not authorized" not in str(unguarded.value)  # it tried to load the file
    conn = store._conn if which == "writer" else store._reader
    conn.enable_load_extension(True)
    try:
        for name in ("load_extension", "LOAD_EXTENSION"):
            with pytest.raises(sqlcipher3.DatabaseError, match="not authorized"):
                conn.execute(statement.replace("load_extension", name))
    finally:
        conn.enable_load_extension(False)


@pytest.mark.parametrize("which", ["writer", "reader"])
def test_authorizer_allows_ordinary_work(store: SqlCipherStore, which: str) -> None:
    """Row reads, transactions, savepoints, setting reads and checkpoints pass the authorizer."""
    store.insert_child(a_child())
    conn = store._conn if which == "writer" else store._reader
    conn.execute("BEGIN")
    conn.execute("SAVEPOINT s")
    assert conn.execute("SELECT count(*), max(sex) FROM child").fetchone() == (1, "male")
    conn.execute("RELEASE s")
    conn.execute("COMMIT")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
    assert conn.execute("SELECT * FROM pragma_journal_mode").fetchone()[0] == "wal"
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")


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
