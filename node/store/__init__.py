"""Storage of a node's records: the contract, split by concern, and its two implementations.

The interfaces: :mod:`node.store.records`, :mod:`node.store.ledger`, :mod:`node.store.audit`
and :mod:`node.store.consents`, each extending :mod:`node.store.transactional`, combined in
:class:`~node.store.base.RecordStore` (what callers take). The implementations:
:mod:`node.store.memory` (tests, the reference) and :mod:`node.store.sqlcipher` (the real
one); the schema is :mod:`node.store.migrations`.
"""

from node.store.base import (
    AuditStore,
    ConsentStore,
    LedgerStore,
    NewChild,
    RecordsStore,
    RecordStore,
    StoredAssessment,
    StoredCareSetting,
    StoredChild,
    StoredPlacement,
    Transactional,
)

__all__ = [
    "AuditStore",
    "ConsentStore",
    "LedgerStore",
    "NewChild",
    "RecordStore",
    "RecordsStore",
    "StoredAssessment",
    "StoredCareSetting",
    "StoredChild",
    "StoredPlacement",
    "Transactional",
]
