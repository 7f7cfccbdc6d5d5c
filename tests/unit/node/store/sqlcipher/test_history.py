"""The SQLCipher history (node/store/sqlcipher/history.py) beyond the contract: the file's rules.

A child's history and its closing are append-only even for raw SQL, and survive reopening.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlcipher3

from node.store.base import StoredClosure, StoredEvent
from node.store.sqlcipher import SqlCipherStore
from tests.contract.stores import child
from tests.unit.node.store.sqlcipher.support import raw_connection

EVENT = StoredEvent("C1", 1, "2026-12-07T09:30:00Z", "x", "registered", b"sealed")
CLOSURE = StoredClosure("C1", dt.date(2024, 6, 1), "aged_out")


def test_history_and_closing_are_append_only_even_for_raw_sql(
    store: SqlCipherStore, db_path: Path, key_hex: str
) -> None:
    """UPDATE and DELETE on events and closings abort, even without the authorizer."""
    store.insert_child(child("C1"))
    store.add_event(EVENT)
    store.close_child(CLOSURE)
    store.close()
    conn = raw_connection(db_path, key_hex)
    try:
        for sql in (
            "UPDATE child_event SET actor = 'someone else'",
            "DELETE FROM child_event",
            "UPDATE child_closure SET closed_on = '2030-01-01'",
            "DELETE FROM child_closure",
        ):
            with pytest.raises(sqlcipher3.IntegrityError, match="kept"):
                conn.execute(sql)
        assert conn.execute("SELECT count(*) FROM child_event").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM child_closure").fetchone()[0] == 1
    finally:
        conn.close()


def test_history_survives_reopening(store: SqlCipherStore, db_path: Path, key_hex: str) -> None:
    """Events and the closing read back the same after a restart."""
    store.insert_child(child("C1"))
    store.add_event(EVENT)
    store.close_child(CLOSURE)
    store.close()
    reopened = SqlCipherStore.open(db_path, key_hex)
    try:
        assert (reopened.events("C1"), reopened.closure("C1")) == ([EVENT], CLOSURE)
    finally:
        reopened.close()
