"""The audit part of the in-memory store: leaves in a list, Merkle rows and checkpoints by key."""

from __future__ import annotations

from collections.abc import Sequence

from childreg.errors import AlreadyExists
from node.store.audit import AuditStore
from node.store.memory.state import MemoryBase


class MemoryAudit(MemoryBase, AuditStore):
    """The audit log's leaves, Merkle rows and checkpoints."""

    def audit_size(self) -> int:
        """How many leaves the audit log holds."""
        with self._lock:
            return len(self._live().leaves)

    def audit_append(self, body: bytes, rows: Sequence[tuple[int, int, bytes]], index: int) -> int:
        """Append a leaf (index = the current size) with its new Merkle rows; its index."""
        with self._lock, self.atomic():
            state = self._writable()
            if index != len(state.leaves):
                raise AlreadyExists("an audit leaf would be overwritten or skipped")
            for level, idx, digest in rows:
                if state.hashes.setdefault((level, idx), digest) != digest:
                    raise AlreadyExists("a Merkle row would be overwritten")
            state.leaves.append(bytes(body))
            return len(state.leaves) - 1

    def audit_hash(self, level: int, index: int) -> bytes:
        """A stored complete-subtree hash; KeyError if absent (a corruption signal)."""
        with self._lock:
            return self._live().hashes[level, index]

    def audit_leaves(self, start: int, end: int) -> list[bytes]:
        """Leaf bytes with indices in [start, end)."""
        with self._lock:
            return list(self._live().leaves[start:end])

    def audit_put_checkpoint(self, size: int, note: str) -> None:
        """Keep a signed checkpoint (one per size; a second for one size is refused)."""
        with self._lock:
            state = self._writable()
            if size in state.checkpoints:
                raise AlreadyExists("a checkpoint of this size exists")
            state.checkpoints[size] = note

    def audit_checkpoint(self, size: int | None = None) -> tuple[int, str] | None:
        """The checkpoint of ``size`` (default: the latest), or None."""
        with self._lock:
            held = self._live().checkpoints
            if not held:
                return None
            key = max(held) if size is None else size
            return (key, held[key]) if key in held else None

    def add_key_transition(self, which: str, note: str) -> None:
        """Keep a signed key-transition statement of the ``which`` signing key."""
        with self._lock, self.atomic():
            self._writable().transitions.append((which, note))

    def key_transitions(self) -> list[tuple[str, str]]:
        """Every key-transition statement kept, as (which key, signed note), oldest first."""
        with self._lock:
            return list(self._live().transitions)
