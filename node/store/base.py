"""The storage contract every store honours (in-memory for tests, SQLCipher for real).

A node's store is split by concern, each an interface stating its contract (MUST / MUST
NOT): :class:`~node.store.records.RecordsStore` (children, placements, care settings,
assessments, counts), :class:`~node.store.ledger.LedgerStore` (privacy ledger,
participation, catalogue versions), :class:`~node.store.audit.AuditStore` (audit leaves,
Merkle rows, checkpoints) and :class:`~node.store.consents.ConsentStore` (consents, the
extract's read, break-glass), :class:`~node.store.search.SearchStore` (the blind
search index's keyed tokens), :class:`~node.store.history.HistoryStore` (each child's
append-only history and its record's closing) and :class:`~node.store.erasure.ErasureStore`
(erasing a child's rows, and the tombstones of erasures). All of them extend
:class:`~node.store.transactional.Transactional`, and :class:`RecordStore` is their
combination over one transaction: what callers take.

Stores hold records in their *stored* form (:mod:`node.store.types`, re-exported here):
identity fields and sensitive assessment fields arrive already sealed (ciphertext) by the
domain layer, so a store never sees a name or a diagnosis in the clear and never sees
protobuf. One contract test suite (tests/contract/, one file per concern) runs against
every implementation.
"""

from __future__ import annotations

from node.store.audit import AuditStore
from node.store.consents import ConsentStore
from node.store.erasure import ErasureStore
from node.store.history import HistoryStore
from node.store.ledger import LedgerStore
from node.store.records import RecordsStore
from node.store.search import SearchStore
from node.store.transactional import BlockNesting, Transactional
from node.store.types import (
    MECHANISMS,
    AssessmentColumns,
    CareColumns,
    ChildColumns,
    ExtractSource,
    LedgerEntry,
    Mechanism,
    NewChild,
    PlacementColumns,
    StoredAssessment,
    StoredBreakGlass,
    StoredCareSetting,
    StoredChild,
    StoredClosure,
    StoredConsent,
    StoredErasure,
    StoredEvent,
    StoredPlacement,
    assessment_columns,
    child_columns,
    date_or_none,
    pack_sealed,
    records_of,
    unpack_sealed,
)

__all__ = [
    "MECHANISMS",
    "AssessmentColumns",
    "AuditStore",
    "BlockNesting",
    "CareColumns",
    "ChildColumns",
    "ConsentStore",
    "ErasureStore",
    "ExtractSource",
    "HistoryStore",
    "LedgerEntry",
    "LedgerStore",
    "Mechanism",
    "NewChild",
    "PlacementColumns",
    "RecordStore",
    "RecordsStore",
    "SearchStore",
    "StoredAssessment",
    "StoredBreakGlass",
    "StoredCareSetting",
    "StoredChild",
    "StoredClosure",
    "StoredConsent",
    "StoredErasure",
    "StoredEvent",
    "StoredPlacement",
    "Transactional",
    "assessment_columns",
    "child_columns",
    "date_or_none",
    "pack_sealed",
    "records_of",
    "unpack_sealed",
]


class RecordStore(
    RecordsStore, LedgerStore, AuditStore, ConsentStore, SearchStore, HistoryStore, ErasureStore
):
    """Where a node keeps everything: its records, ledger, audit log and consents.

    Contract: each part's (see the interfaces above), and one more that binds them: every
    part works on one state under one transaction, so writes to different parts inside one
    ``atomic()`` block (a change and its audit leaf, a release and its ledger entry) MUST
    commit together or not at all, and reads inside the block see all of them.
    """
