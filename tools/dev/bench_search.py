"""`childreg bench`, search: staff search and the duplicate check on a node of 100,000.

(h) ``Registry.find_children`` p95 for a full name (given and family) as staff type it —
    a typo or the other script in a random half of the queries — on a SQLCipher node
    holding ``children`` children, in the node (no gRPC) ÷ ``Registry.get_child`` of one
    child p95 measured interleaved with it: goal ≤ 20 ms absolute.
(i) registering a child with the duplicate check (``Registry.register_child``) ÷
    registering it without (the same sealed insert and index tokens, no check), on the
    same node, interleaved one for one: goal ≤ 2.

The node is built through the bulk import path (``Registry.import_records``, one
transaction), with names of :mod:`tools.dev.people`. Each function builds its own node;
:func:`measure_search_figures` builds one for both.
"""

# Reproducible synthetic data and query choice, nothing security-relevant:
# ruff: noqa: S311

from __future__ import annotations

import random  # noqa: TID251 -- reproducible synthetic data, nothing security-relevant
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from childreg.models import ChildIn
from childreg.search import SearchQuery
from node.crypto.keys import KekSource, Keyring, generate_key_file
from node.records.registry import Registry, stored_child
from node.store.sqlcipher import SqlCipherStore
from tools.dev.bench_extract import percentile
from tools.dev.federation import Say
from tools.dev.people import import_record, other_script, random_child, typo

SCHOOLS = tuple(f"School No. {i}" for i in range(1, 200))


class Node(NamedTuple):
    """A built node: its registry, store and keyring, and the children it holds."""

    registry: Registry
    store: SqlCipherStore
    keyring: Keyring
    held: list[ChildIn]


def build_node(root: Path, children: int, say: Say) -> Node:
    """A SQLCipher node with ``children`` synthetic children imported in bulk."""
    root.mkdir(parents=True, exist_ok=True)
    generate_key_file(root / "kek.key")
    keyring = Keyring.create(root / "keyring.json", KekSource.from_key_file(root / "kek.key"))
    store = SqlCipherStore.open(root / "node.db", keyring.db_key_hex(), create=True)
    registry = Registry(store, keyring)
    rng = random.Random(100)
    held = [random_child(rng, f"B{i:07d}", national_id=f"AZ{i:08d}") for i in range(children)]
    say(f"building a node of {children:,} children through the bulk import")
    start = time.perf_counter()
    registry.import_records(
        import_record(c, i + 2, rng.choice(SCHOOLS)) for i, c in enumerate(held)
    )
    say(f"  imported in {time.perf_counter() - start:.1f} s")
    return Node(registry, store, keyring, held)


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _query_name(child: ChildIn, rng: random.Random) -> str:
    given, family = child.given_name, child.family_name
    change = rng.randrange(3)
    if change == 1:
        family = typo(family, rng)
    elif change == 2:
        given, family = other_script(given), other_script(family)
    return f"{family} {given}"


def search_figure(node: Node, queries: int) -> dict[str, Any]:
    """(h) on a built node: search p50/p95 and get_child p95, interleaved."""
    registry, held = node.registry, node.held
    rng = random.Random(8)
    search: list[float] = []
    get: list[float] = []
    found = 0
    for _ in range(queries):
        target = rng.choice(held)
        query = SearchQuery(name=_query_name(target, rng))
        registry.find_children(query)  # warm once, untimed
        # Synthetic names repeat (dozens of namesakes at 100,000), so whether the child is
        # found is judged as staff pick it: the same name with its birth date.
        narrowed = SearchQuery(name=query.name, date_of_birth=target.date_of_birth)
        hits = registry.find_children(narrowed).hits
        found += any(h.child_id == target.child_id for h in hits)
        search.append(_timed(lambda q=query: registry.find_children(q)))  # type: ignore[misc]
        other = rng.choice(held).child_id
        get.append(_timed(lambda c=other: registry.get_child(c)))  # type: ignore[misc]
    p95 = percentile(search, 0.95) * 1000
    base = percentile(get, 0.95) * 1000
    return {
        "children": len(held),
        "queries": queries,
        "search_p50_ms": round(percentile(search, 0.5) * 1000, 2),
        "search_p95_ms": round(p95, 2),
        "get_child_p95_ms": round(base, 2),
        "ratio": round(p95 / base, 2),
        "found_with_birth_date": round(found / queries, 3),
        "goal_p95_ms": 20,
    }


def registration_figure(node: Node, n: int) -> dict[str, Any]:
    """(i) on a built node: median registration with the check ÷ without, interleaved."""
    rng = random.Random(9)
    registry, held, store, keys = node.registry, node.held, node.store, node.keyring
    index = registry.index
    checked: list[float] = []
    bare: list[float] = []
    for i in range(n):
        a = random_child(rng, f"R{i:06d}a", national_id=None)
        b = random_child(rng, f"R{i:06d}b", national_id=None)
        checked.append(_timed(lambda c=a: registry.register_child(c)))  # type: ignore[misc]

        def without(c: ChildIn = b) -> None:
            with store.atomic():
                key, wrapped, version = keys.new_child_key(c.child_id)
                store.insert_child(stored_child(keys, c, key, wrapped, version, digest=None))
                index.index(c, None)

        bare.append(_timed(without))
    with_ms = percentile(checked, 0.5) * 1000
    without_ms = percentile(bare, 0.5) * 1000
    return {
        "children": len(held),
        "registrations": n,
        "with_check_p50_ms": round(with_ms, 3),
        "without_check_p50_ms": round(without_ms, 3),
        "with_check_p95_ms": round(percentile(checked, 0.95) * 1000, 3),
        "ratio": round(with_ms / without_ms, 2),
        "goal_max_ratio": 2,
    }


def measure_search_figures(
    root: Path, children: int, queries: int, registrations: int, say: Say
) -> dict[str, Any]:
    """(h) and (i) on one node of ``children`` children."""
    node = build_node(root / f"search-{secrets.token_hex(4)}", children, say)
    try:
        say(f"(h) {queries} searches by name on {children:,} children")
        search = search_figure(node, queries)
        say(f"(i) {registrations} registrations with and without the duplicate check")
        registration = registration_figure(node, registrations)
    finally:
        node.store.close()
    return {"search": search, "registration_check": registration}
