"""The SQLCipher store's two connections (node/store/sqlcipher/transaction.py).

Reads from other threads go to the reader and do not wait for an open write block; a
read view is one snapshot; a refused bulk insert leaves the surrounding transaction open.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from childreg.errors import AlreadyExists
from childreg.models import ChildIn
from node.crypto.keys import KekSource, Keyring, generate_key_file
from node.records.registry import Registry
from node.store.sqlcipher import SqlCipherStore
from tests.unit.node.store.sqlcipher.support import REF, YEAR, a_child, placed

T = TypeVar("T")


def run_while_a_block_is_open(
    store: SqlCipherStore, write: Callable[[], object], read: Callable[[], T]
) -> tuple[bool, list[T], list[BaseException]]:
    """Open atomic() in one thread, ``write`` in it, run ``read`` in another, then commit.

    Returns whether ``read`` finished while the block was still open, its result, and any
    error of the writing thread. Events synchronise; timeouts only bound a failing test.
    """
    opened, release, read_done = threading.Event(), threading.Event(), threading.Event()
    errors: list[BaseException] = []
    results: list[T] = []

    def writer() -> None:
        try:
            with store.atomic():
                write()
                opened.set()
                release.wait(timeout=60)
        except BaseException as exc:  # reported to the test
            errors.append(exc)
            opened.set()

    def reader() -> None:
        results.append(read())
        read_done.set()

    writing = threading.Thread(target=writer)
    writing.start()
    assert opened.wait(timeout=60)
    reading = threading.Thread(target=reader)
    reading.start()
    finished_first = read_done.wait(timeout=10)
    release.set()
    writing.join(timeout=60)
    reading.join(timeout=60)
    assert not writing.is_alive()
    assert not reading.is_alive()
    return finished_first, results, errors


def test_count_from_another_thread_does_not_wait_for_an_open_block(store: SqlCipherStore) -> None:
    """count_table from another thread completes during an open atomic() with committed counts."""
    store.insert_new_children([placed("C0")])
    inside: list[dict[tuple[str, ...], int]] = []

    def write() -> None:
        store.insert_new_children([placed("C1"), placed("C2")])
        inside.append(store.count_table(YEAR, REF, ["sex"]))  # the writer sees its own rows

    finished_first, counts, errors = run_while_a_block_is_open(
        store, write, lambda: store.count_table(YEAR, REF, ["sex"])
    )
    assert errors == []
    assert finished_first
    assert counts == [{("male",): 1}]
    assert inside == [{("male",): 3}]
    assert store.count_table(YEAR, REF, ["sex"]) == {("male",): 3}


def test_registry_get_child_does_not_wait_for_an_open_block(
    store: SqlCipherStore, tmp_path: Path
) -> None:
    """Registry.get_child from another thread completes while an import's block is open."""
    generate_key_file(tmp_path / "kek.key")
    keyring = Keyring.create(tmp_path / "kr.json", KekSource.from_key_file(tmp_path / "kek.key"))
    registry = Registry(store, keyring)
    child = ChildIn(
        child_id="C1",
        given_name="Aysel",
        family_name="Aliyeva",
        date_of_birth=dt.date(2016, 4, 2),
        sex="female",
        district="nasimi",
    )
    registry.register_child(child)
    finished_first, views, errors = run_while_a_block_is_open(
        store, lambda: store.insert_child(a_child("C2")), lambda: registry.get_child("C1")
    )
    assert errors == []
    assert finished_first
    assert [v.child for v in views] == [child]


def test_read_view_is_one_snapshot_while_another_thread_commits(store: SqlCipherStore) -> None:
    """Inside a read view, writes committed by another thread stay invisible until it ends."""
    store.insert_child(a_child("C1"))
    with store.read_view():
        assert store.child_count() == 1
        other = threading.Thread(target=lambda: store.insert_new_children([placed("C2")]))
        other.start()
        other.join(timeout=60)
        assert not other.is_alive()
        assert store.child_count() == 1
        assert store.get_child("C2") is None
        assert store.count_table(YEAR, REF, ["sex"]) == {}
    assert store.child_count() == 2
    assert store.count_table(YEAR, REF, ["sex"]) == {("male",): 1}


def test_failed_bulk_insert_leaves_the_surrounding_transaction_intact(
    store: SqlCipherStore,
) -> None:
    """A refused insert_new_children rolls back only its savepoint, and the block commits."""
    store.insert_child(a_child("C1"))
    with store.atomic():
        store.insert_new_children([placed("C2")])
        with pytest.raises(AlreadyExists):
            store.insert_new_children([placed("C3"), placed("C1")])
        assert store._conn.in_transaction
    assert list(store.child_ids()) == ["C1", "C2"]
    assert store.placements("C3") == []
