"""Rotating the node's key-encryption key (KEK), crash-safe: the node opens with one KEK.

Why: staff leave and key files leak; the KEK wraps the database key, the lookup key and
every child's data key, so a rotation rewraps all of them under a new KEK and leaves the
old one opening nothing. The node must be stopped: :class:`DataDirLock` (held by a serving
node for its whole life) makes the rotation refuse while it serves.

The steps, and why a rotation killed anywhere loses nothing:

1. ``keyring.json.next`` is written (atomically, synced) beside ``keyring.json``: the same
   database and lookup keys under the new KEK, one generation on. ``keyring.json`` is
   untouched, so the node still opens with the old KEK only.
2. One SQLCipher transaction rewraps every child's key under the new KEK (its
   ``key_version`` becomes the new generation), sets ``kek_state.generation`` to the new
   generation and appends the ``keys.rotate`` audit leaf. Its COMMIT is the commit point:
   before it, the database is as it was; after it, every child key opens with the new KEK
   only.
3. ``keyring.json.next`` is renamed over ``keyring.json`` (atomic, directory synced).

Opening a node (:func:`resolve_keyring`) compares the keyring's generation with the
database's: after a crash before the commit point the old KEK opens the node (and a
serving node deletes the left-over ``.next``); after it, only the new KEK opens it (and
finishes step 3); the old KEK is refused with a message saying which KEK to use. The
database key itself does not change (rekeying the database is a separate operation), so
the database file is never rewritten here. No key material appears in a leaf, log line or
message.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final

import structlog

from childreg.errors import FailedPrecondition, KeyProblem
from childreg.secretfile import fsync_path
from node.audit.actor import Actor
from node.audit.service import Audited
from node.crypto.keys import KekSource, Keyring, keyring_generation
from node.store.sqlcipher import SqlCipherStore

__all__ = [
    "ROTATE_ACTION",
    "DataDirLock",
    "Rotation",
    "next_keyring_path",
    "resolve_keyring",
    "rotate_kek",
    "switch_keyring",
]

log = structlog.get_logger("childreg.node.keys")

ROTATE_ACTION: Final = "keys.rotate"
LOCK_NAME: Final = "node.lock"

#: The lock file descriptors this process holds; a forked child closes its copies, so an
#: import worker outliving a killed node never keeps the data directory locked.
_HELD: set[int] = set()


def _close_held_in_child() -> None:
    for fd in list(_HELD):
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


os.register_at_fork(after_in_child=_close_held_in_child)


class DataDirLock:
    """An exclusive lock on a node's data directory: held by a serving node and by a
    rotation, so neither starts while the other runs."""

    def __init__(self, data_dir: Path) -> None:
        self._path = Path(data_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> DataDirLock:
        """Take the lock now or raise FailedPrecondition saying what holds it."""
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise FailedPrecondition(
                f"the node's data directory {self._path.parent} is in use: the node is "
                "serving, or a KEK rotation is running; stop the node first (for example "
                "`systemctl stop childreg-node`) and try again"
            ) from None
        self._fd = fd
        _HELD.add(fd)
        return self

    def release(self) -> None:
        """Release the lock (idempotent)."""
        if self._fd is not None:
            _HELD.discard(self._fd)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DataDirLock:
        return self.acquire()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


@dataclass(frozen=True)
class Rotation:
    """What a rotation did: the generations, how many child keys, and how long it took."""

    from_generation: int
    to_generation: int
    children: int
    seconds: float
    finished_interrupted: bool = False

    def to_json(self) -> dict[str, object]:
        """The summary as JSON-ready values (no key material)."""
        return {
            "from_generation": self.from_generation,
            "to_generation": self.to_generation,
            "children_rewrapped": self.children,
            "seconds": round(self.seconds, 3),
            "finished_interrupted_rotation": self.finished_interrupted,
        }


class RotationCommitted(KeyProblem):
    """The old KEK was given, but a rotation to a new KEK passed its commit point."""


def next_keyring_path(keyring_path: Path) -> Path:
    """Where a rotation writes the new keyring before it switches."""
    keyring_path = Path(keyring_path)
    return keyring_path.with_name(keyring_path.name + ".next")


def _db_generation(db_path: Path, keyring: Keyring) -> int:
    store = SqlCipherStore.open(db_path, keyring.db_key_hex())
    try:
        return store.kek_generation()
    finally:
        store.close()


def switch_keyring(next_path: Path, keyring_path: Path) -> None:
    """Rename ``next_path`` over ``keyring_path`` (atomic) and sync the directory."""
    os.replace(next_path, keyring_path)
    fsync_path(keyring_path.parent)


def resolve_keyring(
    keyring_path: Path, db_path: Path, source: KekSource, *, repair: bool
) -> Keyring:
    """The keyring that opens this node with the KEK from ``source``, after any
    interrupted rotation is settled by the database's KEK generation.

    With ``repair`` (the caller holds the :class:`DataDirLock`) a rotation past its commit
    point is finished (``.next`` renamed over the keyring) and one before it is discarded
    (``.next`` deleted); without, the files are left as they are. KeyProblem if this KEK
    does not open the node, saying which one does.
    """
    keyring_path, db_path = Path(keyring_path), Path(db_path)
    next_path = next_keyring_path(keyring_path)
    from_next = False
    try:
        keyring = Keyring.open(keyring_path, source)
    except KeyProblem as problem:
        if not next_path.exists():
            rotated = keyring_generation(keyring_path) or 1
            if rotated > 1 and "does not open" in str(problem):
                raise KeyProblem(
                    str(problem),
                    hint=f"the KEK was rotated (generation {rotated}, `childreg node "
                    "rotate-kek`); point kek_file at the KEK of the last rotation",
                ) from None
            raise
        try:
            keyring = Keyring.open(next_path, source)
        except KeyProblem:
            raise KeyProblem(
                f"neither the keyring at {keyring_path} nor the interrupted rotation's "
                f"{next_path.name} opens with this KEK",
                hint="give the node's KEK (the old one, or the new one of the rotation)",
            ) from None
        from_next = True
    in_db = _db_generation(db_path, keyring)
    if in_db == keyring.generation:
        if repair and from_next:
            switch_keyring(next_path, keyring_path)
            log.info("node.kek_rotation.finished", generation=in_db)
        elif repair and next_path.exists():
            next_path.unlink()
            fsync_path(next_path.parent)
            log.info("node.kek_rotation.discarded", generation=in_db)
        return keyring
    if from_next:
        raise KeyProblem(
            "this is the new KEK of a KEK rotation that stopped before its commit point; "
            "the node still opens with its old KEK only",
            hint="keep kek_file pointing at the old KEK, then run `childreg node rotate-kek` again",
        )
    if next_path.exists() and keyring_generation(next_path) == in_db:
        raise RotationCommitted(
            "a KEK rotation passed its commit point: the old KEK opens nothing any more",
            hint="point kek_file in the node configuration at the new KEK, then start the "
            "node or run `childreg node rotate-kek` again; either finishes the switch",
        )
    raise KeyProblem(
        f"the keyring at {keyring_path} is of KEK generation {keyring.generation} but the "
        f"database's child keys are of generation {in_db}",
        hint="the keyring is not the one of this database (restored from another time?); "
        "restore the keyring.json of the same moment as the database",
    )


#: Called with the step just reached; tests kill the process there.
Fault = Callable[[str], None]
Progress = Callable[[int, int], None]


def rotate_kek(
    keyring_path: Path,
    db_path: Path,
    old_source: KekSource,
    new_source: KekSource,
    *,
    audited: Callable[[SqlCipherStore, Keyring], Audited],
    actor: Actor,
    progress: Progress | None = None,
    fault: Fault | None = None,
) -> Rotation:
    """Rewrap the keyring and every child key under ``new_source``'s KEK (see the module).

    The caller holds the :class:`DataDirLock`. ``audited`` builds the audited service
    over the opened store; its one ``keys.rotate`` leaf names ``actor`` and commits with
    the rewrapped keys. A rotation interrupted past its commit point is finished instead.
    """
    started = time.monotonic()
    step = fault or (lambda _: None)
    keyring_path, db_path = Path(keyring_path), Path(db_path)
    next_path = next_keyring_path(keyring_path)
    try:
        old = resolve_keyring(keyring_path, db_path, old_source, repair=True)
    except KeyProblem as problem:
        # Past its commit point (or switched already) a rotation to this new KEK is
        # finished, not redone; otherwise the old KEK's refusal stands.
        try:
            done = resolve_keyring(keyring_path, db_path, new_source, repair=True)
        except KeyProblem:
            raise problem from None
        return Rotation(done.generation - 1, done.generation, 0, time.monotonic() - started, True)
    new = old.rewrapped(new_source)
    target = new.keyring.generation
    step("before-next")
    new.write(next_path)
    step("after-next")
    request = json.dumps(
        {"from_generation": old.generation, "to_generation": target, "kek": new_source.kind},
        sort_keys=True,
        separators=(",", ":"),
    ).encode("utf-8")
    store = SqlCipherStore.open(db_path, old.db_key_hex())
    try:

        def rewrap() -> int:
            total, done = store.child_count(), 0
            if progress is not None:
                progress(0, total)
            for page in store.wrapped_keys():
                store.put_wrapped_keys(
                    [
                        (row, *old.rewrap_child_key(child_id, version, wrapped, new.keyring))
                        for row, child_id, version, wrapped in page
                    ]
                )
                done += len(page)
                if progress is not None:
                    progress(done, total)
                step("batch")
            store.set_kek_generation(target)
            step("before-commit")
            return done

        children = audited(store, old).change(actor, ROTATE_ACTION, request, rewrap)
    except BaseException:
        try:
            committed = store.kek_generation() == target
        except Exception:  # unknown: keep .next, the next open settles it
            committed = True
        store.close()
        if not committed:  # rolled back: the old KEK stays, the new keyring goes
            next_path.unlink(missing_ok=True)
        raise
    store.close()
    step("after-commit")
    switch_keyring(next_path, keyring_path)
    step("after-switch")
    log.info("node.kek_rotation.done", generation=target, children=children)
    return Rotation(old.generation, target, children, time.monotonic() - started)
