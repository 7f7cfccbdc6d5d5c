"""Restoring a node from a backup and its change journal, so nothing looks rewritten.

Why: a restore that put back only the backup would show witnesses and auditors a shorter
log (a rewrite), forget privacy-budget charges and bring back erased children and
withdrawn consents. Here, with the node stopped and its data directory empty:

1. the backup is verified with the KEK (node/backup.py) and copied in;
2. the change journal (node/journal.py) is read and checked: its leaves up to the
   backup's log size must be the backup's own (the same log), and it must reach back to
   that size (no gap);
3. in one transaction, the journal's leaves after the backup's size are re-appended as
   they were, byte for byte (the log becomes the one the witnesses cosigned: a restored
   checkpoint of the same size is the same signed note), the privacy-ledger entries and
   participant sets the backup lacks are appended, and the leaves whose action
   :data:`REPLAY` names are applied again (an erasure is re-applied; a consent withdrawal
   is re-applied, so a withdrawn consent never comes back; an erased child's rows and
   data key go again and its tombstone is kept, so it never comes back either);
4. each configured witness is asked for the checkpoint it holds, and the rebuilt log must
   extend it (same root at its size); otherwise nothing is committed and the restore
   refuses, because starting that node would make the witness record equivocation;
5. a ``node.restore`` leaf names the operator and the backup, and the whole log is
   checkpointed (the same signed note a witness holds, at its size, is the node's again).

Changes to records after the backup (registrations, corrections, placements,
assessments, consents given, imports) cannot be recovered from leaves, which hold no
data: each is listed in the :class:`RestoreReport` — who, when, what, which child's
pseudonym (and its id when the child is in the backup) — for staff to enter again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import structlog

from childreg.audit import merkle
from childreg.audit.checkpoint import open_checkpoint
from childreg.audit.leaf import AuditEvent
from childreg.audit.note import NoteVerifier
from childreg.errors import AlreadyExists, FailedPrecondition
from childreg.secretfile import fsync_path
from node.audit.actor import Actor
from node.audit.checkpointer import WitnessClient, WitnessUnreachable
from node.audit.log import AuditLog, node_signer
from node.backup import DB_FILE, KEYRING_FILE, Progress, read_manifest, verify_backup
from node.config import WitnessEndpoint
from node.consent.extract import grant_ref
from node.crypto.keys import KekSource, Keyring
from node.journal import (
    ChangeJournal,
    JournalContents,
    JournalDamaged,
    journal_key,
    journal_seed,
    read_journal,
)
from node.journal import journal_path as _journal_path
from node.key_rotation import with_signing
from node.store.sqlcipher import SqlCipherStore
from node.store.types import StoredErasure

__all__ = [
    "ERASE_ACTION",
    "RECORD_CHANGES",
    "REPLAY",
    "RESTORE_ACTION",
    "Reentry",
    "RestoreReport",
    "restore_node",
]

log = structlog.get_logger("childreg.node.restore")

RESTORE_ACTION: Final = "node.restore"
#: The leaf of an erasure: a child erased after the backup is erased again, and none of
#: its changes after the backup is listed for re-entry.
ERASE_ACTION: Final = "child.erase"

#: Actions whose leaves record a change to records that a leaf cannot bring back: listed
#: for staff to enter again.
RECORD_CHANGES: Final = frozenset(
    {
        "child.register",
        "child.update",
        "child.correct",
        "child.close",
        "placement.record",
        "care_setting.record",
        "assessment.record",
        "records.import",
        "consent.grant",
    }
)
#: Actions after the backup that a restore neither replays nor lists but warns about.
WARNINGS: Final = {
    "keys.rekey_db": (
        "the database was rekeyed after this backup (leaf {seq}): the restored database is "
        "under the backup's older database key; run `childreg node rekey-db` before "
        "starting if that key may be known"
    ),
    "keys.rotate": (
        "the KEK was rotated after this backup (leaf {seq}): the restored keys are wrapped "
        "by the backup's KEK; run `childreg node rotate-kek` with a configuration naming "
        "that KEK and --new-kek the current one, before starting"
    ),
    "console.account": (
        "a web-console account was added, reset or disabled after this backup (leaf "
        "{seq}): accounts are as of the backup; check them with `childreg node user list`"
    ),
}
#: Actions that change nothing a restore must bring back: reads, the statistics rounds
#: (the ledger and participation they charge are journaled and replayed), signing-key
#: rotations (their statements are journaled and kept), sign-ins, denials, restores.
UNCHANGING: Final = frozenset(
    {
        "child.read", "child.search", "child.history", "audit.read", "breakglass.read",
        "extract.disclose", "statistics.release", "statistics.share", "statistics.unmask",
        "statistics.count", "retention.review", "keys.rotate_signing", "console.sign_in",
        "console.sign_out", "denied", RESTORE_ACTION,
    }
)  # fmt: skip


@dataclass(frozen=True)
class Reentry:
    """One acknowledged change after the backup that the restore could not bring back."""

    seq: int
    time: str
    actor: str
    action: str
    pseudonym: str
    child_id: str | None

    def to_json(self) -> dict[str, Any]:
        """As JSON values."""
        return dataclasses.asdict(self)


@dataclass
class RestoreReport:
    """What a restore did, and what staff must enter again."""

    backup_created_at: str
    backup_audit_size: int
    leaves_replayed: int = 0
    audit_size: int = 0
    ledger_replayed: int = 0
    participation_replayed: int = 0
    transitions_replayed: int = 0
    reapplied: list[dict[str, Any]] = field(default_factory=list)
    reenter: list[Reentry] = field(default_factory=list)
    witnesses: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """As JSON values (pseudonyms and internal child ids only: no personal data)."""
        return {
            "backup_created_at": self.backup_created_at,
            "backup_audit_size": self.backup_audit_size,
            "leaves_replayed": self.leaves_replayed,
            "audit_size": self.audit_size,
            "ledger_entries_replayed": self.ledger_replayed,
            "participation_replayed": self.participation_replayed,
            "transitions_replayed": self.transitions_replayed,
            "reapplied": self.reapplied,
            "reenter": [r.to_json() for r in self.reenter],
            "witnesses": self.witnesses,
            "warnings": self.warnings,
            "seconds": round(self.seconds, 3),
        }


class Replay:
    """What a handler of :data:`REPLAY` works with: the restored store, the keyring, and
    the children of the backup by pseudonym."""

    def __init__(self, store: SqlCipherStore, keyring: Keyring) -> None:
        self.store = store
        self.keyring = keyring
        self._by_pseudonym: dict[str, str] | None = None

    def child_of(self, pseudonym: str) -> str | None:
        """The id of the child with this pseudonym (hex), if the backup holds it."""
        if not pseudonym:
            return None
        if self._by_pseudonym is None:
            self._by_pseudonym = {
                self.keyring.pseudonym(child_id).hex(): child_id
                for page in self.store.wrapped_keys()
                for _, child_id, _, _ in page
            }
        return self._by_pseudonym.get(pseudonym)


#: Re-applies one leaf's change; what it did (for the report), or None if nothing to do.
Handler = Callable[[Replay, AuditEvent], str | None]


def _withdraw(replay: Replay, event: AuditEvent) -> str | None:
    """A consent withdrawn after the backup is withdrawn again, at the time it was."""
    child_id = replay.child_of(event.subject)
    if child_id is None or not event.grant:
        return None
    at = dt.datetime.strptime(event.time, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    for consent in replay.store.consents_of(child_id):
        if grant_ref(consent.grant_hash) == event.grant and consent.withdrawn_at is None:
            replay.store.withdraw_consent(consent.consent_id, at)
            return "consent withdrawn again"
    return None


def _erase(replay: Replay, event: AuditEvent) -> str | None:
    """A child erased after the backup is erased again: its rows and data key go (if the
    backup holds it) and its tombstone is kept, so the id is never taken again."""
    if not event.subject:
        return None
    pseudonym = bytes.fromhex(event.subject)
    if replay.store.erasure_of(pseudonym) is not None:
        return None  # erased in the backup already
    child_id = replay.child_of(event.subject)
    tombstone = StoredErasure(pseudonym, event.time, event.actor, event.purpose)
    replay.store.erase_child(child_id or "", tombstone)
    return "erased again" if child_id else "tombstone kept (registered after the backup)"


#: Leaves whose change the restore applies again, by action.
REPLAY: dict[str, Handler] = {"consent.withdraw": _withdraw, ERASE_ACTION: _erase}


def _check_lineage(
    journal: JournalContents, backup_leaves: Callable[[int, int], list[bytes]], size: int
) -> None:
    """The journal must hold the backup's own log and reach back to its size."""
    if journal.next_seq == 0 and size == 0:
        return
    if journal.first_seq > size:
        raise JournalDamaged(
            f"the change journal starts at leaf {journal.first_seq}, after the backup's "
            f"{size} leaves: the leaves in between are lost, and the witnesses would see a "
            "rewrite"
            "; "
            "restore a backup made after the journal was set up",
        )
    start, end = journal.first_seq, min(journal.next_seq, size)
    for page in range(start, end, 1000):
        ours = backup_leaves(page, min(page + 1000, end))
        for offset, body in enumerate(ours):
            if journal.leaf(page + offset) != body:
                raise JournalDamaged(
                    f"the change journal's leaf {page + offset} differs from the backup's: "
                    "it is another node's journal, or of a log this backup is not part of"
                    "; "
                    "point [backup] journal_dir at this node's journal",
                )


def _audit_verifiers(keyring: Keyring, federation: str, department: str) -> list[NoteVerifier]:
    """The verifiers of every generation of the audit key up to the one in use (a witness
    may hold a checkpoint signed before a rotation the journal replayed)."""
    return [
        node_signer(
            keyring.audit_signing_seed(generation), federation=federation, department=department
        ).verifier()
        for generation in range(1, keyring.signing_generation("audit") + 1)
    ]


def _check_witnesses(
    audit: AuditLog,
    client: WitnessClient | None,
    witnesses: Iterable[WitnessEndpoint],
    report: RestoreReport,
    *,
    strict: bool = True,
    verifiers: list[NoteVerifier] | None = None,
) -> None:
    """Every reachable witness's checkpoint must be a prefix of the rebuilt log (when not
    ``strict``, a restore without a journal, one that is not is a warning). The held
    checkpoint may be signed by any generation of the audit key in ``verifiers``
    (default: the one in use)."""
    trusted = verifiers or [NoteVerifier.from_key_string(audit.verifier_key)]
    size = audit.size
    for witness in witnesses:
        if client is None:
            break
        try:
            with client.connect(witness) as session:
                held = session.held(audit.origin)
        except WitnessUnreachable as err:
            report.warnings.append(f"witness {witness.name} was not reachable ({err.status})")
            report.witnesses.append({"name": witness.name, "reachable": False})
            continue
        if not held:
            report.witnesses.append({"name": witness.name, "reachable": True, "size": 0})
            continue
        checkpoint, _ = open_checkpoint(held, trusted, origin=audit.origin)
        extends = checkpoint.size <= size and audit.root(checkpoint.size) == checkpoint.root
        if not extends and not strict:
            report.warnings.append(
                f"witness {witness.name} holds a checkpoint of {checkpoint.size} leaves that "
                "this log does not extend: it will refuse the node's checkpoints (tell its "
                "operator and the auditors)"
            )
            report.witnesses.append(
                {"name": witness.name, "reachable": True, "size": checkpoint.size,
                 "extends": False}
            )  # fmt: skip
            continue
        if not extends:
            raise FailedPrecondition(
                f"witness {witness.name} holds a checkpoint of {checkpoint.size} leaves that "
                f"the restored log ({size} leaves) does not extend: the change journal is "
                "missing leaves the witness cosigned; nothing was restored"
                "; "
                "find the complete journal (its [backup] journal_dir) and restore again",
            )
        report.witnesses.append(
            {"name": witness.name, "reachable": True, "size": checkpoint.size, "extends": True}
        )


def _place(backup: Path, data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name in (DB_FILE, KEYRING_FILE):
        part = data_dir / f"{name}.restoring"
        shutil.copyfile(backup / name, part)
        os.chmod(part, 0o600)
        fsync_path(part)
        os.replace(part, data_dir / name)
    fsync_path(data_dir)


def _remove_placed(data_dir: Path) -> None:
    for name in (DB_FILE, f"{DB_FILE}-wal", f"{DB_FILE}-shm", KEYRING_FILE):
        (data_dir / name).unlink(missing_ok=True)


def restore_node(
    backup: Path,
    data_dir: Path,
    source: KekSource,
    *,
    federation: str,
    department: str,
    actor: Actor,
    journal_dir: Path | None,
    without_journal: bool = False,
    witness_client: WitnessClient | None = None,
    witnesses: tuple[WitnessEndpoint, ...] = (),
    replay: dict[str, Handler] | None = None,
    progress: Progress | None = None,
) -> RestoreReport:
    """Restore the node of ``data_dir`` (empty; the caller holds its DataDirLock) from
    ``backup`` and the change journal in ``journal_dir`` (see the module)."""
    started = time.monotonic()
    backup, data_dir = Path(backup), Path(data_dir)
    handlers = REPLAY if replay is None else replay
    if journal_dir is None and not without_journal:
        raise FailedPrecondition(
            "this node has no change journal ([backup] journal_dir): a restore would lose "
            "every leaf after the backup, and the witnesses would record a rewrite"
            "; "
            "set [backup] journal_dir to the node's journal, or pass --without-journal "
            "knowing the witnesses will refuse the restored log",
        )
    if (data_dir / DB_FILE).exists() or (data_dir / KEYRING_FILE).exists():
        raise FailedPrecondition(
            f"{data_dir} already holds a node"
            "; "
            "move its records.db and keyring.json aside first (keep them until the "
            "restored node is checked)",
        )
    summary = verify_backup(backup, source, thorough=False, progress=progress)
    manifest = read_manifest(backup)
    if manifest["department"] != department:
        raise FailedPrecondition(
            f"the backup is of department {manifest['department']}, not {department}"
        )
    size = summary.audit_size
    report = RestoreReport(str(manifest["created_at"]), size)
    _place(backup, data_dir)
    try:
        keyring = Keyring.open(data_dir / KEYRING_FILE, source)
        store = SqlCipherStore.open(data_dir / DB_FILE, keyring.db_key_hex())
    except BaseException:
        _remove_placed(data_dir)
        raise
    try:
        journal = JournalContents(first_seq=size)
        if journal_dir is not None:
            path = _journal_path(journal_dir, department)
            journal = read_journal(path, journal_key(journal_seed(keyring)))
            _check_lineage(journal, store.audit_leaves, size)
        elif without_journal:
            report.warnings.append("restored without a change journal: nothing after the backup")
        with store.atomic():
            _replay(store, journal, size, report, progress)
            keyring = with_signing(keyring, store)  # the generations, rotations replayed
            audit = AuditLog(
                store, keyring.audit_signing_seed(), federation=federation, department=department
            )
            _reapply(Replay(store, keyring), journal, size, handlers=handlers, report=report)
            _check_witnesses(
                audit, witness_client, witnesses, report, strict=journal_dir is not None,
                verifiers=_audit_verifiers(keyring, federation, department),
            )  # fmt: skip
        if journal_dir is not None:
            store.attach_journal(ChangeJournal.open(journal_dir, department, journal_seed(keyring)))
        request = json.dumps(
            {"backup_created_at": manifest["created_at"], "audit_size": size}, sort_keys=True
        ).encode()
        audit.append(actor=actor.name, action=RESTORE_ACTION, request=request)
        audit.checkpoint()  # the restored node serves a checkpoint of its whole log at once
        report.audit_size = audit.size
    except BaseException:
        store.close()
        _remove_placed(data_dir)
        raise
    store.close()
    report.seconds = time.monotonic() - started
    log.info(
        "node.restored",
        leaves_replayed=report.leaves_replayed,
        ledger_replayed=report.ledger_replayed,
        reenter=len(report.reenter),
    )
    return report


def _replay(
    store: SqlCipherStore,
    journal: JournalContents,
    size: int,
    report: RestoreReport,
    progress: Progress | None,
) -> None:
    """Inside the restore's transaction: the leaves after ``size``, the ledger, participation."""
    tail = range(size, journal.next_seq)
    for n, seq in enumerate(tail):
        body = journal.leaves[seq - journal.first_seq]
        rows = merkle.append_hashes(seq, merkle.leaf_hash(body), store.audit_hash)
        store.audit_append(body, rows, seq)
        if progress is not None and n % 500 == 0:
            progress("replay", n, len(tail))
    report.leaves_replayed = len(tail)
    for entry in journal.ledger:
        try:
            store.append_ledger(entry)
            report.ledger_replayed += 1
        except AlreadyExists:
            pass
    for snapshot, participation in journal.participation:
        if store.participation(snapshot) is None:
            store.record_participation(snapshot, participation)
            report.participation_replayed += 1
    kept = set(store.key_transitions())
    for which, note in journal.transitions:
        if (which, note) not in kept:  # a rotation after the backup (or one seeded again)
            store.add_key_transition(which, note)
            kept.add((which, note))
            report.transitions_replayed += 1
    if progress is not None:
        progress("replay", len(tail), len(tail))


def _reapply(
    context: Replay,
    journal: JournalContents,
    size: int,
    *,
    handlers: dict[str, Handler],
    report: RestoreReport,
) -> None:
    """Inside the restore's transaction: apply :data:`REPLAY`'s leaves again, list the rest
    (but nothing of a child erased after the backup: it is not to be entered again)."""
    events = [
        (seq, AuditEvent.from_bytes(journal.leaves[seq - journal.first_seq]))
        for seq in range(size, journal.next_seq)
    ]
    erased = {e.subject for _, e in events if e.action == ERASE_ACTION and e.outcome == "OK"}
    for seq, event in events:
        if event.outcome != "OK":
            continue
        handler = handlers.get(event.action)
        if handler is not None:
            done = handler(context, event)
            if done is not None:
                report.reapplied.append(
                    {"seq": seq, "action": event.action, "pseudonym": event.subject, "done": done}
                )
        elif event.action in RECORD_CHANGES and event.subject not in erased:
            child_id = context.child_of(event.subject)
            report.reenter.append(
                Reentry(seq, event.time, event.actor, event.action, event.subject, child_id)
            )
        elif event.action in WARNINGS:
            report.warnings.append(WARNINGS[event.action].format(seq=seq))
