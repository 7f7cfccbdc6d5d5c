"""The gRPC WitnessService over a :class:`~witness.cosigning.Witness` (thin: proto <-> domain).

Why: nodes reach a witness — the coordinator, or an independent body's ``childreg audit
witness serve`` — over mutual TLS; this adapter checks the request's fields (note size,
proof shape) and hands them to the domain, which never sees protobuf. Who may call is
decided before this runs (``childreg.authz``: AddCheckpoint for nodes; GetState for nodes,
auditors and the coordinator); domain errors become gRPC statuses at the RPC boundary.
"""

from __future__ import annotations

import grpc

from childreg.audit.checkpoint import Checkpoint, parse_childreg_origin
from childreg.audit.note import note_text
from childreg.errors import ChildregError, PermissionDenied
from childreg.pki import SpiffeId
from childreg.rpc import peer_identity
from childreg.v1 import audit_pb2 as apb
from childreg.v1 import audit_pb2_grpc as apb_grpc
from witness.cosigning import Witness, check_origin, check_request

SERVICE: str = apb.DESCRIPTOR.services_by_name["WitnessService"].full_name
"""The full service name, for health checking: ``childreg.v1.WitnessService``."""


class WitnessServicer(apb_grpc.WitnessServiceServicer):
    """AddCheckpoint cosigns a node's newer checkpoint or refuses; GetState shows what is held."""

    def __init__(self, witness: Witness) -> None:
        self._witness = witness

    def AddCheckpoint(
        self, request: apb.WitnessRequest, context: grpc.ServicerContext
    ) -> apb.WitnessResponse:
        proof = check_request(request.note, request.old_size, list(request.consistency))
        _require_own_log(context, request.note)
        cosigned = self._witness.add_checkpoint(
            request.note, request.old_size, proof, list(request.key_transitions)
        )
        return apb.WitnessResponse(cosigned_note=cosigned)

    def GetState(
        self, request: apb.WitnessStateRequest, context: grpc.ServicerContext
    ) -> apb.WitnessState:
        origin = check_origin(request.origin)
        return apb.WitnessState(origin=origin, note=self._witness.state(origin) or "")


def _require_own_log(context: grpc.ServicerContext, note: str) -> None:
    """A node may submit only its own log's checkpoints: another department replaying an
    old note of this origin must not be able to make the witness record false evidence."""
    caller = SpiffeId.parse(peer_identity(context))
    try:
        origin = Checkpoint.parse(note_text(note)).origin
        federation, department = parse_childreg_origin(origin)
    except ChildregError:
        return  # malformed: the witness refuses it with a precise message
    if caller.role != "node" or (caller.federation, caller.ident) != (federation, department):
        raise PermissionDenied("a node may submit only its own log's checkpoints")
