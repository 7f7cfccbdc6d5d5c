"""The search part of the in-memory store: the blind index as two dictionaries."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from childreg.errors import NotFound
from node.store.memory.state import MemoryBase
from node.store.search import SearchStore


class MemorySearch(MemoryBase, SearchStore):
    """Tokens by child and children by token."""

    def replace_child_tokens(self, child_id: str, tokens: Collection[bytes]) -> None:
        """Make ``tokens`` the child's whole set of index tokens."""
        with self._lock:
            s = self._writable()
            if child_id not in s.children:
                raise NotFound("no such child")
            for token in s.tokens_of.pop(child_id, set()):
                holders = s.by_token[token]
                holders.discard(child_id)
                if not holders:
                    del s.by_token[token]
            self._add(child_id, tokens)

    def add_child_tokens(self, rows: Sequence[tuple[str, Collection[bytes]]]) -> None:
        """Add each row's tokens to its child (children stored already)."""
        with self._lock:
            s = self._writable()
            if any(child_id not in s.children for child_id, _ in rows):
                raise NotFound("no such child")
            for child_id, tokens in rows:
                self._add(child_id, tokens)

    def _add(self, child_id: str, tokens: Collection[bytes]) -> None:
        s = self._state
        s.tokens_of.setdefault(child_id, set()).update(tokens)
        for token in tokens:
            s.by_token.setdefault(token, set()).add(child_id)

    def children_matching(self, groups: Sequence[Collection[bytes]]) -> set[str]:
        """The child ids holding at least one token of each group."""
        with self._lock:
            by_token = self._live().by_token
            found: set[str] | None = None
            for group in groups:
                holders: set[str] = set()
                for token in group:
                    holders |= by_token.get(token, set())
                found = holders if found is None else found & holders
                if not found:
                    return set()
            return found or set()

    def child_tokens(self, child_id: str) -> set[bytes]:
        """The child's index tokens."""
        with self._lock:
            return set(self._live().tokens_of.get(child_id, set()))
