"""The committed copies of the public reference files equal the originals in the federation's
shared folder (../shared, beside the clone) when that folder is present; skipped otherwise.

tests/reference/ holds the copies the tests read in a clean clone; this is the one check that
they have not drifted from the published originals. Tests are the only code that may refer to
../shared.
"""

from __future__ import annotations

import pytest

from tests.reference import FILES, HERE, SHARED


@pytest.mark.parametrize("name", FILES)
def test_the_copy_is_the_original(name: str) -> None:
    """Each committed copy is byte for byte its original in the federation's shared folder, and
    the comparison is skipped, saying why, where that folder or file is not beside the clone."""
    original = SHARED / name
    if not SHARED.is_dir():
        pytest.skip(
            f"the federation's shared folder {SHARED} is not beside this clone, so there is no "
            f"original to compare with; the tests read the committed copy tests/reference/{name}"
        )
    if not original.is_file():
        pytest.skip(
            f"the federation's shared folder has no {name}; the tests read the committed copy "
            f"tests/reference/{name}"
        )
    assert (HERE / name).read_bytes() == original.read_bytes()
