"""The node's real record store: one SQLCipher 4 file keyed with a random raw key.

A stolen disk or backup must yield nothing: pages are encrypted (SQLCipher, raw 256-bit
key, never a passphrase), identity and sensitive fields arrive already sealed by the
domain layer, ``secure_delete`` overwrites freed pages, temporary tables stay in memory
and ``close()`` checkpoints the WAL away. Once the schema is migrated, an SQL authorizer
allows only reading and writing rows, transactions and a short list of pragmas: no
ATTACH, export, extension, key or cipher pragma, no change of those settings, and no
CREATE, DROP or ALTER of anything.

Two connections: the writer, guarded by a re-entrant lock (an ``atomic()`` block holds it
and one ``BEGIN IMMEDIATE`` transaction throughout), and a read-only reader with its own
lock. Reads by the thread inside ``atomic()`` use the writer, to see the block's own
writes; reads by other threads use the reader, which in WAL mode sees the last committed
state without waiting for an open write transaction (a long import does not stall
statistics or look-ups). Count tables are computed in SQL from small covering indexes (see
migrations.py).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

import sqlcipher3

from childreg import codes
from childreg.errors import AlreadyExists, FailedPrecondition, KeyProblem, NotFound
from childreg.secagg.roster import Participation
from node.crypto.keys import HEX64
from node.store import migrations
from node.store.base import (
    MECHANISMS,
    BlockNesting,
    ExtractSource,
    LedgerEntry,
    Mechanism,
    NewChild,
    RecordStore,
    StoredAssessment,
    StoredBreakGlass,
    StoredCareSetting,
    StoredChild,
    StoredConsent,
    StoredPlacement,
    assessment_columns,
    child_columns,
    date_or_none,
    unpack_sealed,
)

#: Settings a SQLCipher 4 database must have (beyond ``cipher_version`` 4.x).
_EXPECTED_CIPHER: Final = {
    "cipher_hmac_algorithm": "HMAC_SHA512",
    "cipher_plaintext_header_size": "0",
}
#: Set on both connections before the authorizer is installed.
_PRAGMAS: Final = (
    "synchronous = FULL",
    "secure_delete = ON",
    "temp_store = MEMORY",
    "foreign_keys = ON",
    "cache_size = -8192",  # 8 MiB per connection; count tables ran as fast as with 64 MiB
)
#: What the authorizer lets through once the connection is set up.
_ALLOWED_ACTIONS: Final = frozenset(
    {
        sqlcipher3.SQLITE_SELECT,
        sqlcipher3.SQLITE_READ,
        sqlcipher3.SQLITE_INSERT,
        sqlcipher3.SQLITE_UPDATE,
        sqlcipher3.SQLITE_DELETE,
        sqlcipher3.SQLITE_TRANSACTION,
        sqlcipher3.SQLITE_SAVEPOINT,
        sqlcipher3.SQLITE_RECURSIVE,
        sqlcipher3.SQLITE_FUNCTION,  # except _DENIED_FUNCTIONS
        sqlcipher3.SQLITE_PRAGMA,  # only _READABLE_PRAGMAS (no value) and _ALLOWED_PRAGMAS
    }
)
_READABLE_PRAGMAS: Final = frozenset(
    {
        "journal_mode",
        "synchronous",
        "secure_delete",
        "temp_store",
        "foreign_keys",
        "cache_size",
        "query_only",
        "user_version",
        "data_version",
    }
)
_ALLOWED_PRAGMAS: Final = frozenset({"wal_checkpoint"})  # close() truncates the WAL
_DENIED_FUNCTIONS: Final = frozenset({"sqlcipher_export", "load_extension", "fts3_tokenizer"})
_PAGE: Final = 1000  # child ids fetched per round trip by child_ids()
_IN_CHUNK: Final = 500  # values per IN (...) list in existing_* look-ups

_CHILD_COLUMNS: Final = (
    "child_id, key_version, wrapped_key, national_id_hash, date_of_birth, sex, district, "
    "sealed_identity"
)
_INSERT_CHILD: Final = f"INSERT INTO child({_CHILD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_UPDATE_CHILD: Final = (
    "UPDATE child SET key_version = ?, wrapped_key = ?, national_id_hash = ?, "
    "date_of_birth = ?, sex = ?, district = ?, sealed_identity = ? WHERE child_id = ?"
)
_UPSERT_PLACEMENT: Final = (
    "INSERT INTO placement(child, academic_year, education_form, institution) "
    "SELECT id, ?, ?, ? FROM child WHERE child_id = ? "
    "ON CONFLICT(academic_year, child) DO UPDATE SET "
    "education_form = excluded.education_form, institution = excluded.institution"
)
_PUT_CARE: Final = (
    "INSERT INTO care_setting(child, since, care_setting) "
    "SELECT id, ?, ? FROM child WHERE child_id = ? "
    "ON CONFLICT(child, since) DO UPDATE SET care_setting = excluded.care_setting"
)
_ASSESSMENT_COLUMNS: Final = (
    "child, assessment_id, assessment_date, commission, impairment_band, recommended_form, "
    "next_review, sealed_fields"
)
_ADD_ASSESSMENT: Final = (
    f"INSERT INTO assessment({_ASSESSMENT_COLUMNS}) "
    "SELECT c.id, COALESCE((SELECT max(a.assessment_id) FROM assessment a "
    "WHERE a.child = c.id), 0) + 1, ?, ?, ?, ?, ?, ? FROM child c WHERE c.child_id = ? "
    "RETURNING assessment_id"
)
# The bulk path of insert_new_children: surrogate ids are assigned here, under the lock.
_NEW_CHILD: Final = f"INSERT INTO child(id, {_CHILD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
_NEW_PLACEMENT: Final = (
    "INSERT INTO placement(child, academic_year, education_form, institution) VALUES (?, ?, ?, ?)"
)
_NEW_CARE: Final = "INSERT INTO care_setting(child, since, care_setting) VALUES (?, ?, ?)"
_NEW_ASSESSMENT: Final = (
    f"INSERT INTO assessment({_ASSESSMENT_COLUMNS}) VALUES (?, 1, ?, ?, ?, ?, ?, ?)"
)

_APPEND_LEAF: Final = (
    "INSERT INTO audit_leaf(seq, body) SELECT ?, ? "
    "WHERE ? = (SELECT coalesce(max(seq) + 1, 0) FROM audit_leaf)"
)
_CONSENT_COLUMNS: Final = (
    "consent_id, child_id, purpose, school, valid_from, valid_until, evidence_ref, "
    "granted_at, granted_by, grant_hash, sealed_guardian, withdrawn_at"
)
#: What a stored assessment is read from (after the child it belongs to).
_ASSESSMENT_READ: Final = (
    "assessment_id, assessment_date, commission, impairment_band, recommended_form, "
    "next_review, sealed_fields"
)


def _prefixed(alias: str, columns: str) -> str:
    return ", ".join(f"{alias}.{c.strip()}" for c in columns.split(","))


# An extract's consent, its child, the child's latest assessment (by date, the lowest id
# of that date) and its placement in the year asked for: one statement of point look-ups.
_EXTRACT_SOURCE: Final = (
    f"SELECT {_prefixed('k', _CONSENT_COLUMNS)}, {_prefixed('c', _CHILD_COLUMNS)}, "
    f"{_prefixed('a', _ASSESSMENT_READ)}, (SELECT p.education_form FROM placement p "
    "WHERE p.academic_year = ? AND p.child = c.id) "
    "FROM consent k LEFT JOIN child c ON c.child_id = k.child_id "
    "LEFT JOIN assessment a ON a.child = c.id AND a.assessment_id = ("
    "SELECT b.assessment_id FROM assessment b WHERE b.child = c.id "
    "ORDER BY b.assessment_date DESC, b.assessment_id LIMIT 1) "
    "WHERE k.grant_hash = ?"
)
_CONSENT_WIDTH: Final = len(_CONSENT_COLUMNS.split(","))
_CHILD_WIDTH: Final = len(_CHILD_COLUMNS.split(","))


def _authorize(action: int, arg1: str | None, arg2: str | None, *_: object) -> int:
    """Allow row reads and writes, transactions and a few pragmas; deny everything else.

    Denied after set-up: ATTACH and DETACH (copying into a plaintext file), key and cipher
    pragmas, any pragma that changes a setting (secure_delete, temp_store, journal_mode,
    writable_schema, ...), CREATE / DROP / ALTER of tables, indexes, views, triggers and
    virtual tables, and the functions in ``_DENIED_FUNCTIONS``.
    """
    if action not in _ALLOWED_ACTIONS:
        return int(sqlcipher3.SQLITE_DENY)
    if action == sqlcipher3.SQLITE_PRAGMA:
        name = (arg1 or "").lower()
        if name in _ALLOWED_PRAGMAS or (arg2 is None and name in _READABLE_PRAGMAS):
            return int(sqlcipher3.SQLITE_OK)
        return int(sqlcipher3.SQLITE_DENY)
    if action == sqlcipher3.SQLITE_FUNCTION and (arg2 or "").lower() in _DENIED_FUNCTIONS:
        return int(sqlcipher3.SQLITE_DENY)
    return int(sqlcipher3.SQLITE_OK)


def _child_of(row: Sequence[Any]) -> StoredChild:
    """A child from its row (the columns of ``_CHILD_COLUMNS``)."""
    return StoredChild(
        child_id=row[0],
        key_version=row[1],
        wrapped_key=row[2],
        national_id_hash=row[3],
        date_of_birth=dt.date.fromisoformat(row[4]),
        sex=row[5],
        district=row[6],
        sealed_identity=row[7],
    )


def _assessment_of(child_id: str, row: Sequence[Any]) -> StoredAssessment:
    """An assessment of ``child_id`` from its row (the columns of ``_ASSESSMENT_READ``)."""
    aid, date, commission, band, form, review, sealed = row
    return StoredAssessment(
        child_id=child_id,
        assessment_id=int(aid),
        assessment_date=dt.date.fromisoformat(date),
        commission=commission,
        impairment_band=band,
        recommended_form=form,
        next_review=date_or_none(review),
        sealed_fields=unpack_sealed(sealed),
    )


def _consent_of(r: Sequence[Any]) -> StoredConsent:
    """A consent from its row (the columns of ``_CONSENT_COLUMNS``)."""
    return StoredConsent(
        consent_id=str(r[0]),
        child_id=str(r[1]),
        purpose=str(r[2]),
        school=str(r[3]),
        valid_from=dt.date.fromisoformat(str(r[4])),
        valid_until=dt.date.fromisoformat(str(r[5])),
        evidence_ref=str(r[6]),
        granted_at=dt.datetime.fromisoformat(str(r[7])),
        granted_by=str(r[8]),
        grant_hash=bytes(r[9]),
        sealed_guardian=bytes(r[10]),
        withdrawn_at=None if r[11] is None else dt.datetime.fromisoformat(str(r[11])),
    )


def _placeholders(n: int) -> str:
    return ", ".join("?" * n)


class SqlCipherStore(RecordStore):
    """Records in one SQLCipher 4 file; use :meth:`open` to get one."""

    def __init__(self, writer: Any, reader: Any) -> None:
        self._conn = writer
        self._reader = reader
        self._lock = threading.RLock()  # the writer
        self._read_lock = threading.RLock()  # the reader
        self._nesting = BlockNesting()
        self._viewer: int | None = None  # the thread inside read_view(), if any
        self._closed = False

    @classmethod
    def open(cls, path: Path, key_hex: str, *, create: bool = False) -> SqlCipherStore:
        """Open (or with ``create`` make) the database at ``path`` with a 64-hex-digit key."""
        path = Path(path)
        if not isinstance(key_hex, str) or not HEX64.fullmatch(key_hex):
            raise KeyProblem(
                "the database key must be exactly 64 hexadecimal characters",
                hint="pass the key from the node's keyring (Keyring.db_key_hex())",
            )
        if not create and not path.is_file():
            raise FailedPrecondition(
                f"no database at {path}; initialise the node's data directory first"
            )
        created = False
        if create and not path.exists():
            # Owner-only from the start; SQLite gives -wal and -shm the same mode.
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            created = True
        opened: list[Any] = []
        try:
            writer = cls._connect(path, key_hex, opened)
            if writer.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
                raise FailedPrecondition(f"cannot switch {path} to WAL journal mode")
            migrations.apply(writer)
            writer.set_authorizer(_authorize)
            reader = cls._connect(path, key_hex, opened)
            reader.execute("PRAGMA query_only = ON")
            reader.set_authorizer(_authorize)
        except BaseException:
            for conn in reversed(opened):
                conn.close()
            if created:
                for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                    leftover.unlink(missing_ok=True)
            raise
        return cls(writer, reader)

    @classmethod
    def _connect(cls, path: Path, key_hex: str, opened: list[Any]) -> Any:
        """A keyed connection with the store's pragmas, appended to ``opened``."""
        conn = sqlcipher3.connect(str(path), check_same_thread=False, isolation_level=None)
        opened.append(conn)
        cls._key(conn, path, key_hex)
        for pragma in _PRAGMAS:
            conn.execute(f"PRAGMA {pragma}")
        return conn

    @staticmethod
    def _key(conn: Any, path: Path, key_hex: str) -> None:
        # Unknown pragmas are ignored, so this is harmless where it is not supported.
        with contextlib.suppress(sqlcipher3.DatabaseError):
            conn.execute("PRAGMA cipher_log_level = NONE")
        conn.execute(f"PRAGMA key = \"x'{key_hex}'\"")
        row = conn.execute("PRAGMA cipher_version").fetchone()
        version = str(row[0]) if row else ""
        if not version.startswith("4."):
            raise FailedPrecondition(
                f"SQLCipher 4.x is required, found {version or 'no SQLCipher'}"
            )
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlcipher3.DatabaseError:
            raise KeyProblem(
                f"the database key does not open {path}",
                hint="use the keyring.json from the same data directory as the database "
                "(or the file is not a childreg database)",
            ) from None
        for pragma, expected in _EXPECTED_CIPHER.items():
            got = conn.execute(f"PRAGMA {pragma}").fetchone()
            if not got or str(got[0]) != expected:
                raise FailedPrecondition(f"{path} has unexpected SQLCipher setting {pragma}")

    # --- transactions and connection choice ------------------------------------------

    def _not_viewing(self) -> None:
        if self._viewer == threading.get_ident():
            raise RuntimeError("cannot write inside read_view()")

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """One ``BEGIN IMMEDIATE`` transaction; nested blocks join the outermost one."""
        self._not_viewing()
        with self._lock, self._nesting.enter(self._transaction):
            yield

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    @contextmanager
    def read_view(self) -> Iterator[None]:
        """One read transaction on the reader (or, inside ``atomic()``, the block's own)."""
        me = threading.get_ident()
        if me in (self._nesting.owner, self._viewer):
            yield
            return
        with self._read_lock:
            self._reader.execute("BEGIN")
            self._viewer = me
            try:
                yield
            finally:
                self._viewer = None
                if self._reader.in_transaction:
                    self._reader.execute("COMMIT")

    def _query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        """Every row of a read: on the writer inside this thread's atomic(), else the reader."""
        if self._nesting.owner == threading.get_ident():
            return self._conn.execute(sql, params).fetchall()  # type: ignore[no-any-return]
        with self._read_lock:
            return self._reader.execute(sql, params).fetchall()  # type: ignore[no-any-return]

    # --- writes ----------------------------------------------------------------------

    def insert_child(self, child: StoredChild) -> None:
        """Add a new child; AlreadyExists if the id or national-id hash is taken."""
        self._not_viewing()
        with self._lock:  # one statement: atomic by itself
            try:
                self._conn.execute(_INSERT_CHILD, child_columns(child))
            except sqlcipher3.IntegrityError as exc:
                raise _already_exists(exc) from None

    def insert_new_children(self, rows: Sequence[NewChild]) -> None:
        """Add new children with their first records, all or none; AlreadyExists if any is held.

        One ``executemany`` per table inside a savepoint, so a refusal undoes only this
        call; surrogate ids follow the largest one held (the write lock is held throughout).
        """
        self._not_viewing()
        if not rows:
            return
        with self._lock, self._nesting.enter(self._transaction):
            conn = self._conn
            (last,) = conn.execute("SELECT coalesce(max(id), 0) FROM child").fetchone()
            children: list[tuple[Any, ...]] = []
            placements: list[tuple[Any, ...]] = []
            cares: list[tuple[Any, ...]] = []
            assessments: list[tuple[Any, ...]] = []
            for surrogate, (c, p, care, a) in enumerate(rows, start=last + 1):
                key = (surrogate,)
                children.append(key + c)
                placements.append(key + p)
                if care is not None:
                    cares.append(key + care)
                if a is not None:
                    assessments.append(key + a)
            conn.execute("SAVEPOINT new_children")
            try:
                conn.executemany(_NEW_CHILD, children)
                conn.executemany(_NEW_PLACEMENT, placements)
                conn.executemany(_NEW_CARE, cares)
                conn.executemany(_NEW_ASSESSMENT, assessments)
            except BaseException as exc:
                conn.execute("ROLLBACK TO new_children")
                conn.execute("RELEASE new_children")
                if isinstance(exc, sqlcipher3.IntegrityError):
                    raise _already_exists(exc) from None
                raise
            conn.execute("RELEASE new_children")

    def replace_child(self, child: StoredChild) -> None:
        """Replace an existing child's row; NotFound if absent; AlreadyExists on a hash clash."""
        self._not_viewing()
        with self._lock:  # one statement: atomic by itself
            try:
                cursor = self._conn.execute(
                    _UPDATE_CHILD, (*child_columns(child)[1:], child.child_id)
                )
            except sqlcipher3.IntegrityError as exc:
                raise _already_exists(exc) from None
            if cursor.rowcount == 0:
                raise NotFound(f"no child with child_id {child.child_id}")

    def upsert_placement(self, placement: StoredPlacement) -> None:
        """Set the child's placement for that academic year."""
        self._not_viewing()
        with self._lock:  # one statement: atomic by itself
            cursor = self._conn.execute(
                _UPSERT_PLACEMENT,
                (
                    placement.academic_year,
                    placement.education_form,
                    placement.institution,
                    placement.child_id,
                ),
            )
            if cursor.rowcount == 0:
                raise NotFound(f"no child with child_id {placement.child_id}")

    def put_care_setting(self, care: StoredCareSetting) -> None:
        """Record the child's care setting from a date on."""
        self._not_viewing()
        with self._lock:  # one statement: atomic by itself
            cursor = self._conn.execute(
                _PUT_CARE, (care.since.isoformat(), care.care_setting, care.child_id)
            )
            if cursor.rowcount == 0:
                raise NotFound(f"no child with child_id {care.child_id}")

    def add_assessment(self, assessment: StoredAssessment) -> int:
        """Add an assessment and return its new id (1, 2, … per child)."""
        self._not_viewing()
        a = assessment
        with self._lock:  # one statement: atomic by itself
            row = self._conn.execute(
                _ADD_ASSESSMENT, (*assessment_columns(a), a.child_id)
            ).fetchall()
            if not row:
                raise NotFound(f"no child with child_id {a.child_id}")
            return int(row[0][0])

    # --- reads -----------------------------------------------------------------------

    def get_child(self, child_id: str) -> StoredChild | None:
        """The child's row, or None."""
        rows = self._query(f"SELECT {_CHILD_COLUMNS} FROM child WHERE child_id = ?", (child_id,))
        return _child_of(rows[0]) if rows else None

    def find_by_national_id_hash(self, digest: bytes) -> str | None:
        """The child id holding this national-id hash, or None."""
        rows = self._query("SELECT child_id FROM child WHERE national_id_hash = ?", (digest,))
        return str(rows[0][0]) if rows else None

    def existing_child_ids(self, child_ids: Iterable[str]) -> set[str]:
        """Those of ``child_ids`` that are held (looked up by the unique index, in chunks)."""
        return {str(v) for v in self._existing("child_id", list(dict.fromkeys(child_ids)))}

    def existing_national_id_hashes(self, digests: Iterable[bytes]) -> set[bytes]:
        """Those of ``digests`` that some held child has as its national-id hash."""
        return {bytes(v) for v in self._existing("national_id_hash", list(dict.fromkeys(digests)))}

    def _existing(self, column: str, values: list[Any]) -> list[Any]:
        found: list[Any] = []
        for at in range(0, len(values), _IN_CHUNK):
            chunk = values[at : at + _IN_CHUNK]
            sql = f"SELECT {column} FROM child WHERE {column} IN ({_placeholders(len(chunk))})"
            found += (v for (v,) in self._query(sql, chunk))
        return found

    def placements(self, child_id: str) -> list[StoredPlacement]:
        """The child's placements, by academic year."""
        rows = self._query(
            "SELECT p.academic_year, p.education_form, p.institution FROM placement p "
            "JOIN child c ON c.id = p.child WHERE c.child_id = ? ORDER BY p.academic_year",
            (child_id,),
        )
        return [StoredPlacement(child_id, year, form, inst) for year, form, inst in rows]

    def care_settings(self, child_id: str) -> list[StoredCareSetting]:
        """The child's care settings, by date."""
        rows = self._query(
            "SELECT s.care_setting, s.since FROM care_setting s "
            "JOIN child c ON c.id = s.child WHERE c.child_id = ? ORDER BY s.since",
            (child_id,),
        )
        return [
            StoredCareSetting(child_id, setting, dt.date.fromisoformat(since))
            for setting, since in rows
        ]

    def assessments(self, child_id: str) -> list[StoredAssessment]:
        """The child's assessments, by id."""
        rows = self._query(
            f"SELECT {_prefixed('a', _ASSESSMENT_READ)} FROM assessment a "
            "JOIN child c ON c.id = a.child WHERE c.child_id = ? ORDER BY a.assessment_id",
            (child_id,),
        )
        return [_assessment_of(child_id, row) for row in rows]

    def child_ids(self) -> Iterator[str]:
        """Every child id, sorted (fetched a page at a time)."""
        after = ""
        while True:
            page = self._query(
                "SELECT child_id FROM child WHERE child_id > ? ORDER BY child_id LIMIT ?",
                (after, _PAGE),
            )
            for (child_id,) in page:
                yield str(child_id)
            if len(page) < _PAGE:
                return
            after = page[-1][0]

    def child_count(self) -> int:
        """How many children are stored."""
        return int(self._query("SELECT count(*) FROM child")[0][0])

    def count_table(
        self, academic_year: str, reference_date: dt.date, dimensions: Sequence[str]
    ) -> dict[tuple[str, ...], int]:
        """Sparse counts of children placed in ``academic_year``, by ``dimensions``.

        Regions are folded from districts after grouping (a handful of cells), so the
        per-child work in SQL is the placement scan, one covering-index lookup per child
        and, when asked for, one index seek each for care setting and impairment band.
        """
        sql, params = _count_sql(academic_year, reference_date, dimensions)
        rows = self._query(sql, params)
        counts: dict[tuple[str, ...], int] = {}
        fold = [d == "region" for d in dimensions]
        for row in rows:
            cell = tuple(
                codes.DISTRICT_REGION.get(v, v) if region else v
                for v, region in zip(row[:-1], fold, strict=True)
            )
            counts[cell] = counts.get(cell, 0) + int(row[-1])
        return counts

    def ledger(self, snapshot: str) -> list[LedgerEntry]:
        """Every privacy-ledger entry of ``snapshot``, in the order they were appended."""
        rows = self._query(
            "SELECT snapshot, catalogue_version, catalogue_digest, table_id, rho_numerator,"
            " rho_denominator, released, released_at, requested_by, mechanism"
            " FROM privacy_ledger WHERE snapshot = ? ORDER BY seq",
            (snapshot,),
        )
        return [
            LedgerEntry(
                snapshot=str(r[0]),
                catalogue_version=int(r[1]),
                catalogue_digest=str(r[2]),
                table_id=str(r[3]),
                rho=Fraction(int(r[4]), int(r[5])),
                released=tuple(int(v) for v in json.loads(r[6])),
                released_at=dt.datetime.fromisoformat(str(r[7])),
                requested_by=str(r[8]),
                mechanism=_mechanism(r[9]),
            )
            for r in rows
        ]

    def append_ledger(self, entry: LedgerEntry) -> None:
        """Append an entry; AlreadyExists if its (snapshot, version, table) is there already."""
        self._not_viewing()
        with self._lock:
            try:
                self._conn.execute(
                    "INSERT INTO privacy_ledger(snapshot, catalogue_version, catalogue_digest,"
                    " table_id, rho_numerator, rho_denominator, released, released_at,"
                    " requested_by, mechanism) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        entry.snapshot,
                        entry.catalogue_version,
                        entry.catalogue_digest,
                        entry.table_id,
                        entry.rho.numerator,
                        entry.rho.denominator,
                        json.dumps(list(entry.released), separators=(",", ":")),
                        entry.released_at.isoformat(),
                        entry.requested_by,
                        entry.mechanism,
                    ),
                )
            except sqlcipher3.IntegrityError:
                raise AlreadyExists("this table is already in the privacy ledger") from None

    def participation(self, snapshot: str) -> Participation | None:
        """The participation recorded for ``snapshot``, or None."""
        rows = self._query(
            "SELECT participants, colluders FROM secagg_participation WHERE snapshot = ?",
            (snapshot,),
        )
        if not rows:
            return None
        participants, colluders = rows[0]
        return Participation(frozenset(str(p) for p in json.loads(participants)), int(colluders))

    def record_participation(self, snapshot: str, participation: Participation) -> None:
        """Record ``participation`` unless one is recorded already (never overwrites)."""
        self._not_viewing()
        with self._lock:
            self._conn.execute(
                "INSERT INTO secagg_participation(snapshot, participants, colluders,"
                " recorded_at) VALUES (?, ?, ?, ?) ON CONFLICT (snapshot) DO NOTHING",
                (
                    snapshot,
                    json.dumps(sorted(participation.participants), separators=(",", ":")),
                    participation.colluders,
                    dt.datetime.now(dt.UTC).isoformat(),
                ),
            )

    def audit_size(self) -> int:
        """How many leaves the audit log holds."""
        rows = self._query("SELECT coalesce(max(seq) + 1, 0) FROM audit_leaf")
        return int(rows[0][0])

    def audit_append(self, body: bytes, rows: Sequence[tuple[int, int, bytes]], index: int) -> int:
        """Append a leaf (index = the current size) with its new Merkle rows; its index."""
        with self.atomic():
            try:  # the insert checks the size itself: one statement, not a read and a write
                if self._conn.execute(_APPEND_LEAF, (index, body, index)).rowcount != 1:
                    raise AlreadyExists("an audit leaf would be overwritten or skipped")
                self._conn.executemany(
                    "INSERT INTO audit_hash(level, idx, hash) VALUES (?, ?, ?)", list(rows)
                )
            except sqlcipher3.IntegrityError:
                raise AlreadyExists("an audit row would be overwritten") from None
            return index

    def audit_hash(self, level: int, index: int) -> bytes:
        """A stored complete-subtree hash; KeyError if absent (a corruption signal)."""
        rows = self._query(
            "SELECT hash FROM audit_hash WHERE level = ? AND idx = ?", (level, index)
        )
        if not rows:
            raise KeyError((level, index))
        return bytes(rows[0][0])

    def audit_leaves(self, start: int, end: int) -> list[bytes]:
        """Leaf bytes with indices in [start, end)."""
        rows = self._query(
            "SELECT body FROM audit_leaf WHERE seq >= ? AND seq < ? ORDER BY seq", (start, end)
        )
        return [bytes(r[0]) for r in rows]

    def audit_put_checkpoint(self, size: int, note: str) -> None:
        """Keep a signed checkpoint (one per size; a second for one size is refused)."""
        self._not_viewing()
        with self._lock:
            try:
                self._conn.execute(
                    "INSERT INTO audit_checkpoint(size, note) VALUES (?, ?)", (size, note)
                )
            except sqlcipher3.IntegrityError:
                raise AlreadyExists("a checkpoint of this size exists") from None

    def audit_checkpoint(self, size: int | None = None) -> tuple[int, str] | None:
        """The checkpoint of ``size`` (default: the latest), or None."""
        if size is None:
            rows = self._query("SELECT size, note FROM audit_checkpoint ORDER BY size DESC LIMIT 1")
        else:
            rows = self._query("SELECT size, note FROM audit_checkpoint WHERE size = ?", (size,))
        return (int(rows[0][0]), str(rows[0][1])) if rows else None

    def insert_consent(self, consent: StoredConsent) -> None:
        """Add a consent; AlreadyExists if its id or grant hash is taken."""
        self._not_viewing()
        with self._lock:
            try:
                self._conn.execute(
                    f"INSERT INTO consent({_CONSENT_COLUMNS})"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        consent.consent_id,
                        consent.child_id,
                        consent.purpose,
                        consent.school,
                        consent.valid_from.isoformat(),
                        consent.valid_until.isoformat(),
                        consent.evidence_ref,
                        consent.granted_at.isoformat(),
                        consent.granted_by,
                        consent.grant_hash,
                        consent.sealed_guardian,
                        None if consent.withdrawn_at is None else consent.withdrawn_at.isoformat(),
                    ),
                )
            except sqlcipher3.IntegrityError:
                raise AlreadyExists("a consent with this id or grant exists") from None

    def _consents(self, where: str, params: tuple[Any, ...]) -> list[StoredConsent]:
        rows = self._query(
            f"SELECT {_CONSENT_COLUMNS} FROM consent WHERE {where} ORDER BY granted_at, consent_id",
            params,
        )
        return [_consent_of(r) for r in rows]

    def get_consent(self, consent_id: str) -> StoredConsent | None:
        """One consent by id, or None."""
        found = self._consents("consent_id = ?", (consent_id,))
        return found[0] if found else None

    def extract_source(self, grant_hash: bytes, academic_year: str) -> ExtractSource | None:
        """The consent of a grant with what its extract is made of, or None (one read)."""
        rows = self._query(_EXTRACT_SOURCE, (academic_year, grant_hash))
        if not rows:
            return None
        row = rows[0]
        consent = _consent_of(row[:_CONSENT_WIDTH])
        child_row = row[_CONSENT_WIDTH : _CONSENT_WIDTH + _CHILD_WIDTH]
        if child_row[0] is None:  # the consent's child is not held
            return ExtractSource(consent, None, None, None)
        assessment_row = row[_CONSENT_WIDTH + _CHILD_WIDTH : -1]  # the placement is last
        return ExtractSource(
            consent,
            _child_of(child_row),
            None if assessment_row[0] is None else _assessment_of(consent.child_id, assessment_row),
            row[-1],
        )

    def consents_of(self, child_id: str) -> list[StoredConsent]:
        """A child's consents, oldest first."""
        return self._consents("child_id = ?", (child_id,))

    def withdraw_consent(self, consent_id: str, at: dt.datetime) -> bool:
        """Mark a standing consent withdrawn; False if absent or withdrawn already."""
        self._not_viewing()
        with self._lock:
            cursor = self._conn.execute(
                "UPDATE consent SET withdrawn_at = ? WHERE consent_id = ? AND withdrawn_at IS NULL",
                (at.isoformat(), consent_id),
            )
            return bool(cursor.rowcount)

    def add_breakglass(self, entry: StoredBreakGlass) -> None:
        """Keep an emergency access (never changed or removed)."""
        self._not_viewing()
        with self._lock:
            self._conn.execute(
                "INSERT INTO breakglass(breakglass_id, child_id, at, actor, sealed_reason)"
                " VALUES (?, ?, ?, ?, ?)",
                (entry.breakglass_id, entry.child_id, entry.at.isoformat(), entry.actor,
                 entry.sealed_reason),
            )  # fmt: skip

    def breakglass_of(self, child_id: str) -> list[StoredBreakGlass]:
        """A child's emergency accesses, oldest first."""
        rows = self._query(
            "SELECT breakglass_id, child_id, at, actor, sealed_reason FROM breakglass"
            " WHERE child_id = ? ORDER BY at, breakglass_id",
            (child_id,),
        )
        return [
            StoredBreakGlass(str(r[0]), str(r[1]), dt.datetime.fromisoformat(str(r[2])),
                             str(r[3]), bytes(r[4]))
            for r in rows
        ]  # fmt: skip

    def catalogue_versions(self) -> dict[int, str]:
        """Every catalogue version the ledger holds (any snapshot), with its digest."""
        rows = self._query(
            "SELECT DISTINCT catalogue_version, catalogue_digest FROM privacy_ledger"
        )
        return {int(r[0]): str(r[1]) for r in rows}

    def close(self) -> None:
        """Close the reader, checkpoint and truncate the WAL, close; unusable afterwards."""
        with self._lock, self._read_lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._reader.close()
            finally:
                try:
                    self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                finally:
                    self._conn.close()


def _mechanism(value: object) -> Mechanism:
    """A stored mechanism, checked (the schema's CHECK allows only these)."""
    for mechanism in MECHANISMS:
        if value == mechanism:
            return mechanism
    raise FailedPrecondition("the privacy ledger holds an unknown mechanism")


def _already_exists(exc: Exception) -> AlreadyExists:
    if "national_id_hash" in str(exc):
        return AlreadyExists("a child with this national id already exists")
    return AlreadyExists("a child with this child_id already exists")


_CARE_SQL: Final = (
    "COALESCE((SELECT s.care_setting FROM care_setting s WHERE s.child = p.child "
    "AND s.since <= :ref ORDER BY s.since DESC LIMIT 1), :care_none)"
)
_BAND_SQL: Final = (
    "COALESCE((SELECT a.impairment_band FROM assessment a INDEXED BY assessment_banded "
    "WHERE a.child = p.child AND a.impairment_band IS NOT NULL AND a.assessment_date <= :ref "
    "ORDER BY a.assessment_date DESC, a.assessment_id DESC LIMIT 1), :band_none)"
)
_SIMPLE_SQL: Final = {
    "education_form": "p.education_form",
    "sex": "c.sex",
    "district": "c.district",
    "region": "c.district",  # folded to regions in Python after grouping
}


def _count_sql(
    academic_year: str, reference_date: dt.date, dimensions: Sequence[str]
) -> tuple[str, dict[str, str]]:
    """The GROUP BY query for a count table; SQL text only from fixed fragments."""
    params: dict[str, str] = {"year": academic_year, "ref": reference_date.isoformat()}
    columns: list[str] = []
    for dimension in dimensions:
        codes.codes(dimension)  # KeyError for an unknown dimension
        if dimension in _SIMPLE_SQL:
            columns.append(_SIMPLE_SQL[dimension])
        elif dimension == "care_setting":
            params["care_none"] = codes.CARE_NOT_RECORDED
            columns.append(_CARE_SQL)
        elif dimension == "impairment_band":
            params["band_none"] = codes.IMPAIRMENT_NOT_ASSESSED
            columns.append(_BAND_SQL)
        else:
            assert dimension == "age_band"
            columns.append(_age_band_sql(reference_date, params))
    needs_child = any(d in ("sex", "district", "region", "age_band") for d in dimensions)
    join = "JOIN child c INDEXED BY child_categories ON c.id = p.child " if needs_child else ""
    groups = ", ".join(str(i + 1) for i in range(len(columns)))
    sql = (
        f"SELECT {', '.join(columns)}, count(*) FROM placement p {join}"
        f"WHERE p.academic_year = :year GROUP BY {groups}"
    )
    return sql, params


def _age_band_sql(reference_date: dt.date, params: dict[str, str]) -> str:
    whens: list[str] = []
    for i, (code, earliest, latest) in enumerate(codes.age_band_birth_ranges(reference_date)):
        conditions: list[str] = []
        if earliest is not None:
            params[f"age{i}_from"] = earliest.isoformat()
            conditions.append(f"c.date_of_birth >= :age{i}_from")
        if latest is not None:
            params[f"age{i}_to"] = latest.isoformat()
            conditions.append(f"c.date_of_birth <= :age{i}_to")
        params[f"age{i}"] = code
        whens.append(f"WHEN {' AND '.join(conditions) or '1'} THEN :age{i}")
    return f"CASE {' '.join(whens)} ELSE :age0 END"
