"""The audit log's own reads: checkpoints, entries and proofs, each read a leaf first.

Why: the log is only worth something if outsiders can fetch and check it (docs/audit.md),
and the auditors' own queries must be accountable too. So every read first appends one
``audit.read`` leaf through the audited service (actor: the caller; request: the digest of
the request as received) and only then computes its answer, from the log as it is after
that append: an auditor's checkpoint always covers its own query. If the append fails,
the read fails and nothing is returned (write-ahead).

The leaf's outcome is decided before the append: a range that does not fit the log even
after this leaf is refused (INVALID_ARGUMENT) and recorded as such. The log only grows,
so a range that fits the size the log has at least after the append will still fit when
the answer is computed. Who may read is decided at the door (``childreg.authz``).
"""

from __future__ import annotations

from typing import Final

from childreg.errors import InvalidInput, Violation
from node.audit.actor import Actor
from node.audit.log import MAX_ENTRIES
from node.audit.service import Audited

READ_ACTION: Final = "audit.read"
REFUSED: Final = "INVALID_ARGUMENT"


def _refusal(field: str, problem: str) -> InvalidInput:
    return InvalidInput(f"{field}: {problem}", [Violation(field, problem)])


def _entries_problem(start: int, end: int, size: int) -> InvalidInput | None:
    if not start <= end:
        return _refusal("end", "before start")
    if end - start > MAX_ENTRIES:
        return _refusal("end", f"at most {MAX_ENTRIES} leaves a call")
    if end > size:
        return _refusal("end", f"beyond the log's {size} leaves")
    return None


def _size_problem(tree_size: int, size: int) -> InvalidInput | None:
    if tree_size > size:
        return _refusal("tree_size", f"larger than the log's {size} leaves")
    return None


class LogReads:
    """Checkpoints, entries and proofs of the node's log; each read logged first."""

    def __init__(self, audited: Audited) -> None:
        self._audited = audited
        self._log = audited.log

    def checkpoint(self, actor: Actor, request: bytes) -> str:
        """The signed checkpoint of the log, its size including this read's leaf."""
        self._record(actor, request)
        return self._log.checkpoint()

    def key_transitions(self) -> list[str]:
        """The log key's transition statements, oldest first (public, no leaf: they come
        with a checkpoint, whose read left one)."""
        return self._log.key_transitions()

    def entries(self, actor: Actor, request: bytes, start: int, end: int) -> list[bytes]:
        """Leaves [start, end) (at most MAX_ENTRIES)."""
        self._record(actor, request, _entries_problem(start, end, self._at_least()))
        return self._log.entries(start, end)

    def inclusion_proof(
        self, actor: Actor, request: bytes, index: int, tree_size: int
    ) -> list[bytes]:
        """RFC 9162 inclusion proof of leaf ``index`` in the tree of ``tree_size`` leaves."""
        problem = _size_problem(tree_size, self._at_least())
        if problem is None and not index < tree_size:
            problem = _refusal("index", "outside the tree")
        self._record(actor, request, problem)
        return self._log.inclusion_proof(index, tree_size)

    def consistency_proof(
        self, actor: Actor, request: bytes, old_size: int, new_size: int
    ) -> list[bytes]:
        """RFC 9162 consistency proof from ``old_size`` to ``new_size`` leaves."""
        problem = _size_problem(new_size, self._at_least())
        if problem is None and not old_size <= new_size:
            problem = _refusal("old_size", "after new_size")
        self._record(actor, request, problem)
        return self._log.consistency_proof(old_size, new_size)

    def _record(self, actor: Actor, request: bytes, problem: InvalidInput | None = None) -> None:
        """Append this read's leaf (write-ahead); then refuse it if ``problem``."""
        self._audited.record(actor, READ_ACTION, request, REFUSED if problem else "OK")
        if problem is not None:
            raise problem

    def _at_least(self) -> int:
        """A lower bound of the log's size once this read's leaf is appended."""
        return self._log.size + 1
