"""The search part of the SQLCipher store: the blind index in ``child_token``.

One row per (token, child), keyed by the token first so a look-up is a range scan of the
primary key; ``child_token_by_child`` serves replacing a child's tokens. A child's rows go
with it (``ON DELETE CASCADE``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Final

from childreg.errors import NotFound
from node.store.search import SearchStore
from node.store.sqlcipher.transaction import SqlCipherBase

_IN_CHUNK: Final = 500  # child ids per IN (...) list
_ADD: Final = "INSERT OR IGNORE INTO child_token(token, child) VALUES (?, ?)"


class SqlCipherSearch(SqlCipherBase, SearchStore):
    """Index tokens in the ``child_token`` table (migration 8)."""

    def _surrogates(self, child_ids: Collection[str]) -> dict[str, int]:
        ids = list(set(child_ids))
        found: dict[str, int] = {}
        for i in range(0, len(ids), _IN_CHUNK):
            chunk = ids[i : i + _IN_CHUNK]
            marks = ", ".join("?" * len(chunk))
            rows = self._conn.execute(
                f"SELECT child_id, id FROM child WHERE child_id IN ({marks})", chunk
            ).fetchall()
            found.update({child_id: int(surrogate) for child_id, surrogate in rows})
        return found

    def replace_child_tokens(self, child_id: str, tokens: Collection[bytes]) -> None:
        """Make ``tokens`` the child's whole set of index tokens."""
        self._not_viewing()
        with self._lock, self._nesting.enter(self._transaction):
            surrogate = self._surrogates([child_id]).get(child_id)
            if surrogate is None:
                raise NotFound("no such child")
            self._conn.execute("DELETE FROM child_token WHERE child = ?", (surrogate,))
            self._conn.executemany(_ADD, [(token, surrogate) for token in tokens])

    def add_child_tokens(self, rows: Sequence[tuple[str, Collection[bytes]]]) -> None:
        """Add each row's tokens to its child (children stored already)."""
        self._not_viewing()
        if not rows:
            return
        with self._lock, self._nesting.enter(self._transaction):
            surrogates = self._surrogates([child_id for child_id, _ in rows])
            if len(surrogates) != len({child_id for child_id, _ in rows}):
                raise NotFound("no such child")
            values: list[tuple[Any, ...]] = [
                (token, surrogates[child_id]) for child_id, tokens in rows for token in tokens
            ]
            self._conn.executemany(_ADD, values)

    def children_matching(self, groups: Sequence[Collection[bytes]]) -> set[str]:
        """The child ids holding at least one token of each group."""
        lists = [list(set(group)) for group in groups]
        if not lists or any(not group for group in lists):
            return set()
        selects = " INTERSECT ".join(
            f"SELECT child FROM child_token WHERE token IN ({', '.join('?' * len(g))})"
            for g in lists
        )
        params = [token for group in lists for token in group]
        rows = self._query(f"SELECT child_id FROM child WHERE id IN ({selects})", params)
        return {child_id for (child_id,) in rows}

    def child_tokens(self, child_id: str) -> set[bytes]:
        """The child's index tokens."""
        rows = self._query(
            "SELECT t.token FROM child_token t JOIN child c ON c.id = t.child WHERE c.child_id = ?",
            (child_id,),
        )
        return {bytes(token) for (token,) in rows}
