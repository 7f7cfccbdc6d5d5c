"""What the SQLCipher store's tests share: a raw connection to look inside the file, records."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import sqlcipher3

from childreg import codes
from node.store.base import (
    NewChild,
    StoredChild,
    StoredPlacement,
)
from tests.store_rows import new_child_row

YEAR = "2023/24"
REF = codes.reference_date(YEAR)


def raw_connection(path: Path, key_hex: str) -> Any:
    """A plain keyed sqlcipher3 connection (no authorizer), to look inside the file."""
    conn = sqlcipher3.connect(str(path), isolation_level=None)
    conn.execute(f"PRAGMA key = \"x'{key_hex}'\"")
    return conn


def a_child(child_id: str = "C1") -> StoredChild:
    """A stored child."""
    return StoredChild(child_id, 1, b"w", None, dt.date(2015, 1, 1), "male", "shaki", b"s")


def placed(child_id: str) -> NewChild:
    """A new male child placed in 2023/24, for insert_new_children."""
    return new_child_row(a_child(child_id), StoredPlacement(child_id, YEAR, "preschool", None))
