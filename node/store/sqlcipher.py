"""The node's real record store: one SQLCipher 4 file keyed with a random raw key.

A stolen disk or backup must yield nothing: pages are encrypted (SQLCipher, raw 256-bit
key, never a passphrase), identity and sensitive fields arrive already sealed by the
domain layer, ``secure_delete`` overwrites freed pages, temporary tables stay in memory
and ``close()`` checkpoints the WAL away. An SQL authorizer stops any code holding the
connection from attaching a plaintext database, exporting, or touching key pragmas.

One connection serves every gRPC worker thread, guarded by a re-entrant lock; an
``atomic()`` block holds the lock and one ``BEGIN IMMEDIATE`` transaction throughout.
Count tables are computed in SQL from small covering indexes (see migrations.py).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import struct
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import sqlcipher3

from childreg import codes
from childreg.errors import AlreadyExists, FailedPrecondition, KeyProblem, NotFound
from node.store import migrations
from node.store.base import (
    RecordStore,
    StoredAssessment,
    StoredCareSetting,
    StoredChild,
    StoredPlacement,
)

_HEX64: Final = re.compile(r"[0-9a-fA-F]{64}")
#: Settings a SQLCipher 4 database must have (beyond ``cipher_version`` 4.x).
_EXPECTED_CIPHER: Final = {
    "cipher_hmac_algorithm": "HMAC_SHA512",
    "cipher_plaintext_header_size": "0",
}
_KEY_PRAGMAS: Final = frozenset({"key", "rekey", "hexkey", "hexrekey", "textkey", "textrekey"})
_DENIED_FUNCTIONS: Final = frozenset({"sqlcipher_export", "load_extension"})
_PAGE: Final = 1000  # child ids fetched per round trip by child_ids()

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
_ADD_ASSESSMENT: Final = (
    "INSERT INTO assessment(child, assessment_id, assessment_date, commission, "
    "impairment_band, recommended_form, next_review, sealed_fields) "
    "SELECT c.id, COALESCE((SELECT max(a.assessment_id) FROM assessment a "
    "WHERE a.child = c.id), 0) + 1, ?, ?, ?, ?, ?, ? FROM child c WHERE c.child_id = ? "
    "RETURNING assessment_id"
)


def _authorize(action: int, arg1: str | None, arg2: str | None, *_: object) -> int:
    """Deny what would let a connection holder copy, re-key or unlock the database."""
    if action in (sqlcipher3.SQLITE_ATTACH, sqlcipher3.SQLITE_DETACH):
        return int(sqlcipher3.SQLITE_DENY)
    if action == sqlcipher3.SQLITE_PRAGMA:
        name = (arg1 or "").lower()
        if name in _KEY_PRAGMAS or name.startswith("cipher"):
            return int(sqlcipher3.SQLITE_DENY)
    if action == sqlcipher3.SQLITE_FUNCTION and (arg2 or "").lower() in _DENIED_FUNCTIONS:
        return int(sqlcipher3.SQLITE_DENY)
    return int(sqlcipher3.SQLITE_OK)


def _pack(fields: dict[str, bytes]) -> bytes:
    """Sealed assessment fields as one blob: (u16 name length, name, u32 length, value)*."""
    out = bytearray()
    for name in sorted(fields):
        raw = name.encode("utf-8")
        out += struct.pack(">H", len(raw)) + raw + struct.pack(">I", len(fields[name]))
        out += fields[name]
    return bytes(out)


def _unpack(blob: bytes) -> dict[str, bytes]:
    fields: dict[str, bytes] = {}
    at = 0
    while at < len(blob):
        (n,) = struct.unpack_from(">H", blob, at)
        name = blob[at + 2 : at + 2 + n].decode("utf-8")
        (size,) = struct.unpack_from(">I", blob, at + 2 + n)
        start = at + 6 + n
        fields[name] = blob[start : start + size]
        at = start + size
    return fields


def _date(value: str | None) -> dt.date | None:
    return None if value is None else dt.date.fromisoformat(value)


class SqlCipherStore(RecordStore):
    """Records in one SQLCipher 4 file; use :meth:`open` to get one."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._lock = threading.RLock()
        self._depth = 0
        self._closed = False

    @classmethod
    def open(cls, path: Path, key_hex: str, *, create: bool = False) -> SqlCipherStore:
        """Open (or with ``create`` make) the database at ``path`` with a 64-hex-digit key."""
        path = Path(path)
        if not isinstance(key_hex, str) or not _HEX64.fullmatch(key_hex):
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
        conn = sqlcipher3.connect(str(path), check_same_thread=False, isolation_level=None)
        try:
            cls._key(conn, path, key_hex)
            for pragma in (
                "synchronous = FULL",
                "secure_delete = ON",
                "temp_store = MEMORY",
                "foreign_keys = ON",
                "cache_size = -65536",
            ):
                conn.execute(f"PRAGMA {pragma}")
            if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
                raise FailedPrecondition(f"cannot switch {path} to WAL journal mode")
            migrations.apply(conn)
            conn.set_authorizer(_authorize)
        except BaseException:
            conn.close()
            if created:
                for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                    leftover.unlink(missing_ok=True)
            raise
        return cls(conn)

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

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """One ``BEGIN IMMEDIATE`` transaction; nested blocks join the outermost one."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            finally:
                self._depth = 0

    def insert_child(self, child: StoredChild) -> None:
        """Add a new child; AlreadyExists if the id or national-id hash is taken."""
        with self._lock:  # one statement: atomic by itself
            try:
                self._conn.execute(
                    _INSERT_CHILD,
                    (
                        child.child_id,
                        child.key_version,
                        child.wrapped_key,
                        child.national_id_hash,
                        child.date_of_birth.isoformat(),
                        child.sex,
                        child.district,
                        child.sealed_identity,
                    ),
                )
            except sqlcipher3.IntegrityError as exc:
                raise _already_exists(exc) from None

    def replace_child(self, child: StoredChild) -> None:
        """Replace an existing child's row; NotFound if absent; AlreadyExists on a hash clash."""
        with self._lock:  # one statement: atomic by itself
            try:
                cursor = self._conn.execute(
                    _UPDATE_CHILD,
                    (
                        child.key_version,
                        child.wrapped_key,
                        child.national_id_hash,
                        child.date_of_birth.isoformat(),
                        child.sex,
                        child.district,
                        child.sealed_identity,
                        child.child_id,
                    ),
                )
            except sqlcipher3.IntegrityError as exc:
                raise _already_exists(exc) from None
            if cursor.rowcount == 0:
                raise NotFound(f"no child with child_id {child.child_id}")

    def get_child(self, child_id: str) -> StoredChild | None:
        """The child's row, or None."""
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_CHILD_COLUMNS} FROM child WHERE child_id = ?", (child_id,)
            ).fetchone()
        if row is None:
            return None
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

    def find_by_national_id_hash(self, digest: bytes) -> str | None:
        """The child id holding this national-id hash, or None."""
        with self._lock:
            row = self._conn.execute(
                "SELECT child_id FROM child WHERE national_id_hash = ?", (digest,)
            ).fetchone()
        return None if row is None else str(row[0])

    def upsert_placement(self, placement: StoredPlacement) -> None:
        """Set the child's placement for that academic year."""
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
        with self._lock:  # one statement: atomic by itself
            cursor = self._conn.execute(
                _PUT_CARE, (care.since.isoformat(), care.care_setting, care.child_id)
            )
            if cursor.rowcount == 0:
                raise NotFound(f"no child with child_id {care.child_id}")

    def add_assessment(self, assessment: StoredAssessment) -> int:
        """Add an assessment and return its new id (1, 2, … per child)."""
        a = assessment
        with self._lock:  # one statement: atomic by itself
            row = self._conn.execute(
                _ADD_ASSESSMENT,
                (
                    a.assessment_date.isoformat(),
                    a.commission,
                    a.impairment_band,
                    a.recommended_form,
                    None if a.next_review is None else a.next_review.isoformat(),
                    _pack(a.sealed_fields),
                    a.child_id,
                ),
            ).fetchone()
            if row is None:
                raise NotFound(f"no child with child_id {a.child_id}")
            return int(row[0])

    def placements(self, child_id: str) -> list[StoredPlacement]:
        """The child's placements, by academic year."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT p.academic_year, p.education_form, p.institution FROM placement p "
                "JOIN child c ON c.id = p.child WHERE c.child_id = ? ORDER BY p.academic_year",
                (child_id,),
            ).fetchall()
        return [StoredPlacement(child_id, year, form, inst) for year, form, inst in rows]

    def care_settings(self, child_id: str) -> list[StoredCareSetting]:
        """The child's care settings, by date."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT s.care_setting, s.since FROM care_setting s "
                "JOIN child c ON c.id = s.child WHERE c.child_id = ? ORDER BY s.since",
                (child_id,),
            ).fetchall()
        return [
            StoredCareSetting(child_id, setting, dt.date.fromisoformat(since))
            for setting, since in rows
        ]

    def assessments(self, child_id: str) -> list[StoredAssessment]:
        """The child's assessments, by id."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT a.assessment_id, a.assessment_date, a.commission, a.impairment_band, "
                "a.recommended_form, a.next_review, a.sealed_fields FROM assessment a "
                "JOIN child c ON c.id = a.child WHERE c.child_id = ? ORDER BY a.assessment_id",
                (child_id,),
            ).fetchall()
        return [
            StoredAssessment(
                child_id=child_id,
                assessment_id=int(aid),
                assessment_date=dt.date.fromisoformat(date),
                commission=commission,
                impairment_band=band,
                recommended_form=form,
                next_review=_date(review),
                sealed_fields=_unpack(sealed),
            )
            for aid, date, commission, band, form, review, sealed in rows
        ]

    def child_ids(self) -> Iterator[str]:
        """Every child id, sorted (fetched a page at a time)."""
        after = ""
        while True:
            with self._lock:
                page = self._conn.execute(
                    "SELECT child_id FROM child WHERE child_id > ? ORDER BY child_id LIMIT ?",
                    (after, _PAGE),
                ).fetchall()
            for (child_id,) in page:
                yield str(child_id)
            if len(page) < _PAGE:
                return
            after = page[-1][0]

    def child_count(self) -> int:
        """How many children are stored."""
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM child").fetchone()[0])

    def count_table(
        self, academic_year: str, reference_date: dt.date, dimensions: Sequence[str]
    ) -> dict[tuple[str, ...], int]:
        """Sparse counts of children placed in ``academic_year``, by ``dimensions``.

        Regions are folded from districts after grouping (a handful of cells), so the
        per-child work in SQL is the placement scan, one covering-index lookup per child
        and, when asked for, one index seek each for care setting and impairment band.
        """
        sql, params = _count_sql(academic_year, reference_date, dimensions)
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        counts: dict[tuple[str, ...], int] = {}
        fold = [d == "region" for d in dimensions]
        for row in rows:
            cell = tuple(
                codes.DISTRICT_REGION.get(v, v) if region else v
                for v, region in zip(row[:-1], fold, strict=True)
            )
            counts[cell] = counts.get(cell, 0) + int(row[-1])
        return counts

    def close(self) -> None:
        """Checkpoint and truncate the WAL, then close; the store is unusable afterwards."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                self._conn.close()


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
