"""The witness's durable state: the latest checkpoint held per log, and the evidence kept.

Why: a witness is only as good as its memory. What it cosigned must survive a crash (the
node was told), and a contradiction it caught must stay provable forever, so both live in
one SQLite file committed with ``synchronous=FULL``, and the evidence table refuses UPDATE
and DELETE by trigger. The decision of what to store is :mod:`witness.cosigning`'s; this
module only keeps it (and reads it back for ``childreg audit witness evidence``).
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from childreg.audit.merkle import HASH_SIZE
from childreg.errors import NotFound

#: What a contradiction is: two roots for one size, a smaller size, or a proof that fails.
Kind = Literal["equivocation", "rollback", "inconsistent"]
EQUIVOCATION: Final[Kind] = "equivocation"
ROLLBACK: Final[Kind] = "rollback"
INCONSISTENT: Final[Kind] = "inconsistent"

_SCHEMA: Final = (
    # Sizes are decimal TEXT: a tree size is an unsigned 64-bit number, SQLite's INTEGER signed.
    """CREATE TABLE IF NOT EXISTS checkpoints (
        origin TEXT PRIMARY KEY,
        size TEXT NOT NULL,
        root BLOB NOT NULL CHECK (length(root) = 32),
        note TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS evidence (
        seq INTEGER PRIMARY KEY,
        digest TEXT NOT NULL UNIQUE,
        origin TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('equivocation', 'rollback', 'inconsistent')),
        held_size TEXT NOT NULL,
        held_note TEXT NOT NULL,
        submitted_size TEXT NOT NULL,
        submitted_note TEXT NOT NULL,
        proof BLOB NOT NULL,
        recorded_at TEXT NOT NULL
    )""",
    *(
        f"""CREATE TRIGGER IF NOT EXISTS evidence_no_{verb} BEFORE {verb.upper()} ON evidence
            BEGIN SELECT RAISE(ABORT, 'evidence is append-only'); END"""
        for verb in ("update", "delete")
    ),
    # The node key-transition statements the witness followed (childreg/key_transition.py),
    # one per old key of a log: a rival statement from the same key is refused later.
    """CREATE TABLE IF NOT EXISTS key_transitions (
        origin TEXT NOT NULL,
        old_key BLOB NOT NULL CHECK (length(old_key) = 32),
        note TEXT NOT NULL,
        recorded_at TEXT NOT NULL,
        PRIMARY KEY (origin, old_key)
    )""",
    *(
        f"""CREATE TRIGGER IF NOT EXISTS key_transitions_no_{verb}
            BEFORE {verb.upper()} ON key_transitions
            BEGIN SELECT RAISE(ABORT, 'followed key transitions are kept'); END"""
        for verb in ("update", "delete")
    ),
)


@dataclass(frozen=True)
class Held:
    """The latest checkpoint a witness holds for one origin (the note carries its cosignature)."""

    origin: str
    size: int
    root: bytes
    note: str


@dataclass(frozen=True)
class Evidence:
    """Two signed checkpoints of one log that contradict each other, kept for auditors.

    ``held_note`` is what the witness held, ``submitted_note`` what the node then sent;
    both carry the node's signature, so anyone with its key can check them. For
    ``inconsistent``, ``proof`` is the consistency proof that did not verify.
    """

    seq: int
    origin: str
    kind: Kind
    held_size: int
    held_note: str
    submitted_size: int
    submitted_note: str
    proof: tuple[bytes, ...]
    recorded_at: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping (proof hashes in hex)."""
        return {
            "seq": self.seq,
            "origin": self.origin,
            "kind": self.kind,
            "held_size": self.held_size,
            "held_note": self.held_note,
            "submitted_size": self.submitted_size,
            "submitted_note": self.submitted_note,
            "proof": [h.hex() for h in self.proof],
            "recorded_at": self.recorded_at,
        }


class WitnessStore:
    """The witness's durable state: one SQLite file (WAL, ``synchronous=FULL``).

    ``checkpoints`` holds the latest note per origin; ``evidence`` is append-only (triggers
    abort UPDATE and DELETE) and keeps each distinct contradiction once.
    """

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        if readonly:
            if not path.is_file():
                raise NotFound(f"no witness state at {path}")
            uri = path.resolve().as_uri() + "?mode=ro"
            self._conn = sqlite3.connect(
                uri, uri=True, isolation_level=None, check_same_thread=False
            )
        else:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._lock = threading.RLock()
        if not readonly:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            for statement in _SCHEMA:
                self._conn.execute(statement)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Hold the lock and one write transaction; committed on success, else rolled back."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def latest(self, origin: str) -> Held | None:
        """The checkpoint held for ``origin``, if any."""
        with self._lock:
            row = self._conn.execute(
                "SELECT size, root, note FROM checkpoints WHERE origin = ?", (origin,)
            ).fetchone()
        return None if row is None else Held(origin, int(row[0]), bytes(row[1]), str(row[2]))

    def put_latest(self, held: Held, at: str) -> None:
        """Replace the checkpoint held for its origin (call inside :meth:`transaction`)."""
        with self._lock:
            self._conn.execute(
                "INSERT INTO checkpoints (origin, size, root, note, updated_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (origin) DO UPDATE SET"
                " size = excluded.size, root = excluded.root, note = excluded.note,"
                " updated_at = excluded.updated_at",
                (held.origin, str(held.size), held.root, held.note, at),
            )

    def add_evidence(
        self, kind: Kind, held: Held, submitted: Held, proof: Sequence[bytes], at: str
    ) -> tuple[int, bool]:
        """Keep a contradiction; returns its sequence number and whether it is new."""
        blob = b"".join(proof)
        digest = hashlib.sha256(
            "\x00".join((kind, held.note, submitted.note)).encode("utf-8") + b"\x00" + blob
        ).hexdigest()
        with self._lock:
            cursor = self._conn.execute(
                "INSERT OR IGNORE INTO evidence (digest, origin, kind, held_size, held_note,"
                " submitted_size, submitted_note, proof, recorded_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    digest,
                    held.origin,
                    kind,
                    str(held.size),
                    held.note,
                    str(submitted.size),
                    submitted.note,
                    blob,
                    at,
                ),
            )
            new = cursor.rowcount == 1
            row = self._conn.execute(
                "SELECT seq FROM evidence WHERE digest = ?", (digest,)
            ).fetchone()
        return int(row[0]), new

    def evidence(self, origin: str | None = None) -> list[Evidence]:
        """Every piece of evidence kept (of one origin if given), oldest first."""
        sql = (
            "SELECT seq, origin, kind, held_size, held_note, submitted_size, submitted_note,"
            " proof, recorded_at FROM evidence"
        )
        params: tuple[str, ...] = ()
        if origin is not None:
            sql, params = sql + " WHERE origin = ?", (origin,)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY seq", params).fetchall()
        out: list[Evidence] = []
        for seq, org, kind, hsize, hnote, ssize, snote, proof, at in rows:
            blob = bytes(proof)
            hashes = tuple(blob[i : i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE))
            out.append(
                Evidence(int(seq), org, kind, int(hsize), hnote, int(ssize), snote, hashes, at)
            )
        return out

    def transitions(self, origin: str) -> list[str]:
        """The key-transition statements followed for ``origin``, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT note FROM key_transitions WHERE origin = ? ORDER BY rowid", (origin,)
            ).fetchall()
        return [str(r[0]) for r in rows]

    def add_transitions(self, origin: str, followed: Sequence[tuple[bytes, str]], at: str) -> None:
        """Remember each (old key, statement) followed for ``origin`` (call inside
        :meth:`transaction`; a key's first statement stays)."""
        with self._lock:
            self._conn.executemany(
                "INSERT OR IGNORE INTO key_transitions (origin, old_key, note, recorded_at)"
                " VALUES (?, ?, ?, ?)",
                [(origin, old, note, at) for old, note in followed],
            )

    def origins(self) -> list[str]:
        """Every origin a checkpoint is held for."""
        with self._lock:
            rows = self._conn.execute("SELECT origin FROM checkpoints ORDER BY origin").fetchall()
        return [str(r[0]) for r in rows]

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._conn.close()
