"""The change journal: every audit leaf and privacy-ledger write, fsynced off the node's disk.

Why: a backup is a moment; the node goes on after it. A restore that put back only the
backup would shorten the audit log the witnesses have cosigned (they would call the next
checkpoint a rewrite), forget privacy-budget charges and bring erased children back. So,
when ``[backup] journal_dir`` is set (a directory on another disk or host), every store
write that the audit trail or the privacy ledger depends on is appended here and fsynced
*inside* the write's transaction, before it commits and so before the caller hears of it:

- each audit leaf (its exact bytes and index; leaves hold no personal data), so a restore
  re-appends the leaves after the backup's log size and the log is byte-identical to the
  one the witnesses cosigned (node/restore.py);
- each privacy-ledger entry and each secure-aggregation participant set, replayed on
  restore (a ledger that forgets a release would spend the budget twice);
- each signing key's key-transition statement (node/key_rotation.py), kept again on
  restore, so a node whose key was rotated after the backup signs with the key the
  witnesses and schools followed, and announces it by the very statement they hold.

The journal's key comes from the first generation of the audit signing seed
(:func:`journal_seed`), which a rotation does not change.

One JSON line per record; each carries a running number ``n`` and a keyed BLAKE2b MAC over
the previous record's MAC and its own content (the key is derived from the node's
keyring), so a record edited, inserted, dropped or moved inside the file is detected; a
torn last line (a crash mid-write, never acknowledged) is ignored and cut off by the next
writer. A leaf record for an index the journal already holds means the earlier one's
transaction never committed (it rolled back, or the process died before COMMIT): readers
keep the later one and drop everything after the earlier (:func:`read_journal`). Appends
take an ``flock`` on the file, so an operator's command and the serving node never
interleave lines; their order is the database's, since both append inside the database's
write transaction.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import fcntl
import hashlib
import hmac
import json
import os
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

import structlog

from childreg.errors import FailedPrecondition
from childreg.secagg.roster import Participation
from node.crypto.keys import Keyring
from node.store.base import RecordStore
from node.store.types import MECHANISMS, LedgerEntry, Mechanism

__all__ = [
    "ChangeJournal",
    "JournalContents",
    "JournalDamaged",
    "catch_up",
    "journal_key",
    "journal_path",
    "journal_seed",
    "read_journal",
]

log = structlog.get_logger("childreg.node.journal")

_ZERO: Final = bytes(32)
_TAIL_BLOCK: Final = 64 * 1024


class JournalDamaged(FailedPrecondition):
    """The journal was edited, truncated inside, or belongs to another node."""


def journal_seed(keyring: Keyring) -> bytes:
    """What the journal's key comes from: the first generation of the audit signing seed,
    which no signing-key rotation changes (node/key_rotation.py), so a backup made before a
    rotation opens the journal written after it."""
    return keyring.audit_signing_seed(1)


def journal_key(audit_signing_seed: bytes) -> bytes:
    """The journal's MAC key, derived from the node's keyring (never stored)."""
    return hashlib.blake2b(audit_signing_seed, digest_size=32, person=b"childreg-journal").digest()


def journal_path(directory: Path, department: str) -> Path:
    """The journal file of ``department`` inside the operator's journal directory."""
    return Path(directory) / f"{department}.journal"


def _mac(key: bytes, prev: bytes, content: bytes) -> bytes:
    return hashlib.blake2b(prev + content, digest_size=32, key=key).digest()


def _canonical(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":")).encode("utf-8")


def ledger_to_json(entry: LedgerEntry) -> dict[str, Any]:
    """A ledger entry as JSON values (ρ as an exact fraction)."""
    return {
        "snapshot": entry.snapshot,
        "catalogue_version": entry.catalogue_version,
        "catalogue_digest": entry.catalogue_digest,
        "table_id": entry.table_id,
        "rho": f"{entry.rho.numerator}/{entry.rho.denominator}",
        "released": list(entry.released),
        "released_at": entry.released_at.isoformat(),
        "requested_by": entry.requested_by,
        "mechanism": entry.mechanism,
    }


def ledger_from_json(data: dict[str, Any]) -> LedgerEntry:
    """The ledger entry of :func:`ledger_to_json`."""
    mechanism: Mechanism = next(m for m in MECHANISMS if m == data["mechanism"])
    return LedgerEntry(
        snapshot=str(data["snapshot"]),
        catalogue_version=int(data["catalogue_version"]),
        catalogue_digest=str(data["catalogue_digest"]),
        table_id=str(data["table_id"]),
        rho=Fraction(str(data["rho"])),
        released=tuple(int(v) for v in data["released"]),
        released_at=dt.datetime.fromisoformat(str(data["released_at"])),
        requested_by=str(data["requested_by"]),
        mechanism=mechanism,
    )


@dataclass
class JournalContents:
    """What a journal holds, as a restore needs it.

    ``leaves[i]`` is the leaf of index ``first_seq + i`` (leaves of transactions that never
    committed are dropped: a later record for the same index replaces them).
    """

    first_seq: int = 0
    leaves: list[bytes] = field(default_factory=list)
    ledger: list[LedgerEntry] = field(default_factory=list)
    participation: list[tuple[str, Participation]] = field(default_factory=list)
    transitions: list[tuple[str, str]] = field(default_factory=list)
    torn_tail: bool = False

    @property
    def next_seq(self) -> int:
        """The index after the journal's last leaf (``first_seq`` when it holds none)."""
        return self.first_seq + len(self.leaves)

    def leaf(self, seq: int) -> bytes | None:
        """The journal's leaf of index ``seq``, if it holds it."""
        i = seq - self.first_seq
        return self.leaves[i] if 0 <= i < len(self.leaves) else None


def _parse(line: bytes, key: bytes, prev: bytes, n: int, path: Path) -> dict[str, Any]:
    try:
        record: dict[str, Any] = json.loads(line)
        mac = bytes.fromhex(record.pop("mac"))
    except (ValueError, KeyError, AttributeError, TypeError):
        raise JournalDamaged(f"the change journal {path} is damaged at record {n}") from None
    if not hmac.compare_digest(mac, _mac(key, prev, _canonical(record))):
        raise JournalDamaged(
            f"the change journal {path} does not verify at record {n}: it was changed, "
            "records were removed or moved, or it is another node's journal"
        )
    if record.get("n") != n:
        raise JournalDamaged(f"the change journal {path} is out of order at record {n}")
    record["mac"] = mac
    return record


def read_journal(path: Path, key: bytes) -> JournalContents:
    """Every record of the journal at ``path``, verified (JournalDamaged if not)."""
    path = Path(path)
    contents = JournalContents()
    if not path.exists():
        return contents
    data = path.read_bytes()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    elif lines:  # no newline at the end: a torn write, never acknowledged
        lines.pop()
        contents.torn_tail = True
    prev, seen_leaf = _ZERO, False
    for n, line in enumerate(lines):
        record = _parse(line, key, prev, n, path)
        prev = record["mac"]
        kind = record.get("kind")
        if kind == "leaf":
            seq, body = int(record["seq"]), base64.b64decode(record["body"])
            if not seen_leaf:
                contents.first_seq, seen_leaf = seq, True
            offset = seq - contents.first_seq
            if offset < 0 or offset > len(contents.leaves):
                raise JournalDamaged(f"the change journal {path} skips leaves at record {n}")
            del contents.leaves[offset:]  # a later record for an index replaces the rest
            contents.leaves.append(body)
        elif kind == "ledger":
            contents.ledger.append(ledger_from_json(record["entry"]))
        elif kind == "participation":
            contents.participation.append(
                (
                    str(record["snapshot"]),
                    Participation(
                        frozenset(str(p) for p in record["participants"]),
                        int(record["colluders"]),
                    ),
                )
            )
        elif kind == "key_transition":
            contents.transitions.append((str(record["which"]), str(record["note"])))
    return contents


@dataclass
class _Tail:
    size: int = 0  # bytes of complete records
    n: int = 0  # the next record's number
    mac: bytes = _ZERO
    next_seq: int | None = None  # after the last leaf record (None: no leaf yet)
    last_leaf: bytes | None = None


def _read_tail(fd: int) -> _Tail:
    """The journal's tail (last record, last leaf), reading backwards from the end."""
    end = os.fstat(fd).st_size
    tail = _Tail()
    window = _TAIL_BLOCK
    while True:
        start = max(0, end - window)
        chunk = os.pread(fd, end - start, start)
        cut = chunk.rfind(b"\n")
        if cut < 0 and start > 0:
            window *= 2
            continue
        complete = chunk[: cut + 1] if cut >= 0 else b""
        tail.size = start + len(complete)
        lines = complete.split(b"\n")[:-1]
        if start > 0:
            lines = lines[1:]  # the first may be cut
        records = [json.loads(line) for line in lines]
        if not records and tail.size > 0 and start > 0:
            window *= 2
            continue
        if records:
            last = records[-1]
            tail.n, tail.mac = int(last["n"]) + 1, bytes.fromhex(last["mac"])
            leaf = next((r for r in reversed(records) if r.get("kind") == "leaf"), None)
            if leaf is None and start > 0:
                window *= 2
                continue
            if leaf is not None:
                tail.next_seq = int(leaf["seq"]) + 1
                tail.last_leaf = base64.b64decode(leaf["body"])
        return tail


class ChangeJournal:
    """Appends records to one node's journal file, each synced before it returns."""

    def __init__(self, path: Path, key: bytes) -> None:
        self.path = Path(path)
        self._key = key
        if not self.path.parent.is_dir():
            raise FailedPrecondition(
                f"the change journal's directory {self.path.parent} does not exist"
                "; "
                "create it (on another disk or host, mounted before the node starts) "
                "or unset [backup] journal_dir",
            )
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self._lock = threading.Lock()
        with self._locked():
            self._tail = _read_tail(self._fd)

    @classmethod
    def open(cls, directory: Path, department: str, audit_signing_seed: bytes) -> ChangeJournal:
        """The journal of ``department`` in ``directory`` (made if absent)."""
        return cls(journal_path(directory, department), journal_key(audit_signing_seed))

    @contextlib.contextmanager
    def _locked(self) -> Any:
        with self._lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    @property
    def next_seq(self) -> int | None:
        """The index after the last leaf journaled (None if the journal holds no leaf)."""
        return self._tail.next_seq

    @property
    def last_leaf(self) -> bytes | None:
        """The last leaf journaled."""
        return self._tail.last_leaf

    def _append(self, record: dict[str, Any]) -> None:
        with self._locked():
            size = os.fstat(self._fd).st_size
            if size != self._tail.size:  # another process appended, or a torn line
                self._tail = _read_tail(self._fd)
                if size != self._tail.size:
                    os.ftruncate(self._fd, self._tail.size)  # cut a torn, unacknowledged line
            record = {"n": self._tail.n, **record}
            mac = _mac(self._key, self._tail.mac, _canonical(record))
            line = _canonical({**record, "mac": mac.hex()}) + b"\n"
            try:
                os.write(self._fd, line)
                os.fsync(self._fd)
            except OSError as exc:
                raise FailedPrecondition(
                    f"the change journal {self.path} cannot be written ({exc.strerror}); "
                    "the change was not made"
                    "; "
                    "check the journal's disk or mount; changes resume once it is back",
                ) from None
            self._tail.size += len(line)
            self._tail.n += 1
            self._tail.mac = mac
            if record["kind"] == "leaf":
                self._tail.next_seq = int(record["seq"]) + 1
                self._tail.last_leaf = base64.b64decode(record["body"])

    def leaf(self, seq: int, body: bytes) -> None:
        """Journal the leaf of index ``seq``."""
        self._append({"kind": "leaf", "seq": seq, "body": base64.b64encode(body).decode()})

    def ledger(self, entry: LedgerEntry) -> None:
        """Journal a privacy-ledger entry."""
        self._append({"kind": "ledger", "entry": ledger_to_json(entry)})

    def participation(self, snapshot: str, participation: Participation) -> None:
        """Journal a secure-aggregation participant set."""
        self._append(
            {
                "kind": "participation",
                "snapshot": snapshot,
                "participants": sorted(participation.participants),
                "colluders": participation.colluders,
            }
        )

    def key_transition(self, which: str, note: str) -> None:
        """Journal a signed key-transition statement (node/key_rotation.py)."""
        self._append({"kind": "key_transition", "which": which, "note": note})

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def catch_up(journal: ChangeJournal, store: RecordStore) -> int:
    """Bring ``journal`` level with ``store`` before a node starts writing (the caller holds
    the data directory's lock, so nothing else writes); how many leaves it copied.

    An empty journal is seeded with the whole log, ledger, participation and key
    transitions; one behind the log (the journal was unset for a while) gets the missing
    leaves and, again, every ledger entry, participant set and key-transition statement
    (duplicates are harmless: a restore skips them). A
    journal one leaf ahead holds a leaf whose transaction never committed (the next
    append replaces it). FailedPrecondition when the journal is further ahead — the data
    directory is older than the journal (a copy put back by hand) — or its last leaf is
    not the store's (another node's journal): starting would fork the witnessed log.
    """
    size = store.audit_size()  # read before the journal: a writer journals, then commits
    ahead = journal.next_seq
    if ahead is not None and ahead > size + 1:
        raise FailedPrecondition(
            f"the change journal {journal.path} holds {ahead - size} leaves this node's "
            "database does not: the data directory is older than the journal (put back by "
            "hand?); starting it would make the witnesses record a rewrite"
            "; "
            "move the data directory aside and run `childreg node restore --from "
            "BACKUP`, which replays the journal",
        )
    if (
        ahead is not None
        and 0 < ahead <= size
        and store.audit_leaves(ahead - 1, ahead)[0] != journal.last_leaf
    ):
        raise JournalDamaged(
            f"the change journal {journal.path} is not this node's log (its leaf "
            f"{ahead - 1} differs)"
            "; "
            "point [backup] journal_dir at this node's own journal",
        )
    start = 0 if ahead is None else ahead
    if start >= size and ahead is not None:
        return 0
    for page in range(start, size, 1000):
        for offset, body in enumerate(store.audit_leaves(page, min(page + 1000, size))):
            journal.leaf(page + offset, body)
    for entry in store.ledger_entries():
        journal.ledger(entry)
    for snapshot, participation in store.participations():
        journal.participation(snapshot, participation)
    for which, note in store.key_transitions():
        journal.key_transition(which, note)
    log.info("node.journal.caught_up", leaves=size - start)
    return size - start
