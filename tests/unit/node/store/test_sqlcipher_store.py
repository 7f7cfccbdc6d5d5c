"""SQLCipher-specific store behaviour: keys, authorizer, pragmas, reader, migrations, disk."""

from __future__ import annotations

import datetime as dt
import secrets
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlcipher3

from childreg import codes
from childreg.errors import AlreadyExists, FailedPrecondition, KeyProblem
from childreg.models import AssessmentIn, ChildIn, FunctioningItem, PlacementIn
from childreg.secagg.roster import Participation
from node.crypto.keys import KekSource, Keyring, generate_key_file
from node.records.registry import Registry
from node.store import migrations
from node.store.base import (
    MECHANISMS,
    LedgerEntry,
    Mechanism,
    NewChild,
    StoredChild,
    StoredPlacement,
    pack_sealed,
    unpack_sealed,
)
from node.store.sqlcipher import SqlCipherStore, _count_sql
from tests.store_rows import new_child_row

T = TypeVar("T")
YEAR = "2023/24"
REF = codes.reference_date(YEAR)


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


# --- authorizer ------------------------------------------------------------------------


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


# --- the reader connection: reads do not wait for an open write -----------------------


def placed(child_id: str) -> NewChild:
    """A new male child placed in 2023/24, for insert_new_children."""
    return new_child_row(a_child(child_id), StoredPlacement(child_id, YEAR, "preschool", None))


def run_while_a_block_is_open(
    store: SqlCipherStore, write: Callable[[], object], read: Callable[[], T]
) -> tuple[bool, list[T], list[BaseException]]:
    """Open atomic() in one thread, ``write`` in it, run ``read`` in another, then commit.

    Returns whether ``read`` finished while the block was still open, its result, and any
    error of the writing thread. Events synchronise; timeouts only bound a failing test.
    """
    opened, release, read_done = threading.Event(), threading.Event(), threading.Event()
    errors: list[BaseException] = []
    results: list[T] = []

    def writer() -> None:
        try:
            with store.atomic():
                write()
                opened.set()
                release.wait(timeout=60)
        except BaseException as exc:  # reported to the test
            errors.append(exc)
            opened.set()

    def reader() -> None:
        results.append(read())
        read_done.set()

    writing = threading.Thread(target=writer)
    writing.start()
    assert opened.wait(timeout=60)
    reading = threading.Thread(target=reader)
    reading.start()
    finished_first = read_done.wait(timeout=10)
    release.set()
    writing.join(timeout=60)
    reading.join(timeout=60)
    assert not writing.is_alive()
    assert not reading.is_alive()
    return finished_first, results, errors


def test_count_from_another_thread_does_not_wait_for_an_open_block(store: SqlCipherStore) -> None:
    """count_table from another thread completes during an open atomic() with committed counts."""
    store.insert_new_children([placed("C0")])
    inside: list[dict[tuple[str, ...], int]] = []

    def write() -> None:
        store.insert_new_children([placed("C1"), placed("C2")])
        inside.append(store.count_table(YEAR, REF, ["sex"]))  # the writer sees its own rows

    finished_first, counts, errors = run_while_a_block_is_open(
        store, write, lambda: store.count_table(YEAR, REF, ["sex"])
    )
    assert errors == []
    assert finished_first
    assert counts == [{("male",): 1}]
    assert inside == [{("male",): 3}]
    assert store.count_table(YEAR, REF, ["sex"]) == {("male",): 3}


def test_registry_get_child_does_not_wait_for_an_open_block(
    store: SqlCipherStore, tmp_path: Path
) -> None:
    """Registry.get_child from another thread completes while an import's block is open."""
    generate_key_file(tmp_path / "kek.key")
    keyring = Keyring.create(tmp_path / "kr.json", KekSource.from_key_file(tmp_path / "kek.key"))
    registry = Registry(store, keyring)
    child = ChildIn(
        child_id="C1",
        given_name="Aysel",
        family_name="Aliyeva",
        date_of_birth=dt.date(2016, 4, 2),
        sex="female",
        district="nasimi",
    )
    registry.register_child(child)
    finished_first, views, errors = run_while_a_block_is_open(
        store, lambda: store.insert_child(a_child("C2")), lambda: registry.get_child("C1")
    )
    assert errors == []
    assert finished_first
    assert [v.child for v in views] == [child]


def test_read_view_is_one_snapshot_while_another_thread_commits(store: SqlCipherStore) -> None:
    """Inside a read view, writes committed by another thread stay invisible until it ends."""
    store.insert_child(a_child("C1"))
    with store.read_view():
        assert store.child_count() == 1
        other = threading.Thread(target=lambda: store.insert_new_children([placed("C2")]))
        other.start()
        other.join(timeout=60)
        assert not other.is_alive()
        assert store.child_count() == 1
        assert store.get_child("C2") is None
        assert store.count_table(YEAR, REF, ["sex"]) == {}
    assert store.child_count() == 2
    assert store.count_table(YEAR, REF, ["sex"]) == {("male",): 1}


def test_failed_bulk_insert_leaves_the_surrounding_transaction_intact(
    store: SqlCipherStore,
) -> None:
    """A refused insert_new_children rolls back only its savepoint, and the block commits."""
    store.insert_child(a_child("C1"))
    with store.atomic():
        store.insert_new_children([placed("C2")])
        with pytest.raises(AlreadyExists):
            store.insert_new_children([placed("C3"), placed("C1")])
        assert store._conn.in_transaction
    assert list(store.child_ids()) == ["C1", "C2"]
    assert store.placements("C3") == []


def test_sealed_fields_blob_layout_is_unchanged() -> None:
    """Assessment fields are packed as (u16 name length, name, u32 length, value)* by name."""
    fields = {"supports": b"\x00s", "diagnoses": b"", "é": b"xyz"}
    assert pack_sealed(fields) == (
        b"\x00\x09diagnoses\x00\x00\x00\x00"
        b"\x00\x08supports\x00\x00\x00\x02\x00s"
        b"\x00\x02\xc3\xa9\x00\x00\x00\x03xyz"
    )
    assert unpack_sealed(pack_sealed(fields)) == fields


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


# --- privacy ledger ---------------------------------------------------------------------


def test_ledger_is_append_only_even_for_raw_sql(
    store: SqlCipherStore, db_path: Path, key_hex: str
) -> None:
    """UPDATE and DELETE on the ledger abort, even on a connection without the authorizer."""
    store.append_ledger(
        LedgerEntry(
            "2023/24",
            1,
            "d",
            "education_form",
            Fraction(1, 32),
            (1, 2),
            dt.datetime.now(dt.UTC),
            "x",
        )
    )
    store.close()
    conn = raw_connection(db_path, key_hex)
    try:
        for sql in (
            "UPDATE privacy_ledger SET rho_numerator = 0",
            "DELETE FROM privacy_ledger",
        ):
            with pytest.raises(sqlcipher3.IntegrityError, match="append-only"):
                conn.execute(sql)
        assert conn.execute("SELECT count(*) FROM privacy_ledger").fetchone()[0] == 1
    finally:
        conn.close()


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_ledger_survives_reopening(
    store: SqlCipherStore, db_path: Path, key_hex: str, mechanism: Mechanism
) -> None:
    """What was spent is still spent after a restart, under the mechanism it was spent by."""
    entry = LedgerEntry(
        "2023/24", 3, "d3", "sex_by_age", Fraction(1, 16), (-4, 0, 9), dt.datetime.now(dt.UTC),
        "coordinator", mechanism=mechanism,
    )  # fmt: skip
    store.append_ledger(entry)
    store.close()
    reopened = SqlCipherStore.open(db_path, key_hex)
    try:
        assert reopened.ledger("2023/24") == [entry]
    finally:
        reopened.close()


def test_ledger_refuses_an_unknown_mechanism_even_for_raw_sql(
    store: SqlCipherStore, db_path: Path, key_hex: str
) -> None:
    """The schema allows only the two mechanisms, whoever writes the row."""
    store.close()
    conn = raw_connection(db_path, key_hex)
    try:
        with pytest.raises(sqlcipher3.IntegrityError):
            conn.execute(
                "INSERT INTO privacy_ledger(snapshot, catalogue_version, catalogue_digest,"
                " table_id, rho_numerator, rho_denominator, released, released_at,"
                " requested_by, mechanism) VALUES ('2023/24', 1, 'd', 't', 1, 32, '[]', 'x',"
                " 'x', 'in-the-clear')"
            )
    finally:
        conn.close()


def test_participation_is_append_only_even_for_raw_sql(
    store: SqlCipherStore, db_path: Path, key_hex: str
) -> None:
    """UPDATE and DELETE of a participation row abort, even without the authorizer."""
    store.record_participation("2023/24", Participation(frozenset({"a", "b", "c"}), 1))
    store.close()
    conn = raw_connection(db_path, key_hex)
    try:
        for sql in (
            'UPDATE secagg_participation SET participants = \'["b","c","d"]\'',
            "DELETE FROM secagg_participation",
        ):
            with pytest.raises(sqlcipher3.IntegrityError, match="append-only"):
                conn.execute(sql)
        rows = conn.execute("SELECT participants FROM secagg_participation").fetchall()
        assert rows == [('["a","b","c"]',)]
    finally:
        conn.close()


def test_participation_survives_reopening(
    store: SqlCipherStore, db_path: Path, key_hex: str
) -> None:
    """The set a node took part with is still binding after a restart."""
    store.record_participation("2023/24", Participation(frozenset({"a", "b", "c"}), 1))
    store.close()
    reopened = SqlCipherStore.open(db_path, key_hex)
    try:
        assert reopened.participation("2023/24") == Participation(frozenset({"a", "b", "c"}), 1)
        reopened.record_participation("2023/24", Participation(frozenset({"b", "c", "d"}), 1))
        assert reopened.participation("2023/24") == Participation(frozenset({"a", "b", "c"}), 1)
    finally:
        reopened.close()


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
