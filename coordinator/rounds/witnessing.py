"""The coordinator as a witness of every department's access log (pull, on an interval).

The coordinator already holds a mutual-TLS channel to every node, and the authorization
table lets it read a node's AuditLogService. So, for every department whose log key is
configured, it periodically fetches the latest signed checkpoint and a consistency proof
from the size it holds, and hands both to the witness it hosts — the same logic as an
independent witness — which cosigns and persists only a consistent extension and keeps
both signed notes as evidence of a rewrite, a rollback or an equivocation (and logs an
alert). Nodes may also push to it (WitnessService, served on the coordinator's server).

The coordinator never imports ``witness/``: it takes the witness through
:class:`HostedWitness`, which ``childreg coordinator serve`` satisfies with
``witness.server.embedded_witness`` and passes to ``coordinator.server.start_coordinator``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import grpc
import structlog

from childreg.audit import merkle
from childreg.audit.checkpoint import Checkpoint
from childreg.audit.note import note_text
from childreg.errors import ChildregError
from childreg.v1 import audit_pb2 as apb
from childreg.v1 import audit_pb2_grpc as apb_grpc

log = structlog.get_logger("childreg.coordinator")


class HostedWitness(Protocol):
    """What the coordinator needs of the witness it hosts.

    The coordinator owns the witness it is given: it registers its service on the
    coordinator's server, feeds it the checkpoints it pulls, and closes it on shutdown (or
    when it fails to start).
    """

    @property
    def service_name(self) -> str:
        """The full gRPC service name it serves, for health checking."""
        ...

    def add_checkpoint(
        self, note: str, old_size: int, proof: Sequence[bytes], transitions: Sequence[str] = ()
    ) -> str:
        """The node's checkpoint cosigned once stored, or a ChildregError refusing it (the
        witness keeps the evidence of a contradiction and raises the alert itself);
        ``transitions`` are the node's log-key transition statements."""
        ...

    def state(self, origin: str) -> str | None:
        """The latest cosigned checkpoint note held for a log's origin, if any."""
        ...

    def register(self, server: grpc.Server) -> None:
        """Add its WitnessService to the coordinator's server (before it starts)."""
        ...

    def close(self) -> None:
        """Release its store."""
        ...


@dataclass
class PullWitness:
    """Fetch, check and cosign each department's checkpoint; ``run_once`` is one pass."""

    witness: HostedWitness
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
            except ChildregError as exc:  # the witness keeps the evidence and alerts
                outcome[dept] = type(exc).__name__
            except Exception as exc:  # the loop must outlive any one department's trouble
                outcome[dept] = "error"
                log.error("witness.pull_failed", department=dept, error=type(exc).__name__)
        return outcome

    def _witness(self, dept: str, origin: str) -> None:
        stub = apb_grpc.AuditLogServiceStub(self.channel_for(dept))
        latest = stub.LatestCheckpoint(apb.CheckpointRequest(), timeout=self.deadline)
        note = latest.note
        new = Checkpoint.parse(note_text(note))
        new_size = new.size
        held = self.witness.state(origin)
        old = Checkpoint.parse(note_text(held)) if held else None
        old_size = old.size if old else 0
        if old is not None and new_size < old_size and self._stale(stub, new, old):
            return  # a checkpoint pushed meanwhile is newer; not a rollback
        proof: list[bytes] = []
        if 0 < old_size < new_size:
            reply = stub.ConsistencyProof(
                apb.ConsistencyRequest(old_size=old_size, new_size=new_size),
                timeout=self.deadline,
            )
            proof = list(reply.hashes)
        self.witness.add_checkpoint(note, old_size, proof, list(latest.key_transitions))

    def _stale(self, stub: apb_grpc.AuditLogServiceStub, new: Checkpoint, held: Checkpoint) -> bool:
        """Whether the held checkpoint provably extends the one just fetched (a race)."""
        reply = stub.ConsistencyProof(
            apb.ConsistencyRequest(old_size=new.size, new_size=held.size), timeout=self.deadline
        )
        return merkle.verify_consistency(
            new.size, held.size, new.root, held.root, list(reply.hashes)
        )
