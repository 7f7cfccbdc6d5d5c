"""The committed copies of the public reference files equal the originals in ../shared."""

from __future__ import annotations

import pytest

from tests.reference import FILES, HERE, SHARED


@pytest.mark.parametrize("name", FILES)
def test_the_copy_is_the_original(name: str) -> None:
    """Byte for byte (skipped only where ../shared is not beside the clone)."""
    original = SHARED / name
    if not original.is_file():
        pytest.skip("../shared is not beside this clone; the committed copy is used")
    assert (HERE / name).read_bytes() == original.read_bytes()
