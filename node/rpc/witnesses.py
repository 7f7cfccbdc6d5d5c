"""The node's gRPC client of its witnesses: what node/audit/checkpointer.py calls.

Why a module of its own: the checkpoint loop is domain code and sees no gRPC; this is the
one place that opens a mutual-TLS channel to a witness (WitnessService GetState and
AddCheckpoint, one channel per round) and turns a failed call into
:class:`~node.audit.checkpointer.WitnessUnreachable` carrying only its status name.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import grpc

from childreg.pki import IdentityFiles
from childreg.rpc import TlsMaterial, secure_channel
from childreg.server_check import check_server, outgoing_check
from childreg.v1 import audit_pb2 as apb
from childreg.v1 import audit_pb2_grpc as apb_grpc
from node.audit.checkpointer import WitnessUnreachable
from node.config import WitnessEndpoint


class GrpcWitnesses:
    """Witness sessions over mutual TLS as the node's identity, each call within
    ``deadline`` seconds."""

    def __init__(self, identity: IdentityFiles, deadline: float = 10.0) -> None:
        self._identity = identity
        self._deadline = deadline

    @contextmanager
    def connect(self, witness: WitnessEndpoint) -> Iterator[_Session]:
        """A session with ``witness`` over one channel, closed when the block ends."""
        # A witness whose certificate is revoked is refused (childreg/server_check.py).
        check_server(
            witness.address, self._identity, witness.server_name, outgoing_check(), self._deadline
        )
        tls = TlsMaterial.from_dir(self._identity)
        with secure_channel(witness.address, tls, witness.server_name) as channel:
            yield _Session(apb_grpc.WitnessServiceStub(channel), self._deadline)


class _Session:
    """The two WitnessService calls the checkpoint loop makes."""

    def __init__(self, stub: apb_grpc.WitnessServiceStub, deadline: float) -> None:
        self._stub = stub
        self._deadline = deadline

    def held(self, origin: str) -> str:
        """The newest checkpoint note of ``origin`` the witness holds ("" if none)."""
        try:
            reply = self._stub.GetState(
                apb.WitnessStateRequest(origin=origin), timeout=self._deadline
            )
        except grpc.RpcError as err:
            raise WitnessUnreachable(err.code().name) from None
        return reply.note

    def add(
        self, note: str, old_size: int, proof: list[bytes], transitions: Sequence[str] = ()
    ) -> str:
        """Give the witness ``note`` with its consistency proof (and the log key's
        transition statements); the cosigned note."""
        request = apb.WitnessRequest(
            note=note, old_size=old_size, consistency=proof, key_transitions=list(transitions)
        )
        try:
            reply = self._stub.AddCheckpoint(request, timeout=self._deadline)
        except grpc.RpcError as err:
            raise WitnessUnreachable(err.code().name) from None
        return reply.cosigned_note
