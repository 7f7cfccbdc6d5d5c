"""The SQLCipher erasure (node/store/sqlcipher/erasure.py) beyond the contract: the file's rules.

After an erasure no table of the file holds the child's wrapped key, sealed blobs or ids;
tombstones are append-only even for raw SQL; outside an erasure, histories, closings,
consents and emergency accesses still refuse deletes.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlcipher3

from node.store.base import StoredErasure
from node.store.sqlcipher import SqlCipherStore
from tests.contract.test_erasure_store import held_child, tombstone
from tests.unit.node.store.sqlcipher.rawpages import wal_frames
from tests.unit.node.store.sqlcipher.support import raw_connection


def every_value(conn: sqlcipher3.Connection) -> list[object]:
    """Every value of every row of every table in the file."""
    tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return [v for t in tables for row in conn.execute(f"SELECT * FROM {t}") for v in row]


def test_no_table_holds_the_erased_childs_values(
    store: SqlCipherStore, db_path: Path, key_hex: str
) -> None:
    """Once erased, no value in any table is or contains the child's key, blobs or id."""
    held_child(store, "C1", b"n1" * 16)
    held_child(store, "C2", b"n2" * 16)
    before = store.get_child("C1")
    assert before is not None
    store.erase_child("C1", tombstone())
    store.close()
    conn = raw_connection(db_path, key_hex)
    try:
        values = every_value(conn)
    finally:
        conn.close()
    for secret in (before.wrapped_key, before.sealed_identity, b"n1" * 16, b"t-C1"):
        assert not any(isinstance(v, bytes) and secret in v for v in values)
    assert "C1" not in values
    assert "BC1" not in values  # the emergency access
    assert "C2" in values  # the other child stays
    assert tombstone().pseudonym in values


def test_tombstones_are_append_only_even_for_raw_sql(
    store: SqlCipherStore, db_path: Path, key_hex: str
) -> None:
    """UPDATE and DELETE on tombstones abort, even without the authorizer."""
    store.erase_child("C1", tombstone())
    store.close()
    conn = raw_connection(db_path, key_hex)
    try:
        for sql in ("UPDATE child_erasure SET actor = 'x'", "DELETE FROM child_erasure"):
            with pytest.raises(sqlcipher3.IntegrityError, match="kept"):
                conn.execute(sql)
    finally:
        conn.close()


def test_outside_an_erasure_kept_rows_refuse_deletes(
    store: SqlCipherStore, db_path: Path, key_hex: str
) -> None:
    """Deleting a held child's history, closing, consents or emergency accesses still aborts."""
    held_child(store, "C1", b"n1" * 16)
    store.close()
    conn = raw_connection(db_path, key_hex)
    try:
        for table in ("child_event", "child_closure", "consent", "breakglass"):
            with pytest.raises(sqlcipher3.IntegrityError, match="kept"):
                conn.execute(f"DELETE FROM {table}")
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 1
    finally:
        conn.close()


def test_tombstones_survive_reopening(store: SqlCipherStore, db_path: Path, key_hex: str) -> None:
    """A tombstone reads back the same after a restart."""
    store.erase_child("C1", tombstone())
    store.close()
    reopened = SqlCipherStore.open(db_path, key_hex)
    try:
        assert reopened.erased_children() == [tombstone()]
        assert reopened.erasure_of(tombstone().pseudonym) == StoredErasure(
            tombstone().pseudonym, tombstone().erased_at, tombstone().actor, "guardian_request"
        )
    finally:
        reopened.close()


def test_an_erasure_truncates_the_wal(store: SqlCipherStore, db_path: Path) -> None:
    """Once an erasure commits, the WAL holding the old pages is checkpointed to nothing."""
    held_child(store, "C1", b"n1" * 16)
    wal = db_path.with_name(db_path.name + "-wal")
    assert wal.stat().st_size > 0
    with store.atomic():
        store.erase_child("C1", tombstone())
        assert wal.stat().st_size > 0  # not before the commit
    assert wal.stat().st_size == 0


def test_an_erasure_during_a_read_leaves_nothing_of_the_child_in_the_wal(
    store: SqlCipherStore, db_path: Path, key_hex: str
) -> None:
    """An erasure committed while another thread reads leaves no frame of the child in the
    WAL once that read ends (the truncation is retried, not dropped)."""
    held_child(store, "C1", b"n1" * 16)
    before = store.get_child("C1")
    assert before is not None
    key = bytes.fromhex(key_hex)
    assert any(before.wrapped_key in f for f in wal_frames(db_path, key))  # the reader works
    reading, erased = threading.Event(), threading.Event()

    def read() -> None:
        with store.read_view():
            assert list(store.child_ids())
            reading.set()
            erased.wait(60)

    reader = threading.Thread(target=read)
    reader.start()
    assert reading.wait(60)
    store.erase_child("C1", tombstone())
    erased.set()
    reader.join(60)
    frames = wal_frames(db_path, key)
    for secret in (before.wrapped_key, before.sealed_identity, b"n1" * 16):
        assert not any(secret in f for f in frames)
