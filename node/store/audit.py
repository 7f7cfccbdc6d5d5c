"""The audit part of a store: the leaves of the node's audit log, its Merkle rows, checkpoints.

What :mod:`node.audit.log` keeps. A leaf is appended in the same ``atomic()`` block as the
change it records (the store's one shared transaction), so an action and its leaf commit
together or not at all.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence

from node.store.transactional import Transactional


class AuditStore(Transactional):
    """Where a node keeps its append-only audit log.

    Contract (every implementation), besides :class:`~node.store.transactional.Transactional`'s:

    - ``audit_append`` with an ``index`` that is not the current size MUST raise
      :class:`childreg.errors.AlreadyExists` and change nothing; so MUST a Merkle row that
      would overwrite a different stored hash. Leaves and rows are never changed or removed.
    - ``audit_put_checkpoint`` keeps one checkpoint per size: a second for the same size
      MUST raise AlreadyExists.
    - ``add_key_transition`` appends; ``key_transitions`` gives every one, oldest first,
      and a transition is never changed or removed (it rolls back with its block).
    """

    @abstractmethod
    def audit_size(self) -> int:
        """How many leaves the audit log holds."""

    @abstractmethod
    def audit_append(self, body: bytes, rows: Sequence[tuple[int, int, bytes]], index: int) -> int:
        """Append leaf ``index`` with its new Merkle rows; its index.

        ``index`` is the size the caller read inside the same ``atomic()`` block (its
        Merkle rows depend on it); AlreadyExists if it is not the size.
        """

    @abstractmethod
    def audit_hash(self, level: int, index: int) -> bytes:
        """A stored complete-subtree hash; KeyError if absent (a corruption signal)."""

    @abstractmethod
    def audit_leaves(self, start: int, end: int) -> list[bytes]:
        """Leaf bytes with indices in [start, end)."""

    @abstractmethod
    def audit_put_checkpoint(self, size: int, note: str) -> None:
        """Keep a signed checkpoint (one per size; a second for one size is refused)."""

    @abstractmethod
    def audit_checkpoint(self, size: int | None = None) -> tuple[int, str] | None:
        """The checkpoint of ``size`` (default: the latest), or None."""

    @abstractmethod
    def add_key_transition(self, which: str, note: str) -> None:
        """Keep a signed key-transition statement of the ``which`` signing key
        (childreg/key_transition.py; node/key_rotation.py writes them)."""

    @abstractmethod
    def key_transitions(self) -> list[tuple[str, str]]:
        """Every key-transition statement kept, as (which key, signed note), oldest first."""
