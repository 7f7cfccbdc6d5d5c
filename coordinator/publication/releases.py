"""The coordinator's memory of a snapshot: charges to statisticians, published tables, state.

One SQLite file (``releases.db`` in the coordinator's state directory; it holds only
published, privacy-protected numbers and budget records, never a department's table):

- ``charges``: the coordinator's privacy ledger. A table is charged once per (snapshot,
  catalogue version, table), to the statistician who first asked; the node ledgers are
  the enforcement that survives this file being wiped — this one refuses *before* any
  node is contacted.
- ``releases``: every published table under its canonical key, as the exact bytes
  returned, so a repeat is byte-identical and free.
- ``snapshot_state``: the post-processing state (childreg's consistent-publication base)
  that later tables of the snapshot must agree with.
- ``participant_sets``: under secure aggregation, the departments settled for a snapshot
  before its first round, and those left out. A node takes part with one set only per
  snapshot (for every table), so the set is written once and never changed: every table of the
  snapshot uses it, and every publication names the departments left out.

``charges``, ``releases`` and ``participant_sets`` are append-only (triggers abort UPDATE
and DELETE); ``synchronous=FULL`` so an acknowledged charge or release survives a power
cut. Every table is created if missing, so a store written before a table existed opens
and gains it.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

from childreg.errors import ResourceExhausted

_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS charges (
        seq INTEGER PRIMARY KEY,
        snapshot TEXT NOT NULL,
        catalogue_version INTEGER NOT NULL,
        table_id TEXT NOT NULL,
        statistician TEXT NOT NULL,
        rho_numerator INTEGER NOT NULL CHECK (rho_numerator > 0),
        rho_denominator INTEGER NOT NULL CHECK (rho_denominator > 0),
        charged_at TEXT NOT NULL,
        UNIQUE (snapshot, catalogue_version, table_id)
    )""",
    """CREATE TABLE IF NOT EXISTS releases (
        release_key TEXT PRIMARY KEY,
        snapshot TEXT NOT NULL,
        table_id TEXT NOT NULL,
        dimensions TEXT NOT NULL,
        body BLOB NOT NULL,
        UNIQUE (snapshot, dimensions)
    )""",
    """CREATE TABLE IF NOT EXISTS snapshot_state (
        snapshot TEXT PRIMARY KEY,
        state TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS participant_sets (
        snapshot TEXT PRIMARY KEY,
        roster_version INTEGER NOT NULL,
        participants TEXT NOT NULL,
        missing TEXT NOT NULL,
        settled_at TEXT NOT NULL
    )""",
    *(
        f"""CREATE TRIGGER IF NOT EXISTS {table}_no_{verb} BEFORE {verb.upper()} ON {table}
            BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"""
        for table in ("charges", "releases", "participant_sets")
        for verb in ("update", "delete")
    ),
)


def release_key(academic_year: str, catalogue_version: int, dimensions: tuple[str, ...]) -> str:
    """The canonical key of a published table: snapshot, catalogue version, sorted dimensions."""
    return f"{academic_year}/catalogue-{catalogue_version}/{dimension_key(dimensions)}"


def dimension_key(dimensions: tuple[str, ...]) -> str:
    """A table's dimensions as a set, written canonically."""
    return "+".join(sorted(dimensions))


@dataclass(frozen=True)
class Charge:
    """One table charged to a statistician."""

    catalogue_version: int
    table_id: str
    statistician: str
    rho: Fraction


@dataclass(frozen=True)
class ParticipantSet:
    """The departments of a snapshot's secure-aggregation rounds, final once recorded."""

    participants: tuple[str, ...]  # sorted
    missing: tuple[str, ...]  # configured departments left out, sorted
    roster_version: int  # of the roster the set was settled under (for the record)


class ReleaseStore:
    """Charges, releases and post-processing state of every snapshot."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._lock = threading.RLock()
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        for statement in _SCHEMA:
            self._conn.execute(statement)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _rows(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def release(self, key: str) -> bytes | None:
        """The stored bytes of a published table, or None."""
        rows = self._rows("SELECT body FROM releases WHERE release_key = ?", (key,))
        return bytes(rows[0][0]) if rows else None

    def release_of(self, snapshot: str, dimensions: tuple[str, ...]) -> bytes | None:
        """The table over ``dimensions`` already published for ``snapshot`` (any version)."""
        rows = self._rows(
            "SELECT body FROM releases WHERE snapshot = ? AND dimensions = ?",
            (snapshot, dimension_key(dimensions)),
        )
        return bytes(rows[0][0]) if rows else None

    def bodies(self, snapshot: str) -> list[bytes]:
        """Every table published for ``snapshot``, in publication order."""
        rows = self._rows(
            "SELECT body FROM releases WHERE snapshot = ? ORDER BY rowid", (snapshot,)
        )
        return [bytes(r[0]) for r in rows]

    def published(self, snapshot: str) -> list[str]:
        """Table ids published for ``snapshot``, in publication order."""
        rows = self._rows(
            "SELECT table_id FROM releases WHERE snapshot = ? ORDER BY rowid", (snapshot,)
        )
        return [str(r[0]) for r in rows]

    def charges(self, snapshot: str) -> list[Charge]:
        """Every charge of ``snapshot``, in order."""
        with self._lock:
            return _charges(self._conn, snapshot)

    def charge(
        self,
        snapshot: str,
        catalogue_version: int,
        table_id: str,
        rho: Fraction,
        *,
        statistician: str,
        sub_budget: Fraction,
        cap: Fraction,
    ) -> bool:
        """Charge a table once; False if already charged; ResourceExhausted past a budget."""
        with self._transaction() as conn:
            charges = _charges(conn, snapshot)
            if any(
                (c.catalogue_version, c.table_id) == (catalogue_version, table_id) for c in charges
            ):
                return False
            total = sum((c.rho for c in charges), Fraction(0))
            mine = sum((c.rho for c in charges if c.statistician == statistician), Fraction(0))
            if mine + rho > sub_budget:
                raise ResourceExhausted(
                    f"your privacy sub-budget for snapshot {snapshot} does not allow table "
                    f"{table_id}: {mine} of {sub_budget} spent, the table costs {rho}; "
                    "tables already published are free (`childreg stats budget` shows them)"
                )
            if total + rho > cap:
                raise ResourceExhausted(
                    f"the privacy budget of snapshot {snapshot} does not allow table "
                    f"{table_id}: {total} of {cap} spent by all statisticians, the table "
                    f"costs {rho}"
                )
            conn.execute(
                "INSERT INTO charges(snapshot, catalogue_version, table_id, statistician,"
                " rho_numerator, rho_denominator, charged_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    snapshot,
                    catalogue_version,
                    table_id,
                    statistician,
                    rho.numerator,
                    rho.denominator,
                    dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                ),
            )
        return True

    def state(self, snapshot: str) -> dict[str, Any] | None:
        """The post-processing state of ``snapshot`` (JSON object), or None."""
        rows = self._rows("SELECT state FROM snapshot_state WHERE snapshot = ?", (snapshot,))
        return dict(json.loads(rows[0][0])) if rows else None

    def publish(
        self,
        key: str,
        snapshot: str,
        *,
        table_id: str,
        dimensions: tuple[str, ...],
        body: bytes,
        state: dict[str, Any],
    ) -> None:
        """Store a published table and the snapshot's new state in one transaction."""
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO releases(release_key, snapshot, table_id, dimensions, body)"
                " VALUES (?, ?, ?, ?, ?)",
                (key, snapshot, table_id, dimension_key(dimensions), body),
            )
            conn.execute(
                "INSERT INTO snapshot_state(snapshot, state) VALUES (?, ?)"
                " ON CONFLICT(snapshot) DO UPDATE SET state = excluded.state",
                (snapshot, json.dumps(state, separators=(",", ":"), sort_keys=True)),
            )

    def participant_set(self, snapshot: str) -> ParticipantSet | None:
        """The participant set settled for ``snapshot``, or None if none was yet."""
        with self._lock:
            return _participant_set(self._conn, snapshot)

    def settle_participants(
        self,
        snapshot: str,
        participants: Iterable[str],
        missing: Iterable[str],
        *,
        roster_version: int,
    ) -> ParticipantSet:
        """Record the snapshot's participant set unless one is recorded; return the recorded.

        Written once: a set recorded earlier (even a different one) wins and is returned.
        """
        chosen = tuple(sorted(set(participants)))
        left_out = tuple(sorted(set(missing)))
        if not chosen or set(chosen) & set(left_out):
            raise ValueError("a participant set is non-empty and disjoint from the missing")
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO participant_sets(snapshot, roster_version, participants, missing,"
                " settled_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT(snapshot) DO NOTHING",
                (
                    snapshot,
                    roster_version,
                    json.dumps(chosen),
                    json.dumps(left_out),
                    dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                ),
            )
            recorded = _participant_set(conn, snapshot)
        if recorded is None:  # inserted or already there, in this transaction
            raise RuntimeError(f"the participant set of {snapshot} was not recorded")
        return recorded

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._conn.close()


def _charges(conn: sqlite3.Connection, snapshot: str) -> list[Charge]:
    rows = conn.execute(
        "SELECT catalogue_version, table_id, statistician, rho_numerator, rho_denominator"
        " FROM charges WHERE snapshot = ? ORDER BY seq",
        (snapshot,),
    ).fetchall()
    return [Charge(int(r[0]), str(r[1]), str(r[2]), Fraction(int(r[3]), int(r[4]))) for r in rows]


def _participant_set(conn: sqlite3.Connection, snapshot: str) -> ParticipantSet | None:
    row = conn.execute(
        "SELECT participants, missing, roster_version FROM participant_sets WHERE snapshot = ?",
        (snapshot,),
    ).fetchone()
    if row is None:
        return None
    return ParticipantSet(tuple(json.loads(row[0])), tuple(json.loads(row[1])), int(row[2]))
