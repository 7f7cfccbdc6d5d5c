"""Backing up a serving node, and verifying a backup: one moment, as encrypted as the node.

Why: the department must be able to lose its disk and come back; the backup must neither
stop the node nor be weaker than it. A backup is a directory of three files:

- ``records.db``: an online copy of the SQLCipher database (node/store/sqlcipher/backup.py),
  one snapshot, encrypted with the same database key as the live file;
- ``keyring.json``: the node's keyring as it was (every key in it wrapped by the KEK);
- ``manifest.json``: the department, the log's origin, the audit log's size and root at
  the snapshot, counts, the KEK generation, each file's SHA-256, and a keyed MAC over
  all of it (the key is derived from the keyring, so only the node's KEK checks it).

The KEK is never written into a backup: it stays where the node's configuration points
(a key file elsewhere, or a passphrase), and opening a backup needs it, as opening the
node does. A backup takes no lock and writes no audit leaf: it discloses nothing (the copy
is as encrypted as the store). What happens after it is in the change journal
(node/journal.py) and comes back with ``childreg node restore`` (node/restore.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from childreg.audit import merkle
from childreg.audit.checkpoint import childreg_origin
from childreg.errors import FailedPrecondition, KeyProblem
from childreg.secretfile import fsync_path
from node.crypto.keys import KekSource, Keyring
from node.store.sqlcipher.backup import CopyReader, online_copy

__all__ = [
    "DB_FILE",
    "FORMAT",
    "KEYRING_FILE",
    "MANIFEST_FILE",
    "BackupSummary",
    "make_backup",
    "verify_backup",
]

FORMAT: Final = "childreg-node-backup/1"
DB_FILE: Final = "records.db"
KEYRING_FILE: Final = "keyring.json"
MANIFEST_FILE: Final = "manifest.json"

#: Called with (stage, done, total); stages: "copy" (pages), "digest", "verify".
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class BackupSummary:
    """What a backup holds (the manifest without its MAC), and how long the work took."""

    manifest: dict[str, Any]
    seconds: float

    @property
    def audit_size(self) -> int:
        """The audit log's size at the backup's moment."""
        return int(self.manifest["audit_size"])

    def to_json(self) -> dict[str, Any]:
        """The summary as JSON-ready values (no key material, no personal data)."""
        return {**self.manifest, "seconds": round(self.seconds, 3)}


def _manifest_key(keyring: Keyring) -> bytes:
    return hashlib.blake2b(
        keyring.audit_signing_seed(1), digest_size=32, person=b"childreg-backup"
    ).digest()


def _canonical(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _copy_facts(db: Path, keyring: Keyring) -> dict[str, Any]:
    with CopyReader(db, keyring.db_key_hex()) as copy:
        size = copy.audit_size()
        return {
            "audit_size": size,
            "audit_root": merkle.root(size, copy.audit_hash).hex(),
            "kek_generation": copy.kek_generation(),
            **copy.counts(),
        }


def make_backup(
    data_dir: Path,
    source: KekSource,
    out: Path,
    *,
    federation: str,
    department: str,
    progress: Progress | None = None,
) -> BackupSummary:
    """Back up the node whose data directory is ``data_dir`` into the new directory ``out``,
    while it serves (FailedPrecondition if ``out`` exists and is not empty, or a KEK
    rotation is under way)."""
    started = time.monotonic()
    data_dir, out = Path(data_dir), Path(out)
    keyring_path = data_dir / KEYRING_FILE
    if (data_dir / f"{KEYRING_FILE}.next").exists():
        raise FailedPrecondition(
            "a KEK rotation is under way or was interrupted in this data directory"
            "; "
            "finish it (start the node, or run `childreg node rotate-kek` again), "
            "then back up",
        )
    if out.exists() and any(out.iterdir()):
        raise FailedPrecondition(f"{out} is not empty; give a new directory for each backup")
    keyring_bytes = keyring_path.read_bytes()
    keyring = Keyring.open(keyring_path, source)
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = out / DB_FILE
    online_copy(
        data_dir / DB_FILE,
        keyring.db_key_hex(),
        db,
        None if progress is None else lambda done, total: progress("copy", done, total),
    )
    ring = out / KEYRING_FILE
    fd = os.open(ring, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, keyring_bytes)
        os.fsync(fd)
    finally:
        os.close(fd)
    if progress is not None:
        progress("digest", 0, 2)
    facts = _copy_facts(db, keyring)
    if facts["kek_generation"] != keyring.generation:
        raise FailedPrecondition("the keyring changed while the backup ran (a KEK rotation?)")
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "department": department,
        "origin": childreg_origin(federation, department),
        "created_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        **facts,
        "files": {
            name: {"sha256": _sha256(out / name), "bytes": (out / name).stat().st_size}
            for name in (DB_FILE, KEYRING_FILE)
        },
    }
    mac = hmac.new(_manifest_key(keyring), _canonical(manifest), "blake2b").hexdigest()
    (out / MANIFEST_FILE).write_text(
        json.dumps({**manifest, "mac": mac}, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    fsync_path(out / MANIFEST_FILE)
    fsync_path(out)
    if progress is not None:
        progress("digest", 2, 2)
    return BackupSummary(manifest, time.monotonic() - started)


def _leaves_match_tree(copy: CopyReader) -> bool:
    """Whether the copy's audit leaves hash to its stored Merkle rows (recomputed in full)."""
    size = copy.audit_size()
    tree: dict[tuple[int, int], bytes] = {}
    for start in range(0, size, 1000):
        for seq, body in enumerate(copy.audit_leaves(start, min(start + 1000, size)), start):
            rows = merkle.append_hashes(
                seq, merkle.leaf_hash(body), lambda level, i: tree[(level, i)]
            )
            tree.update({(level, i): h for level, i, h in rows})
    return merkle.root(size, lambda level, i: tree[(level, i)]) == merkle.root(
        size, copy.audit_hash
    )


def _check_copy(db: Path, keyring: Keyring, *, thorough: bool) -> None:
    with CopyReader(db, keyring.db_key_hex()) as copy:
        integrity = copy.integrity(thorough=thorough)
        if thorough and integrity == "ok" and not _leaves_match_tree(copy):
            integrity = "the audit leaves do not hash to the stored Merkle tree"
    if integrity != "ok":
        raise FailedPrecondition(
            f"the backup's database fails SQLite's integrity check: {integrity}"
        )


def read_manifest(backup: Path) -> dict[str, Any]:
    """The manifest of the backup in ``backup`` (FailedPrecondition if there is none)."""
    path = Path(backup) / MANIFEST_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise FailedPrecondition(
            f"{backup} holds no readable backup manifest"
            "; "
            "give a directory made by `childreg node backup`",
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise FailedPrecondition(f"{path} is not a {FORMAT} manifest")
    return data


def verify_backup(
    backup: Path, source: KekSource, *, thorough: bool = True, progress: Progress | None = None
) -> BackupSummary:
    """Check a backup with the KEK: the keyring opens, the manifest's MAC and digests hold,
    the database opens read-only, passes SQLite's integrity check and its audit leaves hash
    to its stored Merkle tree (when not ``thorough``, a restore, whose digests already prove
    the file is the one verified after the backup: SQLite's quick check only), and its audit
    log has the manifest's size and root. FailedPrecondition (or
    KeyProblem) saying what is wrong."""
    started = time.monotonic()
    backup = Path(backup)
    data = read_manifest(backup)
    mac = str(data.pop("mac", ""))
    try:
        keyring = Keyring.open(backup / KEYRING_FILE, source)
    except KeyProblem as problem:
        raise KeyProblem(
            f"the backup's keyring does not open with this KEK: {problem}",
            hint="give the KEK the node had when the backup was made (before any later "
            "KEK rotation)",
        ) from None
    want = hmac.new(_manifest_key(keyring), _canonical(data), "blake2b").hexdigest()
    if not hmac.compare_digest(mac, want):
        raise FailedPrecondition(f"the manifest of {backup} was changed (its MAC is wrong)")
    files: dict[str, Any] = data["files"]
    for i, name in enumerate((DB_FILE, KEYRING_FILE)):
        if progress is not None:
            progress("digest", i, 2)
        path = backup / name
        if not path.is_file() or _sha256(path) != files[name]["sha256"]:
            raise FailedPrecondition(f"{path} is missing or differs from the manifest")
    if progress is not None:
        progress("verify", 0, 1)
    _check_copy(backup / DB_FILE, keyring, thorough=thorough)
    facts = _copy_facts(backup / DB_FILE, keyring)
    for name, value in facts.items():
        if data.get(name) != value:
            raise FailedPrecondition(f"the backup's database differs from its manifest in {name}")
    if progress is not None:
        progress("verify", 1, 1)
    return BackupSummary(data, time.monotonic() - started)
