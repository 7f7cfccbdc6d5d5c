"""The stored values (node/store/types.py): the sealed-fields blob keeps its byte layout."""

from __future__ import annotations

from node.store.base import (
    pack_sealed,
    unpack_sealed,
)


def test_sealed_fields_blob_layout_is_unchanged() -> None:
    """Assessment fields are packed as (u16 name length, name, u32 length, value)* by name."""
    fields = {"supports": b"\x00s", "diagnoses": b"", "é": b"xyz"}
    assert pack_sealed(fields) == (
        b"\x00\x09diagnoses\x00\x00\x00\x00"
        b"\x00\x08supports\x00\x00\x00\x02\x00s"
        b"\x00\x02\xc3\xa9\x00\x00\x00\x03xyz"
    )
    assert unpack_sealed(pack_sealed(fields)) == fields
