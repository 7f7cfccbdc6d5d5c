"""Publishing the node's audit checkpoints: sign on an interval, have witnesses cosign.

Every ``audit_checkpoint_seconds`` the node signs a checkpoint of its log if the log
grew, and hands it to each configured witness with a consistency proof from the size
that witness holds (asked with GetState). A witness cosigns only after verifying that
proof, so a node cannot later show auditors a different history without one of the
witnesses holding the evidence. The time of the last checkpoint each witness cosigned is
kept, so features that disclose data can refuse when the log has not been witnessed
recently (fail closed).

How a witness is reached is not this module's business: it is handed a
:class:`WitnessClient` (the node's gRPC one is node/rpc/witnesses.py), so the loop and its
fail-closed rule see no protobuf and no gRPC.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from childreg.audit.checkpoint import open_checkpoint
from childreg.audit.note import NoteVerifier
from childreg.errors import FailedPrecondition
from node.audit.log import AuditLog
from node.config import WitnessEndpoint

log = structlog.get_logger("childreg.node.audit")


class WitnessUnreachable(Exception):
    """A witness call failed in transport or was refused; ``status`` names how (a status
    name such as UNAVAILABLE), for the log line."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


class WitnessSession(Protocol):
    """One connection to one witness (WitnessUnreachable when a call fails)."""

    def held(self, origin: str) -> str:
        """The newest checkpoint note of ``origin`` the witness holds ("" if none)."""
        ...

    def add(
        self, note: str, old_size: int, proof: list[bytes], transitions: Sequence[str] = ()
    ) -> str:
        """Give the witness ``note`` with a consistency proof from ``old_size`` (and the
        log key's transition statements); the cosigned note it answers."""
        ...


class WitnessClient(Protocol):
    """How the node reaches its witnesses."""

    def connect(self, witness: WitnessEndpoint) -> AbstractContextManager[WitnessSession]:
        """A session with ``witness``, closed when the block ends."""
        ...


@dataclass
class Checkpointer:
    """The background loop; ``run_once`` is the step (tests call it directly)."""

    audit: AuditLog
    client: WitnessClient
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
            except WitnessUnreachable as err:
                log.warning("audit.witness_failed", witness=witness.name, status=err.status)
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
        with self.client.connect(witness) as session:
            held = session.held(self.audit.origin)
            old_size = 0
            if held:  # signed by this key or an earlier one of the node (after a rotation)
                checkpoint, _ = open_checkpoint(
                    held, self.audit.verifiers(), origin=self.audit.origin
                )
                old_size = checkpoint.size
            _, size = self._size_of(note)
            if old_size > size:  # the witness already holds a newer checkpoint of ours
                return
            proof = self.audit.consistency_proof(old_size, size)
            cosigned = session.add(note, old_size, proof, self.audit.key_transitions())
        cosigners = set(open_checkpoint(cosigned, [witness.verifier()])[1].verified_by)
        if witness.verifier().name in cosigners:
            self.witnessed_at[witness.name] = time.monotonic()
            log.info("audit.witnessed", witness=witness.name, size=size)

    def _size_of(self, note: str) -> tuple[str, int]:
        verifier = NoteVerifier.from_key_string(self.audit.verifier_key)
        checkpoint, _ = open_checkpoint(note, [verifier], origin=self.audit.origin)
        return checkpoint.origin, checkpoint.size
