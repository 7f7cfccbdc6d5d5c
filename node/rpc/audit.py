"""The node's AuditLogService over gRPC: auditors and witnesses read the log.

Thin like node/rpc/records.py: each method names the verified caller as the actor and
calls the audited reads (node/audit/reads.py), which append the call's one ``audit.read``
leaf (request: the digest of the message's deterministic wire bytes) before the answer
is computed. Who may call is decided by the authorizer (``childreg.authz``).
"""

from __future__ import annotations

import grpc

from childreg.v1 import audit_pb2 as apb
from childreg.v1 import audit_pb2_grpc as apb_grpc
from node.audit.reads import LogReads
from node.rpc.convert import actor_of


class AuditLogServicer(apb_grpc.AuditLogServiceServicer):
    """Checkpoints, entries and proofs of the node's log (the reads decide; this converts)."""

    def __init__(self, reads: LogReads) -> None:
        self._reads = reads

    def LatestCheckpoint(
        self, request: apb.CheckpointRequest, context: grpc.ServicerContext
    ) -> apb.SignedCheckpoint:
        note = self._reads.checkpoint(actor_of(context), _wire(request))
        return apb.SignedCheckpoint(note=note, key_transitions=self._reads.key_transitions())

    def GetEntries(self, request: apb.EntriesRequest, context: grpc.ServicerContext) -> apb.Entries:
        start, end = request.start, request.end
        leaves = self._reads.entries(actor_of(context), _wire(request), start, end)
        return apb.Entries(start=start, leaves=leaves)

    def InclusionProof(
        self, request: apb.InclusionRequest, context: grpc.ServicerContext
    ) -> apb.Proof:
        hashes = self._reads.inclusion_proof(
            actor_of(context), _wire(request), request.index, request.tree_size
        )
        return apb.Proof(hashes=hashes)

    def ConsistencyProof(
        self, request: apb.ConsistencyRequest, context: grpc.ServicerContext
    ) -> apb.Proof:
        hashes = self._reads.consistency_proof(
            actor_of(context), _wire(request), request.old_size, request.new_size
        )
        return apb.Proof(hashes=hashes)


def _wire(
    request: apb.CheckpointRequest
    | apb.EntriesRequest
    | apb.InclusionRequest
    | apb.ConsistencyRequest,
) -> bytes:
    """The request's bytes as its leaf digests them (deterministic, as always)."""
    return request.SerializeToString(deterministic=True)
