"""Opening the node's SQLCipher 4 file: the key, the cipher checks, the pragmas, the authorizer.

A stolen disk or backup must yield nothing: pages are encrypted (SQLCipher, raw 256-bit
key, never a passphrase), ``secure_delete`` overwrites freed pages and temporary tables
stay in memory. Once the schema is migrated (:mod:`node.store.migrations`), an SQL
authorizer allows only reading and writing rows, transactions and a short list of pragmas:
no ATTACH, export, extension, key or cipher pragma, no change of those settings, and no
CREATE, DROP or ALTER of anything. :func:`open_connections` gives the store its two
connections set up this way: the writer and a read-only reader.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Final

import sqlcipher3

from childreg.errors import FailedPrecondition, KeyProblem
from node.crypto.keys import HEX64
from node.store import migrations

#: Settings a SQLCipher 4 database must have (beyond ``cipher_version`` 4.x).
_EXPECTED_CIPHER: Final = {
    "cipher_hmac_algorithm": "HMAC_SHA512",
    "cipher_plaintext_header_size": "0",
}
#: Set on both connections before the authorizer is installed.
_PRAGMAS: Final = (
    "synchronous = FULL",
    "secure_delete = ON",
    "temp_store = MEMORY",
    "foreign_keys = ON",
    "cache_size = -8192",  # 8 MiB per connection; count tables ran as fast as with 64 MiB
)
#: What the authorizer lets through once the connection is set up.
_ALLOWED_ACTIONS: Final = frozenset(
    {
        sqlcipher3.SQLITE_SELECT,
        sqlcipher3.SQLITE_READ,
        sqlcipher3.SQLITE_INSERT,
        sqlcipher3.SQLITE_UPDATE,
        sqlcipher3.SQLITE_DELETE,
        sqlcipher3.SQLITE_TRANSACTION,
        sqlcipher3.SQLITE_SAVEPOINT,
        sqlcipher3.SQLITE_RECURSIVE,
        sqlcipher3.SQLITE_FUNCTION,  # except _DENIED_FUNCTIONS
        sqlcipher3.SQLITE_PRAGMA,  # only _READABLE_PRAGMAS (no value) and _ALLOWED_PRAGMAS
    }
)
_READABLE_PRAGMAS: Final = frozenset(
    {
        "journal_mode",
        "synchronous",
        "secure_delete",
        "temp_store",
        "foreign_keys",
        "cache_size",
        "query_only",
        "user_version",
        "data_version",
    }
)
_ALLOWED_PRAGMAS: Final = frozenset({"wal_checkpoint"})  # close() truncates the WAL
_DENIED_FUNCTIONS: Final = frozenset({"sqlcipher_export", "load_extension", "fts3_tokenizer"})


def _authorize(action: int, arg1: str | None, arg2: str | None, *_: object) -> int:
    """Allow row reads and writes, transactions and a few pragmas; deny everything else.

    Denied after set-up: ATTACH and DETACH (copying into a plaintext file), key and cipher
    pragmas, any pragma that changes a setting (secure_delete, temp_store, journal_mode,
    writable_schema, ...), CREATE / DROP / ALTER of tables, indexes, views, triggers and
    virtual tables, and the functions in ``_DENIED_FUNCTIONS``.
    """
    if action not in _ALLOWED_ACTIONS:
        return int(sqlcipher3.SQLITE_DENY)
    if action == sqlcipher3.SQLITE_PRAGMA:
        name = (arg1 or "").lower()
        if name in _ALLOWED_PRAGMAS or (arg2 is None and name in _READABLE_PRAGMAS):
            return int(sqlcipher3.SQLITE_OK)
        return int(sqlcipher3.SQLITE_DENY)
    if action == sqlcipher3.SQLITE_FUNCTION and (arg2 or "").lower() in _DENIED_FUNCTIONS:
        return int(sqlcipher3.SQLITE_DENY)
    return int(sqlcipher3.SQLITE_OK)


def open_connections(path: Path, key_hex: str, *, create: bool = False) -> tuple[Any, Any]:
    """The writer (schema migrated, WAL) and the read-only reader of the database at ``path``.

    ``key_hex`` is the 64-hex-digit raw key; with ``create`` a missing file is made (owner
    only). If anything fails, every connection opened is closed and a file made here is
    removed again.
    """
    path = Path(path)
    if not isinstance(key_hex, str) or not HEX64.fullmatch(key_hex):
        raise KeyProblem(
            "the database key must be exactly 64 hexadecimal characters",
            hint="pass the key from the node's keyring (Keyring.db_key_hex())",
        )
    if not create and not path.is_file():
        raise FailedPrecondition(
            f"no database at {path}; initialise the node's data directory first"
        )
    created = False
    if create and not path.exists():
        # Owner-only from the start; SQLite gives -wal and -shm the same mode.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        created = True
    opened: list[Any] = []
    try:
        writer = _connect(path, key_hex, opened)
        if writer.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
            raise FailedPrecondition(f"cannot switch {path} to WAL journal mode")
        migrations.apply(writer)
        writer.set_authorizer(_authorize)
        reader = _connect(path, key_hex, opened)
        reader.execute("PRAGMA query_only = ON")
        reader.set_authorizer(_authorize)
    except BaseException:
        for conn in reversed(opened):
            conn.close()
        if created:
            for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                leftover.unlink(missing_ok=True)
        raise
    return writer, reader


def _connect(path: Path, key_hex: str, opened: list[Any]) -> Any:
    """A keyed connection with the store's pragmas, appended to ``opened``."""
    conn = sqlcipher3.connect(str(path), check_same_thread=False, isolation_level=None)
    opened.append(conn)
    _key(conn, path, key_hex)
    for pragma in _PRAGMAS:
        conn.execute(f"PRAGMA {pragma}")
    return conn


def _key(conn: Any, path: Path, key_hex: str) -> None:
    # Unknown pragmas are ignored, so this is harmless where it is not supported.
    with contextlib.suppress(sqlcipher3.DatabaseError):
        conn.execute("PRAGMA cipher_log_level = NONE")
    conn.execute(f"PRAGMA key = \"x'{key_hex}'\"")
    row = conn.execute("PRAGMA cipher_version").fetchone()
    version = str(row[0]) if row else ""
    if not version.startswith("4."):
        raise FailedPrecondition(f"SQLCipher 4.x is required, found {version or 'no SQLCipher'}")
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlcipher3.DatabaseError:
        raise KeyProblem(
            f"the database key does not open {path}",
            hint="use the keyring.json from the same data directory as the database "
            "(or the file is not a childreg database)",
        ) from None
    for pragma, expected in _EXPECTED_CIPHER.items():
        got = conn.execute(f"PRAGMA {pragma}").fetchone()
        if not got or str(got[0]) != expected:
            raise FailedPrecondition(f"{path} has unexpected SQLCipher setting {pragma}")
