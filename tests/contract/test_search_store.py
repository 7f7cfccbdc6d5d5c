"""The search part of the store contract (node/store/search.py), on both stores.

A child's tokens are replaced as a whole or added in bulk, only for stored children; a
look-up returns exactly the children holding a token of every group; a rolled-back block
leaves the index as it was.
"""

from __future__ import annotations

import pytest

from childreg.errors import NotFound
from node.store.base import RecordStore
from tests.contract.stores import child

A, B, C = b"a" * 16, b"b" * 16, b"c" * 16


def test_tokens_replace_as_a_whole(store: RecordStore) -> None:
    """replace_child_tokens makes the child's tokens exactly the given ones."""
    store.insert_child(child("C1"))
    store.replace_child_tokens("C1", {A, B})
    assert store.child_tokens("C1") == {A, B}
    store.replace_child_tokens("C1", {C})
    assert store.child_tokens("C1") == {C}
    assert store.children_matching([{A}]) == set()
    assert store.children_matching([{C}]) == {"C1"}


def test_tokens_of_an_unknown_child_are_refused(store: RecordStore) -> None:
    """Tokens for a child that is not stored give NotFound and change nothing."""
    store.insert_child(child("C1"))
    with pytest.raises(NotFound):
        store.replace_child_tokens("C9", {A})
    with pytest.raises(NotFound):
        store.add_child_tokens([("C1", {A}), ("C9", {B})])
    assert store.children_matching([{A}, {B}]) == set()
    assert store.child_tokens("C9") == set()


def test_a_lookup_needs_a_token_of_every_group(store: RecordStore) -> None:
    """children_matching returns the children holding at least one token of each group."""
    for cid in ("C1", "C2", "C3"):
        store.insert_child(child(cid))
    store.add_child_tokens([("C1", {A, B}), ("C2", {A}), ("C3", {B, C})])
    assert store.children_matching([{A}]) == {"C1", "C2"}
    assert store.children_matching([{A, C}]) == {"C1", "C2", "C3"}
    assert store.children_matching([{A}, {B}]) == {"C1"}
    assert store.children_matching([{A}, {C}]) == set()
    assert store.children_matching([]) == set()
    assert store.children_matching([{A}, set()]) == set()


def test_a_rolled_back_block_leaves_the_index(store: RecordStore) -> None:
    """Tokens written in an atomic() block that raises are gone afterwards."""
    store.insert_child(child("C1"))
    store.replace_child_tokens("C1", {A})
    seen: set[str] = set()

    def change_then_fail() -> None:
        with store.atomic():
            store.replace_child_tokens("C1", {B})
            seen.update(store.children_matching([{B}]))
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        change_then_fail()
    assert seen == {"C1"}
    assert store.child_tokens("C1") == {A}
    assert store.children_matching([{B}]) == set()
