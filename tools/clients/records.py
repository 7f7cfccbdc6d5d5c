"""Department staff's reads of a node's records over mutual TLS (what `childreg node
show-child` prints).

Why here: the command line takes nothing from the node but its composition root and
configuration (tests/unit/test_architecture.py); the client-side conversion of the node's
answer into the validated model lives with the other clients.
"""

from __future__ import annotations

import grpc

from childreg.models import ChildView
from childreg.v1 import records_pb2 as pb
from childreg.v1 import records_pb2_grpc as pb_grpc
from node.rpc.convert import child_view_from_proto
from tools.clients.client import Endpoint, rpc_failure


def read_child(endpoint: Endpoint, child_id: str) -> ChildView:
    """Everything the node holds about one child (a CliError if the call fails)."""
    with endpoint.channel() as channel:
        try:
            record = pb_grpc.RecordsServiceStub(channel).GetChild(
                pb.ChildRef(child_id=child_id), timeout=endpoint.timeout
            )
        except grpc.RpcError as e:
            raise rpc_failure(e, "show-child", endpoint.address) from None
    return child_view_from_proto(record)
