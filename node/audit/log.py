"""A node's tamper-evident access log: append a leaf per access, sign checkpoints, prove.

The leaves, the Merkle subtree hashes and the signed checkpoints live in the node's own
encrypted database, so a leaf commits in the same transaction as the change it records,
and a disclosure's leaf commits before any byte is returned (write-ahead): if the
append fails, the caller gets an error and no data. An append writes O(log n) rows and a
proof reads O(log n) rows (childreg/audit/merkle.py). Checkpoints are C2SP
tlog-checkpoints signed with the node's Ed25519 key, which is derived from its keyring
(so it needs no new secret file) and named after the log's origin.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable

import structlog
from nacl.signing import SigningKey

from childreg.audit import merkle
from childreg.audit.checkpoint import Checkpoint, childreg_origin, sign_checkpoint
from childreg.audit.leaf import MAX_LEAF_BYTES, AuditEvent, utc_now
from childreg.audit.note import NoteSigner, NoteVerifier, note_text
from childreg.errors import InvalidInput, Violation
from childreg.key_transition import KeyTransition
from node.store.base import RecordStore

log = structlog.get_logger("childreg.node.audit")

#: At most this many leaves per entries call.
MAX_ENTRIES = 1000


def node_signer(signing_seed: bytes, *, federation: str, department: str) -> NoteSigner:
    """The node's checkpoint signer, named after its log's origin."""
    return NoteSigner(childreg_origin(federation, department), SigningKey(signing_seed))


class AuditLog:
    """The node's log over its store; thread-safe through the store's transactions."""

    def __init__(
        self,
        store: RecordStore,
        signing_seed: bytes,
        *,
        federation: str,
        department: str,
        clock: Callable[[], str] = utc_now,
    ) -> None:
        self._store = store
        self.origin = childreg_origin(federation, department)
        self.department = department
        self._signer = node_signer(signing_seed, federation=federation, department=department)
        # Request digests are keyed: a plain hash of a short request (a child id) could be
        # reversed by trying every id. The key is derived from the node's secret seed.
        self._digest_key = hashlib.blake2b(
            signing_seed, digest_size=32, person=b"childreg-reqdig"
        ).digest()
        self._clock = clock
        self._lock = threading.Lock()  # one checkpoint signing at a time

    @property
    def verifier_key(self) -> str:
        """The public verifier key string auditors and witnesses pin."""
        return self._signer.verifier().key_string()

    @property
    def size(self) -> int:
        """How many leaves the log holds."""
        return self._store.audit_size()

    def append(
        self,
        *,
        actor: str,
        action: str,
        subject: bytes | None = None,
        request: bytes | None = None,
        outcome: str = "OK",
        purpose: str = "",
        grant: str = "",
    ) -> int:
        """Append one leaf and return its index (inside the caller's transaction, if any).

        ``subject`` is the child's keyed pseudonym (never an id), ``request`` the request's
        bytes (only a keyed BLAKE2b-256 digest is kept, so it cannot be reversed by trying
        candidate requests).
        """
        with self._store.atomic():
            seq = self._store.audit_size()
            event = AuditEvent(
                node=self.department,
                seq=seq,
                time=self._clock(),
                actor=actor,
                action=action,
                purpose=purpose,
                grant=grant,
                subject=subject.hex() if subject else "",
                request=self.digest(request) if request is not None else "",
                outcome=outcome,
            )
            body = event.to_bytes()
            if len(body) > MAX_LEAF_BYTES:  # never write a leaf the verifier would refuse
                raise InvalidInput("audit leaf too large", [Violation("leaf", "too large")])
            rows = merkle.append_hashes(seq, merkle.leaf_hash(body), self._store.audit_hash)
            # The size read above, in the same transaction: the store need not read it again.
            index = self._store.audit_append(body, rows, seq)
        return index

    def digest(self, request: bytes) -> str:
        """The keyed digest a leaf keeps of a request (hex)."""
        return hashlib.blake2b(request, digest_size=32, key=self._digest_key).hexdigest()

    def root(self, size: int) -> bytes:
        """The RFC 9162 root of the first ``size`` leaves."""
        return merkle.root(size, self._store.audit_hash)

    def checkpoint(self) -> str:
        """The signed checkpoint of the current size (made and kept if new)."""
        with self._lock:
            size = self._store.audit_size()
            held = self._store.audit_checkpoint(size)
            if held is not None:
                return held[1]
            note = sign_checkpoint(Checkpoint(self.origin, size, self.root(size)), self._signer)
            self._store.audit_put_checkpoint(size, note)
            log.info("audit.checkpoint", size=size)
            return note

    def key_transitions(self) -> list[str]:
        """The statements that announced each new log key, oldest first
        (childreg/key_transition.py; node/key_rotation.py makes them)."""
        return [note for which, note in self._store.key_transitions() if which == "audit"]

    def verifiers(self) -> list[NoteVerifier]:
        """Every key this log was signed with: the one in use and each earlier one named
        by a transition statement (to check checkpoints signed before a rotation)."""
        known = [self._signer.verifier()]
        for note in self.key_transitions():
            old = KeyTransition.parse(note_text(note)).old_verifier()
            if old not in known:
                known.append(old)
        return known

    def latest_checkpoint(self) -> str | None:
        """The newest checkpoint already signed, if any."""
        held = self._store.audit_checkpoint()
        return None if held is None else held[1]

    def entries(self, start: int, end: int) -> list[bytes]:
        """Leaves [start, end) of the log as it is now (at most MAX_ENTRIES)."""
        size = self._store.audit_size()
        if not 0 <= start <= end <= size or end - start > MAX_ENTRIES:
            raise InvalidInput(
                f"entries must lie within the log's {size} leaves, at most {MAX_ENTRIES} a call",
                [Violation("end", "out of range")],
            )
        return self._store.audit_leaves(start, end)

    def leaves(self) -> list[bytes]:
        """Every leaf, in order (read in pages)."""
        size = self._store.audit_size()
        return [
            body
            for start in range(0, size, MAX_ENTRIES)
            for body in self._store.audit_leaves(start, min(start + MAX_ENTRIES, size))
        ]

    def events_about(self, subject: bytes, leaves: list[bytes] | None = None) -> list[AuditEvent]:
        """Every leaf naming this pseudonym, oldest first (a guardian's access report);
        from ``leaves`` when the caller has read them already."""
        wanted = subject.hex()
        events = (
            AuditEvent.from_bytes(body) for body in (self.leaves() if leaves is None else leaves)
        )
        return [e for e in events if e.subject == wanted]

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 9162 inclusion proof of leaf ``index`` in the tree of ``size`` leaves."""
        self._check_size(size)
        if not 0 <= index < size:
            raise InvalidInput("index outside the tree", [Violation("index", "out of range")])
        return merkle.inclusion_proof(index, size, self._store.audit_hash)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """RFC 9162 consistency proof from ``old_size`` to ``new_size`` leaves."""
        self._check_size(new_size)
        if not 0 <= old_size <= new_size:
            raise InvalidInput("old_size after new_size", [Violation("old_size", "out of range")])
        return merkle.consistency_proof(old_size, new_size, self._store.audit_hash)

    def _check_size(self, size: int) -> None:
        if not 0 <= size <= self._store.audit_size():
            raise InvalidInput(
                "tree_size larger than the log", [Violation("tree_size", "out of range")]
            )
