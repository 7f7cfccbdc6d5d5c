"""Rekeying the node's database: a new random SQLCipher key, crash-safe, the old one useless.

Why: a KEK rotation (node/kek_rotation.py) rewraps the database key but keeps it, so an old
``keyring.json`` from a backup plus an old KEK (or a leaked database key) still opens the
live database. A rekey gives the database a new random key (``PRAGMA rekey``, every page
re-encrypted) wrapped under the current KEK; afterwards no earlier keyring opens it. The
node must be stopped: the caller holds the :class:`~node.kek_rotation.DataDirLock`.

The steps, and why a rekey killed anywhere loses nothing:

1. ``keyring.json.rekey`` is written (atomically, synced): the same KEK, lookup key and
   generation with the new database key, and a note of the log's size and the operator.
   ``keyring.json`` is untouched.
2. ``PRAGMA rekey`` re-encrypts every page in one SQLCipher write transaction; its commit
   is the commit point (node/store/sqlcipher/rekey.py). Before it only the old key opens
   the database, after it only the new one.
3. The ``keys.rekey_db`` leaf naming the operator is appended (under the new key), unless
   the log has grown past the noted size (then it was appended before a crash).
4. ``keyring.json.rekey`` is renamed over ``keyring.json`` (atomic, directory synced).

Opening a node (:func:`settle_rekey`, called before the KEK is resolved) tries the
left-over ``.rekey`` keyring's database key: if it opens the database the rekey passed its
commit point and is finished (steps 3 and 4), otherwise the ``.rekey`` file is deleted.
Either way the node opens with exactly one database key, the same KEK opening both. No key
material appears in a leaf, log line or message.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import structlog

from childreg.errors import KeyProblem
from childreg.secretfile import fsync_path
from node.audit.actor import Actor
from node.audit.service import Audited
from node.crypto.keys import KekSource, Keyring, RewrappedKeyring, keyring_kek_entry, keyring_note
from node.kek_rotation import Fault, resolve_keyring, switch_keyring
from node.store.sqlcipher import SqlCipherStore
from node.store.sqlcipher.rekey import key_opens, rekey_file

__all__ = ["REKEY_ACTION", "Rekey", "Settled", "rekey_database", "rekey_path", "settle_rekey"]

log = structlog.get_logger("childreg.node.keys")

REKEY_ACTION: Final = "keys.rekey_db"
AuditedFactory = Callable[[SqlCipherStore, Keyring], Audited]


def rekey_path(keyring_path: Path) -> Path:
    """Where a rekey writes the keyring of the new database key before it switches."""
    keyring_path = Path(keyring_path)
    return keyring_path.with_name(keyring_path.name + ".rekey")


@dataclass(frozen=True)
class Rekey:
    """What a rekey did: how many pages it re-encrypted and how long it took."""

    pages: int
    seconds: float
    finished_interrupted: bool = False

    def to_json(self) -> dict[str, object]:
        """The summary as JSON-ready values (no key material)."""
        return {
            "pages_reencrypted": self.pages,
            "seconds": round(self.seconds, 3),
            "finished_interrupted_rekey": self.finished_interrupted,
        }


@dataclass(frozen=True)
class Settled:
    """How :func:`settle_rekey` found the data directory.

    ``state``: ``none`` (no rekey was interrupted), ``discarded`` (one before its commit
    point, undone), ``finished`` (one past it, completed), ``pending`` (one past it, left
    as it is because the caller may not change files; ``keyring`` then opens the node).
    """

    state: Literal["none", "discarded", "finished", "pending"]
    keyring: Keyring | None = None


def _request(note: dict[str, object]) -> bytes:
    return json.dumps(
        {"operation": "rekey-db", "log_size": note.get("log_size")},
        sort_keys=True,
        separators=(",", ":"),
    ).encode("utf-8")


def _finish(
    keyring_path: Path, db_path: Path, keyring: Keyring, audited: AuditedFactory, step: Fault
) -> None:
    """Steps 3 and 4: the leaf (once) and the switch."""
    pending = rekey_path(keyring_path)
    note = keyring_note(pending) or {}
    store = SqlCipherStore.open(db_path, keyring.db_key_hex())
    try:
        if store.audit_size() == note.get("log_size"):
            actor = Actor.parse(str(note.get("actor")))
            audited(store, keyring).change(actor, REKEY_ACTION, _request(note), lambda: None)
    finally:
        store.close()
    step("after-leaf")
    switch_keyring(pending, keyring_path)


def settle_rekey(
    keyring_path: Path,
    db_path: Path,
    source: KekSource,
    *,
    repair: bool,
    audited: AuditedFactory | None = None,
) -> Settled:
    """Settle a rekey that was interrupted, by which database key opens the database.

    With ``repair`` (the caller holds the data-directory lock; ``audited`` builds the audited
    service for the leaf) a rekey past its commit point is finished and one before it is
    discarded; without, nothing changes and a ``pending`` result carries the keyring that
    opens the node. A ``.rekey`` file the KEK does not open is left alone (the KEK's own
    error comes from opening ``keyring.json``).
    """
    keyring_path, db_path = Path(keyring_path), Path(db_path)
    pending = rekey_path(keyring_path)
    if not pending.exists():
        return Settled("none")
    try:
        candidate = Keyring.open(pending, source)
    except KeyProblem:
        return Settled("none")
    if not key_opens(db_path, candidate.db_key_hex()):
        if repair:
            pending.unlink(missing_ok=True)
            fsync_path(pending.parent)
            log.info("node.rekey.discarded")
        return Settled("discarded" if repair else "none")
    if not repair or audited is None:
        return Settled("pending", candidate)
    _finish(keyring_path, db_path, candidate, audited, lambda _: None)
    log.info("node.rekey.finished")
    return Settled("finished")


def rekey_database(
    keyring_path: Path,
    db_path: Path,
    source: KekSource,
    *,
    audited: AuditedFactory,
    actor: Actor,
    fault: Fault | None = None,
) -> Rekey:
    """Give the database a new random key (see the module); the caller holds the lock.

    A rekey interrupted past its commit point is finished instead of starting another;
    one before it is discarded and redone. ``fault`` is called at each step (tests kill
    the process there).
    """
    started = time.monotonic()
    step = fault or (lambda _: None)
    keyring_path, db_path = Path(keyring_path), Path(db_path)
    settled = settle_rekey(keyring_path, db_path, source, repair=True, audited=audited)
    if settled.state == "finished":
        return Rekey(0, time.monotonic() - started, finished_interrupted=True)
    old = resolve_keyring(keyring_path, db_path, source, repair=True)
    new = old.with_new_db_key()
    store = SqlCipherStore.open(db_path, old.db_key_hex())
    try:
        size = store.audit_size()
    finally:
        store.close()
    pending = rekey_path(keyring_path)
    step("before-pending")
    RewrappedKeyring(new, keyring_kek_entry(keyring_path)).write(
        pending, note={"operation": "rekey-db", "log_size": size, "actor": actor.name}
    )
    step("after-pending")
    try:
        pages = rekey_file(db_path, old.db_key_hex(), new.db_key_hex(), step)
    except BaseException:
        if not key_opens(db_path, new.db_key_hex()):  # rolled back: the old key stays
            pending.unlink(missing_ok=True)
        raise
    step("after-commit")
    _finish(keyring_path, db_path, new, audited, step)
    step("after-switch")
    log.info("node.rekey.done", pages=pages)
    return Rekey(pages, time.monotonic() - started)
