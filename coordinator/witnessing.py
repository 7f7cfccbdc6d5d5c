"""The coordinator as a witness of every department's access log (pull, on an interval).

The coordinator already holds a mutual-TLS channel to every node, and the authorization
table lets it read a node's AuditLogService. So, for every department whose log key is
configured, it periodically fetches the latest signed checkpoint and a consistency proof
from the size it holds, and hands both to its own :class:`~childreg.audit.witness.Witness`
— the same logic as an independent witness — which cosigns and persists only a
consistent extension and keeps both signed notes as evidence of a rewrite, a rollback or
an equivocation (and logs an alert). Nodes may also push to it (WitnessService).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import grpc
import structlog

from childreg.audit.checkpoint import Checkpoint
from childreg.audit.note import note_text
from childreg.audit.witness import Witness
from childreg.errors import ChildregError
from childreg.v1 import audit_pb2 as apb
from childreg.v1 import audit_pb2_grpc as apb_grpc

log = structlog.get_logger("childreg.coordinator")


@dataclass
class PullWitness:
    """Fetch, check and cosign each department's checkpoint; ``run_once`` is one pass."""

    witness: Witness
    channel_for: Callable[[str], grpc.Channel]  # department id -> channel to its node
    origins: Mapping[str, str]  # department id -> its log's origin
    interval: float
    deadline: float = 10.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Run in a daemon thread until :meth:`stop`."""
        self._thread = threading.Thread(target=self._loop, name="witness", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.deadline * 2 + 5)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.run_once()

    def run_once(self) -> dict[str, str]:
        """One pass over every department: "cosigned", a refusal's status, or "unreachable"."""
        outcome: dict[str, str] = {}
        for dept, origin in self.origins.items():
            try:
                self._witness(dept, origin)
                outcome[dept] = "cosigned"
            except grpc.RpcError as err:
                outcome[dept] = "unreachable"
                log.warning("witness.node_unreachable", department=dept, status=err.code().name)
            except ChildregError as exc:  # evidence is kept and alerted by the Witness
                outcome[dept] = type(exc).__name__
        return outcome

    def _witness(self, dept: str, origin: str) -> None:
        stub = apb_grpc.AuditLogServiceStub(self.channel_for(dept))
        note = stub.LatestCheckpoint(apb.CheckpointRequest(), timeout=self.deadline).note
        new_size = Checkpoint.parse(note_text(note)).size
        held = self.witness.state(origin)
        old_size = Checkpoint.parse(note_text(held)).size if held else 0
        proof: list[bytes] = []
        if 0 < old_size < new_size:
            reply = stub.ConsistencyProof(
                apb.ConsistencyRequest(old_size=old_size, new_size=new_size),
                timeout=self.deadline,
            )
            proof = list(reply.hashes)
        self.witness.add_checkpoint(note, old_size, proof)
