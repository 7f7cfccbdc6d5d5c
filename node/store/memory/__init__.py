"""A record store in process memory: fast, for tests; the reference the SQL store must match.

:class:`MemoryStore` honours the whole :class:`~node.store.base.RecordStore` contract. It
is composed of one class per concern (records.py, ledger.py, audit.py, consents.py, search.py,
history.py), all
working on the one state of state.py under one re-entrant lock, so an ``atomic()`` block
rolls back every concern's writes together (by restoring a snapshot taken when the
outermost block starts).
"""

from __future__ import annotations

from node.store.base import RecordStore
from node.store.memory.audit import MemoryAudit
from node.store.memory.consents import MemoryConsents
from node.store.memory.erasure import MemoryErasure
from node.store.memory.history import MemoryHistory
from node.store.memory.ledger import MemoryLedger
from node.store.memory.records import MemoryRecords
from node.store.memory.search import MemorySearch

__all__ = ["MemoryStore"]


class MemoryStore(
    MemoryRecords,
    MemoryLedger,
    MemoryAudit,
    MemoryConsents,
    MemorySearch,
    MemoryHistory,
    MemoryErasure,
    RecordStore,
):
    """Records in dictionaries, guarded by one re-entrant lock."""
