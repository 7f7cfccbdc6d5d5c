"""Where the guardian's receipts go on a staff member's machine, and how they are written.

Why one place: a consent's grant and withdrawal and a record's erasure each hand the
guardian a receipt the node rendered (HTML, PDF, JSON: node/consent/receipts.py); the
command line writes them all the same way, owner-readable only (they name the guardian),
into the directory given or, by default, :func:`default_receipt_dir`.
"""

from __future__ import annotations

import os
from pathlib import Path

from childreg.secretfile import write_private


def default_receipt_dir() -> Path:
    """Where receipts go when no directory is given: ``$XDG_DATA_HOME/childreg/receipts``
    (``~/.local/share/childreg/receipts`` when XDG_DATA_HOME is unset): the staff member's
    own, private, kept across sessions."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "childreg" / "receipts"


def write_receipt(
    directory: Path | None, stem: str, html: str, pdf: bytes, json_text: str
) -> list[str]:
    """Write ``stem``.html, .pdf and .json (owner-only) into ``directory`` (the default
    receipt directory when None, made owner-only if new); the paths written."""
    directory = directory or default_receipt_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    written = []
    for suffix, body in (
        (".html", html.encode("utf-8")),
        (".pdf", pdf),
        (".json", json_text.encode("utf-8")),
    ):
        path = directory / (stem + suffix)
        write_private(path, body)
        written.append(str(path))
    return written
