"""The change journal (node/journal.py): records come back verified, in order; a torn
last line is ignored and cut; an edited, dropped or foreign record is refused; a leaf
re-journaled for an index replaces the uncommitted one; catch_up seeds and guards."""

from __future__ import annotations

import datetime as dt
from fractions import Fraction
from pathlib import Path

import pytest

from childreg.errors import FailedPrecondition
from childreg.secagg.roster import Participation
from node.journal import ChangeJournal, JournalDamaged, catch_up, journal_key, read_journal
from node.store.memory import MemoryStore
from node.store.types import LedgerEntry

SEED = bytes(range(32))
KEY = journal_key(SEED)


def entry(table: str = "t1") -> LedgerEntry:
    """A ledger entry for ``table``."""
    return LedgerEntry(
        snapshot="2023/24", catalogue_version=1, catalogue_digest="d", table_id=table,
        rho=Fraction(1, 32), released=(1, -2, 3),
        released_at=dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC), requested_by="coord",
    )  # fmt: skip


def journal(tmp_path: Path) -> ChangeJournal:
    """A fresh journal of department d1 in ``tmp_path``."""
    return ChangeJournal.open(tmp_path, "d1", SEED)


def test_records_come_back_in_order_and_verified(tmp_path: Path) -> None:
    """Leaves, ledger entries and participant sets read back as written."""
    j = journal(tmp_path)
    j.leaf(0, b"leaf-0")
    j.ledger(entry())
    j.leaf(1, b"leaf-1")
    j.participation("2023/24", Participation(frozenset({"a", "b", "c"}), 1))
    j.close()
    got = read_journal(tmp_path / "d1.journal", KEY)
    assert (got.first_seq, got.leaves, got.ledger) == (0, [b"leaf-0", b"leaf-1"], [entry()])
    assert got.participation == [("2023/24", Participation(frozenset({"a", "b", "c"}), 1))]


def test_a_later_leaf_for_an_index_replaces_the_uncommitted_one(tmp_path: Path) -> None:
    """A leaf journaled again for index 1 drops the earlier leaf 1 and anything after it."""
    j = journal(tmp_path)
    for seq, body in ((0, b"a"), (1, b"rolled-back"), (2, b"never"), (1, b"b")):
        j.leaf(seq, body)
    j.close()
    assert read_journal(tmp_path / "d1.journal", KEY).leaves == [b"a", b"b"]


def test_a_torn_last_line_is_ignored_and_cut_by_the_next_writer(tmp_path: Path) -> None:
    """A half-written last record is skipped by readers and removed before the next append."""
    j = journal(tmp_path)
    j.leaf(0, b"a")
    j.close()
    path = tmp_path / "d1.journal"
    with path.open("ab") as f:
        f.write(b'{"n":1,"kind":"leaf","se')
    assert read_journal(path, KEY).torn_tail
    assert read_journal(path, KEY).leaves == [b"a"]
    j = journal(tmp_path)
    j.leaf(1, b"b")
    j.close()
    got = read_journal(path, KEY)
    assert (got.leaves, got.torn_tail) == ([b"a", b"b"], False)


def test_an_edited_or_dropped_record_is_refused(tmp_path: Path) -> None:
    """Changing a record's content or removing one in the middle fails verification."""
    j = journal(tmp_path)
    for seq in range(3):
        j.leaf(seq, b"x%d" % seq)
    j.close()
    path = tmp_path / "d1.journal"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(lines[0] + lines[2])
    with pytest.raises(JournalDamaged):
        read_journal(path, KEY)
    path.write_bytes(b"".join(lines).replace(b'"seq":1', b'"seq":7'))
    with pytest.raises(JournalDamaged):
        read_journal(path, KEY)


def test_another_nodes_key_does_not_verify(tmp_path: Path) -> None:
    """A journal read with another keyring's key is refused."""
    j = journal(tmp_path)
    j.leaf(0, b"a")
    j.close()
    with pytest.raises(JournalDamaged):
        read_journal(tmp_path / "d1.journal", journal_key(bytes(32)))


def test_catch_up_seeds_an_empty_journal_and_refuses_an_older_store(tmp_path: Path) -> None:
    """An empty journal gets the whole log and ledger; a store behind by more than one
    leaf (a copy put back by hand) is refused."""
    store = MemoryStore()
    for seq in range(3):
        store.audit_append(b"leaf-%d" % seq, [(0, seq, bytes([seq]) * 32)], seq)
    store.append_ledger(entry())
    j = journal(tmp_path)
    assert catch_up(j, store) == 3
    assert catch_up(j, store) == 0
    got = read_journal(tmp_path / "d1.journal", KEY)
    assert (len(got.leaves), got.ledger) == (3, [entry()])
    older = MemoryStore()
    older.audit_append(b"leaf-0", [(0, 0, bytes([0]) * 32)], 0)
    with pytest.raises(FailedPrecondition, match="older than the journal"):
        catch_up(j, older)
    j.close()


def test_catch_up_refuses_another_logs_journal(tmp_path: Path) -> None:
    """A journal whose last leaf is not the store's leaf of that index is refused."""
    j = journal(tmp_path)
    j.leaf(0, b"other")
    store = MemoryStore()
    store.audit_append(b"mine", [(0, 0, bytes(32))], 0)
    with pytest.raises(JournalDamaged):
        catch_up(j, store)
    j.close()
