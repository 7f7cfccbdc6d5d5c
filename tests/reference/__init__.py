"""Public reference files the tests check against, with a committed copy of each.

The originals are in the federation's shared folder, ``../shared`` beside the clone: the
design's published known-answer vectors and the published 2023/24 figures. Tests are the only
code that may refer to that folder. A clean clone may not have it beside it, so the tests read
through :func:`reference_file`: the original when present, else the committed copy in this
folder. tests/unit/childreg/test_reference_copies.py compares each copy with its original byte
for byte when the shared folder is there, and is skipped, saying so, when it is not.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
#: The federation's shared folder (may be absent: then only the committed copies are used).
SHARED = (HERE.parents[1] / ".." / "shared").resolve()
FILES = (
    "vectors/merkle_rfc9162.json",
    "vectors/signed_note_ed25519.json",
    "vectors/paseto_v4_public.json",
    "data/seed_statistics.csv",
)


def reference_file(name: str) -> Path:
    """The reference file ``name`` (e.g. "vectors/merkle_rfc9162.json"): the original in the
    federation's shared folder when present, else the committed copy."""
    original = SHARED / name
    return original if original.is_file() else HERE / name
