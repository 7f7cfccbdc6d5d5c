"""The audit part of the store contract (node/store/audit.py), on both stores.

Leaves are appended at exactly the current size with their Merkle rows, read back by
range, and roll back with their block; checkpoints are kept one per size.
"""

from __future__ import annotations

import pytest

from childreg.errors import AlreadyExists
from node.store.base import AuditStore
from tests.contract.stores import BoomError, fail_inside_atomic


def test_an_append_at_the_wrong_index_is_refused_and_changes_nothing(
    store: AuditStore,
) -> None:
    """An append whose index is not the size gives AlreadyExists and keeps no leaf or row."""
    assert store.audit_append(b"leaf-0", [(0, 0, b"h" * 32)], 0) == 0
    for wrong in (0, 2, 7):
        with pytest.raises(AlreadyExists):
            store.audit_append(b"leaf-x", [(0, 1, b"x" * 32)], wrong)
    assert store.audit_size() == 1
    assert store.audit_leaves(0, 5) == [b"leaf-0"]
    with pytest.raises(KeyError):
        store.audit_hash(0, 1)
    assert store.audit_append(b"leaf-1", [(0, 1, b"i" * 32)], 1) == 1
    assert store.audit_append(b"leaf-2", [(0, 2, b"j" * 32)], 2) == 2


def test_leaves_and_merkle_rows_read_back(store: AuditStore) -> None:
    """Appended leaves read back by index range, and their Merkle rows by level and index."""
    assert store.audit_size() == 0
    assert store.audit_leaves(0, 10) == []
    store.audit_append(b"leaf-0", [(0, 0, b"a" * 32)], 0)
    store.audit_append(b"leaf-1", [(0, 1, b"b" * 32), (1, 0, b"c" * 32)], 1)
    assert store.audit_size() == 2
    assert store.audit_leaves(0, 2) == [b"leaf-0", b"leaf-1"]
    assert store.audit_leaves(1, 9) == [b"leaf-1"]
    assert store.audit_leaves(2, 9) == []
    assert store.audit_hash(1, 0) == b"c" * 32
    assert store.audit_hash(0, 1) == b"b" * 32
    with pytest.raises(KeyError):
        store.audit_hash(1, 1)


def test_an_append_rolls_back_with_its_atomic_block(store: AuditStore) -> None:
    """A leaf appended inside a failed atomic block is not kept, nor its Merkle rows."""
    with pytest.raises(BoomError):
        fail_inside_atomic(store, lambda: store.audit_append(b"leaf-0", [(0, 0, b"a" * 32)], 0))
    assert store.audit_size() == 0
    with pytest.raises(KeyError):
        store.audit_hash(0, 0)
    assert store.audit_append(b"leaf-0", [(0, 0, b"a" * 32)], 0) == 0


def test_checkpoints_are_one_per_size_and_the_latest_by_default(store: AuditStore) -> None:
    """A checkpoint reads back by size, the largest size by default, and a second one is refused."""
    assert store.audit_checkpoint() is None
    store.audit_put_checkpoint(3, "note-3")
    store.audit_put_checkpoint(7, "note-7")
    store.audit_put_checkpoint(5, "note-5")
    with pytest.raises(AlreadyExists):
        store.audit_put_checkpoint(7, "another note-7")
    assert store.audit_checkpoint() == (7, "note-7")
    assert store.audit_checkpoint(3) == (3, "note-3")
    assert store.audit_checkpoint(4) is None


def test_key_transitions_are_kept_in_order_and_roll_back_with_their_block(
    store: AuditStore,
) -> None:
    """Key-transition statements read back oldest first, and one added in a failed atomic
    block is not kept."""
    assert store.key_transitions() == []
    store.add_key_transition("audit", "note-1\n")
    store.add_key_transition("extract", "note-2\n")
    with pytest.raises(BoomError):
        fail_inside_atomic(store, lambda: store.add_key_transition("audit", "note-3\n"))
    assert store.key_transitions() == [("audit", "note-1\n"), ("extract", "note-2\n")]
