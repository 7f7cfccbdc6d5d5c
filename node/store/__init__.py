"""Storage of a node's records: the abstract contract and its in-memory and SQLCipher versions."""

from node.store.base import (
    NewChild,
    RecordStore,
    StoredAssessment,
    StoredCareSetting,
    StoredChild,
    StoredPlacement,
)

__all__ = [
    "NewChild",
    "RecordStore",
    "StoredAssessment",
    "StoredCareSetting",
    "StoredChild",
    "StoredPlacement",
]
