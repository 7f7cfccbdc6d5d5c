"""The fixtures of the SQLCipher store's own tests: a random key, a database path, a fresh store.

The ``store`` here is the SQLCipher store alone; it stands in for the two-store
``store`` of tests/conftest.py below this folder.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.store.sqlcipher import SqlCipherStore


@pytest.fixture
def key_hex() -> str:
    """A random database key."""
    return secrets.token_hex(32)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where the database lives."""
    return tmp_path / "node.db"


@pytest.fixture
def store(db_path: Path, key_hex: str) -> Iterator[SqlCipherStore]:
    """A fresh SQLCipher store."""
    made = SqlCipherStore.open(db_path, key_hex, create=True)
    yield made
    made.close()
