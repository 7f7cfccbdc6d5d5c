"""The store's journal hook: what a store hands a change journal before a write commits.

Why here: every audit leaf, privacy-ledger write and key-transition statement must reach
the node's change journal (node/journal.py) whichever door, command or process made it,
before its transaction commits. The store is the one place all of them pass, so the
audit and ledger parts of both stores call the attached :class:`Journal` right after
each write, inside the write's transaction; a journal that cannot be written raises, and
the transaction rolls back.
"""

from __future__ import annotations

from typing import Protocol

from childreg.secagg.roster import Participation
from node.store.types import LedgerEntry


class Journal(Protocol):
    """Where a store sends its audit leaves and ledger writes (node/journal.py)."""

    def leaf(self, seq: int, body: bytes) -> None:
        """The leaf of index ``seq`` was written (not yet committed)."""
        ...

    def ledger(self, entry: LedgerEntry) -> None:
        """A privacy-ledger entry was appended (not yet committed)."""
        ...

    def participation(self, snapshot: str, participation: Participation) -> None:
        """A participant set was recorded for ``snapshot`` unless one was there."""
        ...

    def key_transition(self, which: str, note: str) -> None:
        """A signed key-transition statement of the ``which`` signing key was kept."""
        ...


class Journaled:
    """The part of a store that holds its journal (none by default).

    Contract: with a journal attached, ``audit_append``, ``append_ledger``,
    ``record_participation`` and ``add_key_transition`` MUST call it after their write
    succeeded and before they return (inside an enclosing ``atomic()`` block, so before it
    commits); a write that is refused (AlreadyExists) MUST NOT reach it; an exception from
    the journal MUST leave the write undone once the enclosing block rolls back.
    """

    _journal: Journal | None = None

    @property
    def journal(self) -> Journal | None:
        """The journal attached, if any."""
        return self._journal

    def attach_journal(self, journal: Journal | None) -> None:
        """Send every later audit, ledger and key-transition write to ``journal`` (None: to
        none)."""
        self._journal = journal
