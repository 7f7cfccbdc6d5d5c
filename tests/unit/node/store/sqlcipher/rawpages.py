"""Reading a SQLCipher 4 file's pages (and its WAL's frames) decrypted with the raw key.

For tests that look for what a deleted row left behind: the logical view (``SELECT``)
cannot show a freed cell or an old frame, the decrypted page can. SQLCipher 4 defaults:
4096-byte pages, AES-256-CBC with the raw key, 80 reserved bytes per page (16 of IV first),
the first 16 bytes of page 1 the file's salt (left out).
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

PAGE = 4096
RESERVE = 80
_WAL_HEADER = 32
_FRAME_HEADER = 24


def _decrypt(key: bytes, page: bytes, pgno: int) -> bytes:
    """One page's plaintext (without its salt or reserved bytes)."""
    iv = page[PAGE - RESERVE : PAGE - RESERVE + 16]
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return decryptor.update(page[16 if pgno == 1 else 0 : PAGE - RESERVE]) + decryptor.finalize()


def file_pages(path: Path, key: bytes) -> list[bytes]:
    """Every page of the database file, decrypted."""
    data = path.read_bytes()
    return [_decrypt(key, data[i : i + PAGE], i // PAGE + 1) for i in range(0, len(data), PAGE)]


def wal_frames(path: Path, key: bytes) -> list[bytes]:
    """Every frame's page in the database's ``-wal`` file (valid or stale), decrypted."""
    wal = path.with_name(path.name + "-wal")
    data = wal.read_bytes() if wal.exists() else b""
    frames = []
    at = _WAL_HEADER
    while at + _FRAME_HEADER + PAGE <= len(data):
        pgno = int.from_bytes(data[at : at + 4], "big")
        frames.append(_decrypt(key, data[at + _FRAME_HEADER : at + _FRAME_HEADER + PAGE], pgno))
        at += _FRAME_HEADER + PAGE
    return frames
