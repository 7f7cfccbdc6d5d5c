"""RFC 9162 §2.1 Merkle tree hashing, inclusion and consistency proofs, and their verification.

Why: every node keeps an append-only audit log that auditors and witnesses must be able to
check without trusting the node. RFC 9162 (Certificate Transparency 2.0) §2.1 defines the tree
hash (leaf ``H(0x00 || d)``, node ``H(0x01 || left || right)``, SHA-256), the inclusion proof
PATH (§2.1.3.1) and the consistency proof PROOF/SUBPROOF (§2.1.4.1); the verifiers here follow
§2.1.3.2 and §2.1.4.2 step by step and never raise on malformed input.

Storage: a log of ``n`` leaves is kept as the hashes of its *complete perfect subtrees*,
addressed by ``(level, index)``: level 0 holds the leaf hashes, and ``(k, i)`` covers leaves
``[i·2^k, (i+1)·2^k)``. Such a hash never changes once the subtree is complete, so the rows are
write-once, an append writes at most ``log2(n) + 1`` rows and reads at most ``log2(n)``, and
every root or proof, for the current size or any earlier one, reads ``O(log n)`` rows. The store
does not know the tree size; callers pass it explicitly (it is the committed leaf count).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
"""The root of the empty tree, ``MTH({}) = SHA-256()`` (RFC 9162 §2.1.1)."""

Row = tuple[int, int, bytes]
"""One stored hash: (level, index, hash)."""
Getter = Callable[[int, int], bytes]
"""Reads the stored hash of the complete subtree at (level, index)."""


class HashStore(Protocol):
    """Where complete-subtree hashes live (a dict in memory, rows in SQLCipher on a node).

    ``get`` must raise (e.g. ``KeyError``) for a missing row, never invent one; ``put_many``
    stores the rows of one append together (atomically, in a database store).
    """

    def get(self, level: int, index: int) -> bytes:
        """The hash of the complete subtree at (level, index)."""
        ...

    def put_many(self, items: Iterable[Row]) -> None:
        """Store these (level, index, hash) rows."""
        ...


def leaf_hash(data: bytes) -> bytes:
    """``MTH({d}) = SHA-256(0x00 || d)`` (RFC 9162 §2.1.1)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)`` (RFC 9162 §2.1.1)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_leaves(leaves: Sequence[bytes]) -> bytes:
    """The naive recursive MTH of RFC 9162 §2.1.1 over the leaf data (an independent oracle)."""
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hash(leaves[0])
    k = _split(n)
    return node_hash(root_from_leaves(leaves[:k]), root_from_leaves(leaves[k:]))


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _range_hash(lo: int, hi: int, get: Getter) -> bytes:
    """MTH of leaves ``[lo, hi)`` for a range that occurs in the RFC recursion.

    Such a range starts at a multiple of the smallest power of two >= its length, so its tree is
    the perfect subtrees named by the set bits of ``hi - lo``, largest first, folded from the
    right: one read per set bit.
    """
    n = hi - lo
    parts: list[bytes] = []
    for level in range(n.bit_length() - 1, -1, -1):
        if n >> level & 1:
            parts.append(get(level, lo >> level))
            lo += 1 << level
    acc = parts[-1]
    for part in reversed(parts[:-1]):
        acc = node_hash(part, acc)
    return acc


def append_hashes(size: int, leaf: bytes, get: Getter) -> list[Row]:
    """The rows that become complete when leaf number ``size`` (0-based) is appended.

    ``leaf`` is the leaf *hash*. Returns the leaf row and one row per subtree it completes
    (at most ``log2(size + 1) + 1`` rows, after reading at most ``log2(size + 1)`` rows).
    """
    if size < 0:
        raise ValueError("tree size must be >= 0")
    if not _is_hash(leaf):
        raise ValueError("a leaf hash is 32 bytes")
    rows: list[Row] = [(0, size, leaf)]
    h, level, index = leaf, 0, size
    while index & 1:
        h = node_hash(get(level, index - 1), h)
        level, index = level + 1, index >> 1
        rows.append((level, index, h))
    return rows


def root(size: int, get: Getter) -> bytes:
    """MTH of the first ``size`` leaves (at most ``log2(size) + 1`` reads)."""
    if size < 0:
        raise ValueError("tree size must be >= 0")
    return EMPTY_ROOT if size == 0 else _range_hash(0, size, get)


def inclusion_proof(index: int, size: int, get: Getter) -> list[bytes]:
    """RFC 9162 §2.1.3.1 ``PATH(index, D[size])``, leaf side first."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    proof: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        mid = lo + k
        if index < mid:
            proof.append(_range_hash(mid, hi, get))
            hi = mid
        else:
            proof.append(get(k.bit_length() - 1, lo // k))
            lo = mid
    proof.reverse()
    return proof


def consistency_proof(old_size: int, new_size: int, get: Getter) -> list[bytes]:
    """RFC 9162 §2.1.4.1 ``PROOF(old_size, D[new_size])``; empty when old is 0 or equals new."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to {new_size}")
    if old_size in (0, new_size):
        return []
    proof: list[bytes] = []
    lo, hi, complete = 0, new_size, True  # `complete` is SUBPROOF's flag b
    while old_size != hi:  # invariant: lo < old_size <= hi
        k = _split(hi - lo)
        mid = lo + k
        if old_size <= mid:
            proof.append(_range_hash(mid, hi, get))
            hi = mid
        else:
            proof.append(get(k.bit_length() - 1, lo // k))
            lo, complete = mid, False
    if not complete:
        proof.append(_range_hash(lo, hi, get))
    proof.reverse()
    return proof


def coordinates(operation: Callable[[Getter], object]) -> list[tuple[int, int]]:
    """The (level, index) rows ``operation`` reads, in order, without reading any.

    Which rows a root, proof or append reads depends only on sizes and indices, never on hash
    values, so a database store can fetch them in one query, e.g.
    ``coordinates(lambda g: inclusion_proof(i, n, g))``.
    """
    seen: list[tuple[int, int]] = []

    def record(level: int, index: int) -> bytes:
        seen.append((level, index))
        return EMPTY_ROOT

    operation(record)
    return seen


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: does ``proof`` show leaf ``index`` of tree ``size`` under ``root``?"""
    if not (_is_hash(leaf_hash) and _is_hash(root) and all(_is_hash(p) for p in proof)):
        return False
    if not (isinstance(index, int) and isinstance(size, int) and 0 <= index < size):
        return False
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: is the tree ``new_size``/``new_root`` an extension of the old one?

    From size 0 (only the empty root) or between equal sizes (equal roots) the proof is empty.
    """
    if not (_is_hash(old_root) and _is_hash(new_root) and all(_is_hash(p) for p in proof)):
        return False
    if not (isinstance(old_size, int) and isinstance(new_size, int) and 0 <= old_size <= new_size):
        return False
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT and (new_size > 0 or new_root == EMPTY_ROOT)
    if old_size == new_size:
        return not proof and old_root == new_root
    return bool(proof) and _verify_consistency_path(old_size, new_size, old_root, new_root, proof)


def _verify_consistency_path(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Steps 2–7 of RFC 9162 §2.1.4.2 for ``0 < old_size < new_size`` and a non-empty proof."""
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # an exact power of two: the old root is a node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == old_root and sr == new_root and sn == 0


class MemoryHashStore:
    """A HashStore in memory: one list of write-once hashes per level."""

    def __init__(self) -> None:
        self._levels: dict[int, list[bytes]] = {}

    def get(self, level: int, index: int) -> bytes:
        """The stored hash; ``KeyError`` if there is none."""
        row = self._levels.get(level)
        if row is None or not 0 <= index < len(row):
            raise KeyError((level, index))
        return row[index]

    def put_many(self, items: Iterable[Row]) -> None:
        """Store rows in index order per level; rewriting a row with another hash is refused."""
        for level, index, value in items:
            row = self._levels.setdefault(level, [])
            if index == len(row):
                row.append(value)
            elif 0 <= index < len(row) and row[index] == value:
                continue
            else:
                raise ValueError(f"cannot write row ({level}, {index}): gap or changed hash")


class MerkleTree:
    """An append-only RFC 9162 tree over any HashStore; ``size`` is the leaves already stored."""

    def __init__(self, store: HashStore | None = None, size: int = 0) -> None:
        if size < 0:
            raise ValueError("tree size must be >= 0")
        self._store: HashStore = MemoryHashStore() if store is None else store
        self._size = size

    @property
    def size(self) -> int:
        """How many leaves the tree holds."""
        return self._size

    def append(self, data: bytes) -> int:
        """Append a leaf's data; returns its 0-based index."""
        index = self._size
        self._store.put_many(append_hashes(index, leaf_hash(data), self._store.get))
        self._size = index + 1
        return index

    def root(self, size: int | None = None) -> bytes:
        """The root now, or of the first ``size`` leaves."""
        return root(self._at(size), self._store.get)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """PATH for leaf ``index`` in the tree now, or of the first ``size`` leaves."""
        return inclusion_proof(index, self._at(size), self._store.get)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """PROOF from ``old_size`` to the tree now, or to ``new_size``."""
        return consistency_proof(old_size, self._at(new_size), self._store.get)

    def _at(self, size: int | None) -> int:
        if size is None:
            return self._size
        if not 0 <= size <= self._size:
            raise ValueError(f"size {size} is not in 0..{self._size}")
        return size
