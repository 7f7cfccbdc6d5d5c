"""A node's contribution to a statistics round: a dense count vector for a catalogue table.

Dense, because a table's shape must never depend on the data (an absent cell would tell
that it is zero): every cell of ``childreg.codes.grid(dimensions)`` appears, in that
canonical order, zeros included. Noise and privacy accounting happen elsewhere.
"""

from __future__ import annotations

from childreg import codes
from childreg.errors import FailedPrecondition
from childreg.models import TableQuery
from node.store.base import RecordStore


def count_vector(store: RecordStore, query: TableQuery) -> list[int]:
    """Counts of the query's academic year for every cell of its grid, in grid order."""
    dimensions = tuple(query.dimensions)
    sparse = store.count_table(query.academic_year, query.reference_date, dimensions)
    positions = [{code: i for i, code in enumerate(codes.codes(d))} for d in dimensions]
    strides = [1] * len(dimensions)
    for i in range(len(dimensions) - 2, -1, -1):
        strides[i] = strides[i + 1] * len(positions[i + 1])
    vector = [0] * codes.grid_size(dimensions)
    for cell, count in sparse.items():
        index = 0
        for dimension, code, position, stride in zip(
            dimensions, cell, positions, strides, strict=True
        ):
            if code not in position:
                raise FailedPrecondition(
                    f"stored records hold a {dimension} outside the code list; "
                    "migrate them before answering"
                )
            index += position[code] * stride
        vector[index] += count
    return vector
