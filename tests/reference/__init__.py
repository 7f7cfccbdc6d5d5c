"""Public reference files the tests check against, with a committed copy of each.

The originals live in ../shared (the design's published known-answer vectors and the
published 2023/24 figures). A clean clone may not have ../shared beside it, so the tests
read through :func:`reference_file`: the original when present, else the committed copy —
and tests/unit/childreg/test_reference_copies.py keeps the copies byte-identical to the originals.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = (HERE.parents[1] / ".." / "shared").resolve()
FILES = (
    "vectors/merkle_rfc9162.json",
    "vectors/signed_note_ed25519.json",
    "vectors/paseto_v4_public.json",
    "data/seed_statistics.csv",
)


def reference_file(name: str) -> Path:
    """The reference file ``name`` (e.g. "vectors/merkle_rfc9162.json")."""
    original = SHARED / name
    return original if original.is_file() else HERE / name
