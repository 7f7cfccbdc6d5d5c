"""The journal hook of the store contract (node/store/journaling.py), on both stores.

With a journal attached, each audit leaf, ledger entry, participant set and key-transition
statement reaches it inside the write's transaction; refused writes do not; a journal that
fails undoes the write. Also the ledger's whole-ledger reads a restore and the journal's
seeding use.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from childreg.errors import AlreadyExists, FailedPrecondition
from childreg.secagg.roster import Participation
from node.store.base import LedgerEntry, RecordStore
from tests.contract.stores import YEAR
from tests.contract.test_ledger_store import ledger_entry


@dataclass
class Recording:
    """A journal that records what it is given (and can be told to fail)."""

    seen: list[tuple[str, object]] = field(default_factory=list)
    fail: bool = False

    def _note(self, kind: str, value: object) -> None:
        if self.fail:
            raise FailedPrecondition("the journal is down")
        self.seen.append((kind, value))

    def leaf(self, seq: int, body: bytes) -> None:
        """Record a leaf."""
        self._note("leaf", (seq, body))

    def ledger(self, entry: LedgerEntry) -> None:
        """Record a ledger entry."""
        self._note("ledger", entry.table_id)

    def participation(self, snapshot: str, participation: Participation) -> None:
        """Record a participant set."""
        self._note("participation", snapshot)

    def key_transition(self, which: str, note: str) -> None:
        """Record a key-transition statement."""
        self._note("key_transition", (which, note))


def test_every_leaf_and_ledger_write_reaches_the_journal_in_order(store: RecordStore) -> None:
    """A leaf, a ledger entry and a participant set reach the journal in write order."""
    journal = Recording()
    store.attach_journal(journal)
    store.audit_append(b"leaf-0", [(0, 0, b"a" * 32)], 0)
    store.append_ledger(ledger_entry())
    store.record_participation(YEAR, Participation(frozenset({"a", "b", "c"}), 1))
    assert journal.seen == [
        ("leaf", (0, b"leaf-0")),
        ("ledger", "education_form"),
        ("participation", YEAR),
    ]


def test_a_key_transition_reaches_the_journal_and_a_failing_journal_undoes_it(
    store: RecordStore,
) -> None:
    """A kept key-transition statement is journaled; when the journal fails it is not kept."""
    journal = Recording()
    store.attach_journal(journal)
    store.add_key_transition("audit", "statement-1")
    assert journal.seen == [("key_transition", ("audit", "statement-1"))]
    journal.fail = True
    with pytest.raises(FailedPrecondition):
        store.add_key_transition("extract", "statement-2")
    assert store.key_transitions() == [("audit", "statement-1")]


def test_refused_writes_do_not_reach_the_journal(store: RecordStore) -> None:
    """A leaf at a wrong index and a ledger entry already there are not journaled."""
    journal = Recording()
    store.append_ledger(ledger_entry())
    store.attach_journal(journal)
    with pytest.raises(AlreadyExists):
        store.audit_append(b"leaf-x", [(0, 3, b"x" * 32)], 3)
    with pytest.raises(AlreadyExists):
        store.append_ledger(ledger_entry())
    assert journal.seen == []


def test_a_failing_journal_undoes_the_write(store: RecordStore) -> None:
    """When the journal cannot take a record, the leaf and the ledger entry are not kept."""
    store.attach_journal(Recording(fail=True))
    with pytest.raises(FailedPrecondition):
        store.audit_append(b"leaf-0", [(0, 0, b"a" * 32)], 0)
    with pytest.raises(FailedPrecondition):
        store.append_ledger(ledger_entry())
    assert store.audit_size() == 0
    assert store.ledger_entries() == []


def test_whole_ledger_reads_span_every_snapshot(store: RecordStore) -> None:
    """ledger_entries and participations return every snapshot's, in their order."""
    first, other = ledger_entry("b_table"), ledger_entry("a_table", snapshot="2024/25")
    store.append_ledger(first)
    store.append_ledger(other)
    p = Participation(frozenset({"a", "b", "c"}), 1)
    store.record_participation("2024/25", p)
    store.record_participation(YEAR, p)
    assert store.ledger_entries() == [first, other]
    assert store.participations() == [(YEAR, p), ("2024/25", p)]
