"""The node's AuditLogService: auditors and witnesses read the log, and each read is a leaf.

Why: the log is only worth something if outsiders can fetch and check it (docs/audit.md),
and the auditors' own queries must be accountable too. So every call first appends one
``audit.read`` leaf (actor: the caller's verified SPIFFE id; request: the digest of the
request's bytes) and only then computes its answer, from the log as it is after that
append: an auditor's checkpoint always covers its own query. If the append fails, the
call fails and nothing is returned (write-ahead).

The leaf's outcome is decided before the append: a range that does not fit the log even
after this leaf is refused (INVALID_ARGUMENT) and recorded as such. The log only grows,
so a range that fits the size the log has at least after the append will still fit when
the answer is computed. Who may call is decided by the authorizer (``childreg.authz``).
"""

from __future__ import annotations

import grpc

from childreg.errors import InvalidInput, Violation
from childreg.rpc import peer_identity
from childreg.v1 import audit_pb2 as apb
from childreg.v1 import audit_pb2_grpc as apb_grpc
from node.audit.log import MAX_ENTRIES, AuditLog

READ_ACTION = "audit.read"
REFUSED = "INVALID_ARGUMENT"


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


class AuditLogServicer(apb_grpc.AuditLogServiceServicer):
    """Checkpoints, entries and proofs of the node's log; each call logged first."""

    def __init__(self, log: AuditLog) -> None:
        self._log = log

    def _record(
        self,
        request: apb.CheckpointRequest
        | apb.EntriesRequest
        | apb.InclusionRequest
        | apb.ConsistencyRequest,
        context: grpc.ServicerContext,
        problem: InvalidInput | None = None,
    ) -> None:
        """Append this call's leaf (write-ahead); then refuse it if ``problem``."""
        self._log.append(
            actor=peer_identity(context),
            action=READ_ACTION,
            request=request.SerializeToString(deterministic=True),
            outcome=REFUSED if problem else "OK",
        )
        if problem is not None:
            raise problem

    def _at_least(self) -> int:
        """A lower bound of the log's size once this call's leaf is appended."""
        return self._log.size + 1

    def LatestCheckpoint(
        self, request: apb.CheckpointRequest, context: grpc.ServicerContext
    ) -> apb.SignedCheckpoint:
        self._record(request, context)
        return apb.SignedCheckpoint(note=self._log.checkpoint())

    def GetEntries(self, request: apb.EntriesRequest, context: grpc.ServicerContext) -> apb.Entries:
        start, end = request.start, request.end
        self._record(request, context, _entries_problem(start, end, self._at_least()))
        return apb.Entries(start=start, leaves=self._log.entries(start, end))

    def InclusionProof(
        self, request: apb.InclusionRequest, context: grpc.ServicerContext
    ) -> apb.Proof:
        index, tree_size = request.index, request.tree_size
        problem = _size_problem(tree_size, self._at_least())
        if problem is None and not index < tree_size:
            problem = _refusal("index", "outside the tree")
        self._record(request, context, problem)
        return apb.Proof(hashes=self._log.inclusion_proof(index, tree_size))

    def ConsistencyProof(
        self, request: apb.ConsistencyRequest, context: grpc.ServicerContext
    ) -> apb.Proof:
        old_size, new_size = request.old_size, request.new_size
        problem = _size_problem(new_size, self._at_least())
        if problem is None and not old_size <= new_size:
            problem = _refusal("old_size", "after new_size")
        self._record(request, context, problem)
        return apb.Proof(hashes=self._log.consistency_proof(old_size, new_size))
