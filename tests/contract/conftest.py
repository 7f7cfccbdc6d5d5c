"""The one two-store fixture of the contract suite: every test runs on each store, empty.

Other test folders that need both stores should take this fixture's ``STORES``
(tests/contract/stores.py) rather than define their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from node.store.base import RecordStore
from tests.contract.stores import STORES


@pytest.fixture(params=sorted(STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RecordStore]:
    """Each store implementation, empty."""
    made = STORES[request.param](tmp_path)
    yield made
    made.close()
