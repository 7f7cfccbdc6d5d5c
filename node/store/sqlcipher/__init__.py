"""The node's real record store: one SQLCipher 4 file keyed with a random raw key.

:class:`SqlCipherStore` honours the whole :class:`~node.store.base.RecordStore` contract.
It is composed of one class per concern (records.py, ledger.py, audit.py, consents.py, search.py,
history.py, keys.py for a KEK rotation), all writing through the one writer connection and
lock of transaction.py, so a change and its audit leaf commit in one ``BEGIN IMMEDIATE``
transaction. How the file is opened, keyed, checked and locked down is connection.py;
``close()`` checkpoints the WAL away. The schema and its migrations are
:mod:`node.store.migrations`.
"""

from __future__ import annotations

from node.store.base import RecordStore
from node.store.sqlcipher.audit import SqlCipherAudit
from node.store.sqlcipher.consents import SqlCipherConsents
from node.store.sqlcipher.erasure import SqlCipherErasure
from node.store.sqlcipher.history import SqlCipherHistory
from node.store.sqlcipher.keys import SqlCipherKeys
from node.store.sqlcipher.ledger import SqlCipherLedger
from node.store.sqlcipher.records import SqlCipherRecords
from node.store.sqlcipher.search import SqlCipherSearch

__all__ = ["SqlCipherStore"]


class SqlCipherStore(
    SqlCipherRecords,
    SqlCipherLedger,
    SqlCipherAudit,
    SqlCipherConsents,
    SqlCipherSearch,
    SqlCipherHistory,
    SqlCipherErasure,
    SqlCipherKeys,
    RecordStore,
):
    """Records in one SQLCipher 4 file; use :meth:`open` to get one."""
