"""The SQLCipher ledger (node/store/sqlcipher/ledger.py) beyond the contract: the file's own rules.

The privacy ledger and participant sets are append-only and checked even for raw SQL, and
survive reopening.
"""

from __future__ import annotations

import datetime as dt
from fractions import Fraction
from pathlib import Path

import pytest
import sqlcipher3

from childreg.secagg.roster import Participation
from node.store.base import (
    MECHANISMS,
    LedgerEntry,
    Mechanism,
)
from node.store.sqlcipher import SqlCipherStore
from tests.unit.node.store.sqlcipher.support import raw_connection


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
