"""Fixtures of the witness's unit tests: a fresh store, and a witness of one node over it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.witness.logs import NODE, ORIGIN, WITNESS
from witness.cosigning import Witness
from witness.store import WitnessStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[WitnessStore]:
    """A fresh witness database per test."""
    s = WitnessStore(tmp_path / "state" / "witness.db")
    yield s
    s.close()


@pytest.fixture
def witness(store: WitnessStore) -> Witness:
    """A witness of the one node ORIGIN, whose cosignatures all state one fixed time."""
    return Witness(store, WITNESS, {ORIGIN: NODE.verifier()}, seconds=lambda: 1_700_000_000.0)
