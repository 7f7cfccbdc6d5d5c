"""Publishing the node's audit checkpoints: sign on an interval, have witnesses cosign.

Every ``audit_checkpoint_seconds`` the node signs a checkpoint of its log if the log
grew, and hands it to each configured witness with a consistency proof from the size
that witness holds (asked with GetState). A witness cosigns only after verifying that
proof, so a node cannot later show auditors a different history without one of the
witnesses holding the evidence. The time of the last checkpoint each witness cosigned is
kept, so features that disclose data can refuse when the log has not been witnessed
recently (fail closed).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import grpc
import structlog

from childreg.audit.checkpoint import open_checkpoint
from childreg.audit.note import NoteVerifier
from childreg.errors import FailedPrecondition
from childreg.pki import IdentityFiles
from childreg.rpc import TlsMaterial, secure_channel
from childreg.v1 import audit_pb2 as apb
from childreg.v1 import audit_pb2_grpc as apb_grpc
from node.audit.log import AuditLog
from node.config import WitnessEndpoint

log = structlog.get_logger("childreg.node.audit")


@dataclass
class Checkpointer:
    """The background loop; ``run_once`` is the step (tests call it directly)."""

    audit: AuditLog
    identity: IdentityFiles
    witnesses: tuple[WitnessEndpoint, ...]
    interval: float
    deadline: float = 10.0
    witnessed_at: dict[str, float] = field(default_factory=dict)  # witness name -> time
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Run in a daemon thread until :meth:`stop`."""
        self._thread = threading.Thread(target=self._loop, name="audit-checkpoints", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop (a step in progress finishes)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.deadline + 5)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.run_once()
            except Exception as exc:  # keep running; the next step retries
                log.error("audit.checkpoint_failed", error_type=type(exc).__name__)

    def run_once(self) -> str:
        """Sign a checkpoint of the current size and give it to every witness."""
        note = self.audit.checkpoint()
        for witness in self.witnesses:
            try:
                self._witness(witness, note)
            except grpc.RpcError as err:
                log.warning("audit.witness_failed", witness=witness.name, status=err.code().name)
            except Exception as exc:  # one witness's trouble must not stop the others
                log.error("audit.witness_failed", witness=witness.name, error=type(exc).__name__)
        return note

    def last_witnessed(self) -> float | None:
        """When any witness last cosigned a checkpoint (monotonic seconds), if ever."""
        return max(self.witnessed_at.values(), default=None)

    def require_recent_witness(self, max_age: float) -> None:
        """Fail closed: FailedPrecondition unless a witness cosigned within ``max_age`` s.

        Disclosures (school extracts) call this first: a node whose log nobody has
        witnessed lately must not hand out data whose access could later be denied.
        """
        last = self.last_witnessed()
        if last is None or time.monotonic() - last > max_age:
            raise FailedPrecondition(
                "the access log has not been witnessed recently; disclosures are paused "
                "until a witness cosigns a checkpoint (check the witnesses and this "
                "node's log)"
            )

    def _witness(self, witness: WitnessEndpoint, note: str) -> None:
        tls = TlsMaterial.from_dir(self.identity)
        with secure_channel(witness.address, tls, witness.server_name) as channel:
            stub = apb_grpc.WitnessServiceStub(channel)
            held = stub.GetState(
                apb.WitnessStateRequest(origin=self.audit.origin), timeout=self.deadline
            )
            old_size = 0
            if held.note:
                verifier = NoteVerifier.from_key_string(self.audit.verifier_key)
                checkpoint, _ = open_checkpoint(held.note, [verifier], origin=self.audit.origin)
                old_size = checkpoint.size
            _, size = self._size_of(note)
            if old_size > size:  # the witness already holds a newer checkpoint of ours
                return
            proof = self.audit.consistency_proof(old_size, size)
            reply = stub.AddCheckpoint(
                apb.WitnessRequest(note=note, old_size=old_size, consistency=proof),
                timeout=self.deadline,
            )
        cosigners = set(open_checkpoint(reply.cosigned_note, [witness.verifier()])[1].verified_by)
        if witness.verifier().name in cosigners:
            self.witnessed_at[witness.name] = time.monotonic()
            log.info("audit.witnessed", witness=witness.name, size=size)

    def _size_of(self, note: str) -> tuple[str, int]:
        verifier = NoteVerifier.from_key_string(self.audit.verifier_key)
        checkpoint, _ = open_checkpoint(note, [verifier], origin=self.audit.origin)
        return checkpoint.origin, checkpoint.size
