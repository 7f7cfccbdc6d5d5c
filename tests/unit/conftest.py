"""Fixtures shared by the unit tests of the records domain and statistics: a keyring, each store.

A test module that defines a fixture of the same name (test_keys.py's ``keyring``,
test_sqlcipher_store.py's ``store``) uses its own instead.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.crypto.keys import KekSource, Keyring, generate_key_file
from node.store.base import RecordStore
from node.store.memory import MemoryStore
from node.store.sqlcipher import SqlCipherStore


@pytest.fixture
def keyring(tmp_path: Path) -> Keyring:
    """A keyring made with a key file."""
    generate_key_file(tmp_path / "kek.key")
    return Keyring.create(tmp_path / "keyring.json", KekSource.from_key_file(tmp_path / "kek.key"))


@pytest.fixture(params=["memory", "sqlcipher"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RecordStore]:
    """Each store implementation, empty."""
    made: RecordStore = (
        MemoryStore()
        if request.param == "memory"
        else SqlCipherStore.open(tmp_path / "node.db", secrets.token_hex(32), create=True)
    )
    yield made
    made.close()
