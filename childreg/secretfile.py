"""Writing secret files (private keys, keyrings) safely: owner-only from the first byte.

A unique temporary file is created with O_EXCL and mode 0600 in the target's directory
(so a leftover or planted ``*.tmp`` — even a symlink — is never written through), synced,
atomically renamed over the target, and the directory entry synced too.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_private(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Atomically replace ``path`` with ``data`` (readers see the old or the new file),
    readable and writable by the owner only unless ``mode`` says otherwise (a certificate
    is public: 0o644)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_path(path.parent)


def fsync_path(path: Path) -> None:
    """Make ``path``'s contents durable (a file), or a rename or delete in it (a directory)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
