"""Storage of a node's records: the abstract contract and its in-memory and SQLCipher versions."""

from node.store.base import (
    RecordStore,
    StoredAssessment,
    StoredCareSetting,
    StoredChild,
    StoredImport,
    StoredPlacement,
)

__all__ = [
    "RecordStore",
    "StoredAssessment",
    "StoredCareSetting",
    "StoredChild",
    "StoredImport",
    "StoredPlacement",
]
