"""The KEK rotation's part of the SQLCipher store: every child's wrapped key and the generation.

Why its own part: a KEK rotation (node/kek_rotation.py) rewraps every child's data key and
records the new KEK generation in one transaction, the rotation's commit point; the memory
store has no keyring file, so this exists only for the on-disk store. Nothing here sees an
unwrapped key: it reads and writes wrapped keys only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Final

from node.store.sqlcipher.transaction import SqlCipherBase

_PAGE: Final = 2000  # children read per round trip by wrapped_keys()


class SqlCipherKeys(SqlCipherBase):
    """Wrapped child keys and the KEK generation, for a KEK rotation."""

    def kek_generation(self) -> int:
        """The generation of the KEK that wraps every child key (1 until a rotation)."""
        rows = self._query("SELECT generation FROM kek_state WHERE id = 1")
        return int(rows[0][0])

    def child_count(self) -> int:
        """How many children hold a wrapped key."""
        return int(self._query("SELECT count(*) FROM child")[0][0])

    def wrapped_keys(self) -> Iterator[list[tuple[int, str, int, bytes]]]:
        """Every child's (row id, child id, key version, wrapped key), in pages by row id."""
        after = -1
        while True:
            rows = self._query(
                "SELECT id, child_id, key_version, wrapped_key FROM child "
                "WHERE id > ? ORDER BY id LIMIT ?",
                (after, _PAGE),
            )
            if not rows:
                return
            yield [(int(i), str(c), int(v), bytes(w)) for i, c, v, w in rows]
            after = int(rows[-1][0])

    def put_wrapped_keys(self, rows: Sequence[tuple[int, bytes, int]]) -> None:
        """Set each (row id, wrapped key, key version); call inside ``atomic()``."""
        with self.atomic():
            self._conn.executemany(
                "UPDATE child SET wrapped_key = ?, key_version = ? WHERE id = ?",
                [(wrapped, version, row) for row, wrapped, version in rows],
            )

    def set_kek_generation(self, generation: int) -> None:
        """Record the generation of the KEK that now wraps every child key."""
        with self.atomic():
            self._conn.execute("UPDATE kek_state SET generation = ? WHERE id = 1", (generation,))
