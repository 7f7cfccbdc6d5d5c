"""The search part of a store: the blind index of keyed tokens per child.

What :mod:`node.records.search` needs to find children without the store ever seeing a
name: each child has a set of opaque tokens (keyed hashes the domain makes), and a look-up
asks which children hold tokens. The store learns only which children share a token.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Collection, Sequence

from node.store.transactional import Transactional


class SearchStore(Transactional):
    """Where a node keeps its blind search index.

    Contract (every implementation), besides :class:`~node.store.transactional.Transactional`'s:

    - ``replace_child_tokens`` MUST make the child's tokens exactly the given ones and
      raise :class:`childreg.errors.NotFound` (changing nothing) for an unknown child.
    - ``add_child_tokens`` adds tokens to children already stored (the bulk path of an
      import, in the same transaction as the children); NotFound for an unknown child.
    - ``children_matching`` MUST return exactly the child ids that hold at least one token
      of every group (an empty list of groups, or an empty group, matches nobody).
    - ``child_tokens`` returns the child's tokens (empty for an unknown child).
    """

    @abstractmethod
    def replace_child_tokens(self, child_id: str, tokens: Collection[bytes]) -> None:
        """Make ``tokens`` the child's whole set of index tokens."""

    @abstractmethod
    def add_child_tokens(self, rows: Sequence[tuple[str, Collection[bytes]]]) -> None:
        """Add each row's tokens to its child (children stored already)."""

    @abstractmethod
    def children_matching(self, groups: Sequence[Collection[bytes]]) -> set[str]:
        """The child ids holding at least one token of each group."""

    @abstractmethod
    def child_tokens(self, child_id: str) -> set[bytes]:
        """The child's index tokens."""
