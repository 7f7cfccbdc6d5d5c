"""The operator's audited commands: a guardian's access report and a child's pseudonym.

Why: both run on the node's host with the key-encryption key and link a child id to the
log's keyed pseudonym, which only the department can do — so they are accesses to the
child like any other and leave one ``audit.read`` leaf each, through the same audited
service as every gRPC call (node/audit/service.py), named after the operator
(``department-operator/<department>.<login>``). The leaf's subject is the child's
pseudonym, its purpose the command (``access-report`` or ``pseudonym``), its request the
keyed digest of the command's canonical JSON arguments: no child id, no name.

The access report is read from the node's own log and only once that log verifies up to
the node's latest signed checkpoint; if it does not, :class:`LogUnverified` is raised
before anything is written (the database must be kept as it is for the investigation).
The report is computed before its leaf is appended (write-ahead: the leaf commits before
the report is returned), so it lists the accesses before this one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from childreg.audit.checkpoint import Checkpoint
from childreg.audit.leaf import AuditEvent
from childreg.audit.note import NoteVerifier, note_text
from childreg.audit.verify import verify_log
from childreg.signed import canonical_json
from node.audit.actor import Actor
from node.audit.log import AuditLog
from node.audit.reads import READ_ACTION
from node.audit.service import Audited
from node.crypto.keys import Keyring

ACCESS_REPORT: Final = "access-report"
PSEUDONYM: Final = "pseudonym"


class LogUnverified(Exception):
    """The node's log does not verify against its own latest checkpoint: no report was
    made and nothing was written. ``codes`` name the problems (no data)."""

    def __init__(self, codes: tuple[str, ...]) -> None:
        super().__init__(", ".join(codes))
        self.codes = codes


@dataclass(frozen=True)
class AccessReport:
    """Who accessed one child's record: the leaves naming its pseudonym, oldest first."""

    subject: str  # the pseudonym, hex
    verified_leaves: int  # how many leaves the latest checkpoint covers (and were verified)
    total_leaves: int  # how many the log held when the report was made
    accesses: tuple[AuditEvent, ...]


def read_access_report(log: AuditLog, pseudonym: bytes) -> AccessReport:
    """The report for ``pseudonym`` from ``log``, once the log verifies up to its latest
    checkpoint (LogUnverified otherwise). Writes nothing."""
    leaves = log.leaves()
    held = log.latest_checkpoint()
    checked = 0
    if held is not None:  # the log must verify up to the node's last checkpoint
        checked = Checkpoint.parse(note_text(held)).size
        verifier = NoteVerifier.from_key_string(log.verifier_key)
        report = verify_log(held, leaves[:checked], verifier)
        if not report.ok:
            raise LogUnverified(tuple(p.code for p in report.problems))
    events = log.events_about(pseudonym, leaves)  # parsed only once the log verified
    return AccessReport(pseudonym.hex(), checked, len(leaves), tuple(events))


class OperatorCommands:
    """What an operator runs with the KEK on the node's host, each an audited access."""

    def __init__(self, audited: Audited, keyring: Keyring, actor: Actor) -> None:
        if actor.kind != "operator":
            raise ValueError("operator commands need an operator actor")
        self._audited = audited
        self._keyring = keyring
        self.actor = actor

    def pseudonym(self, child_id: str) -> str:
        """The child's keyed pseudonym in the audit log (hex), for a guardian's report."""
        return self._audited.disclose(
            self.actor,
            READ_ACTION,
            _request(PSEUDONYM, child_id),
            lambda: self._keyring.pseudonym(child_id).hex(),
            child_id,
            purpose=PSEUDONYM,
        )

    def access_report(self, child_id: str) -> AccessReport:
        """A guardian's access report for the child (LogUnverified, and no leaf, if the log
        does not verify)."""
        return self._audited.disclose(
            self.actor,
            READ_ACTION,
            _request(ACCESS_REPORT, child_id),
            lambda: read_access_report(self._audited.log, self._keyring.pseudonym(child_id)),
            child_id,
            purpose=ACCESS_REPORT,
        )


def _request(command: str, child_id: str) -> bytes:
    """The command's arguments as its leaf's request (only a keyed digest is kept)."""
    return canonical_json({"command": command, "child_id": child_id})
