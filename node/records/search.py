"""Finding children, and the duplicate warning at registration, over a blind index.

Names are sealed at rest, so the store cannot search them. Instead each child carries a
set of *tokens*: keyed BLAKE2b-128 hashes, under a key derived from the keyring
(:meth:`~node.crypto.keys.Keyring.search_index_key`), of what a search can ask for — the
prefixes and the phonetic key of each name word's skeleton (:mod:`node.records.names`),
the birth date and year, the district, the latest school — and of *blocking* keys for
the duplicate check (a name word's phonetic key or first four letters with the birth
year). A look-up hashes the query the same way, asks the store which children hold the
tokens (:meth:`~node.store.search.SearchStore.children_matching`), then unseals only
those candidates and ranks them with rapidfuzz. docs/design/privacy.md says what the
tokens reveal and to whom.

The day/month swap of a birth date is handled on the query side (the swapped date is
looked up as a birth date), so the index stores one date token per child.

A closed record (node/records/registry.py ``close_child``) is found only when the query
asks for closed records too (``include_closed``); a duplicate check sees closed records
as well, marked closed, since a child whose record was closed may come back.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from childreg.models import ChildIn
from childreg.search import DuplicateCandidate, SearchHit, SearchPage, SearchQuery
from node.crypto.keys import Keyring
from node.records import names
from node.store.base import RecordStore, StoredChild

#: Longest name prefix indexed (a longer query word is looked up by its first letters).
MAX_PREFIX: Final = 10
#: Days either side of a birth date that still count as "close" for a duplicate.
CLOSE_DAYS: Final = 3
#: Least name similarity (0..1, rapidfuzz Jaro-Winkler on skeletons) of a likely duplicate.
DUPLICATE_NAME_SIMILARITY: Final = 0.87
#: Least score of a search hit for a name query.
SEARCH_SIMILARITY: Final = 0.8
#: The identity fields' sealing context (node/records/registry.py).
_IDENTITY: Final = "identity"
_PAGE_TOKEN: Final = re.compile(r"^p(\d{1,9})$")


def normalised_school(school: str) -> str:
    """A school's name as the index keeps it: NFKC, casefolded, spaces collapsed."""
    return " ".join(unicodedata.normalize("NFKC", school).casefold().split())


def swapped(day: dt.date) -> dt.date | None:
    """The date with day and month exchanged, if that is another valid date."""
    if day.day > 12 or day.day == day.month:
        return None
    return dt.date(day.year, day.day, day.month)


class Tokens:
    """Makes the index's keyed tokens; one per (kind, value), 16 bytes each."""

    def __init__(self, keyring: Keyring) -> None:
        self._key = keyring.search_index_key()

    def token(self, kind: str, value: str) -> bytes:
        """The keyed token of ``value`` as a ``kind`` (e.g. ``np`` name prefix)."""
        data = f"{kind}\0{value}".encode()
        return hashlib.blake2b(data, digest_size=16, key=self._key).digest()

    def of_child(self, child: ChildIn, school: str | None) -> frozenset[bytes]:
        """Every token of a child with its latest school (None if not placed in one)."""
        t = self.token
        born = child.date_of_birth
        year = str(born.year)
        out = {
            t("db", born.isoformat()),
            t("dy", year),
            t("di", child.district),
        }
        if school:
            out.add(t("sc", normalised_school(school)))
        for word in names.words(child.given_name) + names.words(child.family_name):
            key = names.phonetic(word)
            out.update(t("np", word[:k]) for k in range(2, min(len(word), MAX_PREFIX) + 1))
            out.add(t("nf", key))
            out.add(t("bn", f"{key}|{year}"))
            out.add(t("bk", f"{word[:4]}|{year}"))
        return frozenset(out)


@dataclass(frozen=True)
class _Known:
    """A candidate unsealed: its stored row and its names."""

    stored: StoredChild
    given: str
    family: str

    @property
    def skeletons(self) -> tuple[str, str]:
        return names.skeleton(self.given), names.skeleton(self.family)


class ChildIndex:
    """The registry's search and duplicate check over the store's blind index."""

    def __init__(self, store: RecordStore, keyring: Keyring) -> None:
        self._store = store
        self._keys = keyring
        self.tokens = Tokens(keyring)

    # --- maintaining ------------------------------------------------------------------
    def index(self, child: ChildIn, school: str | None) -> None:
        """Make the child's tokens those of ``child`` and ``school`` (its latest placement's
        institution); call after any change to the child's names, birth date, district or
        placements (inside the same ``atomic()`` block)."""
        self._store.replace_child_tokens(child.child_id, self.tokens.of_child(child, school))

    def reindex(self, stored: StoredChild) -> None:
        """Recompute a stored child's tokens from its row, its sealed names and its latest
        school (after a new placement, or for a store made before the index): unseals the
        identity only, not the whole record."""
        known = self._open(stored.child_id)
        child = ChildIn(
            child_id=stored.child_id,
            given_name=known.given,
            family_name=known.family,
            date_of_birth=stored.date_of_birth,
            sex=stored.sex,
            district=stored.district,
        )
        self.index(child, self.latest_school(stored.child_id))

    def latest_school(self, child_id: str) -> str | None:
        """The institution of the child's latest placement, if any."""
        placements = self._store.placements(child_id)
        return placements[-1].institution if placements else None

    # --- searching --------------------------------------------------------------------
    def find(self, query: SearchQuery) -> SearchPage:
        """The page of children matching every criterion of ``query``, best first."""
        t = self.tokens.token
        groups: list[set[bytes]] = []
        query_words = names.words(query.name) if query.name else []
        for word in query_words:
            # Its prefix, its phonetic key, and (for a typo past the third letter) its
            # first three letters: a child must match each query word one of these ways.
            # (Two letters found 0.992 of misspelt children against 0.968, but put search
            # p95 at 100,000 children at 25 ms against 9 ms: docs/performance.md.)
            short = {3}
            group = {t("nf", names.phonetic(word))}
            group.update(t("np", word[:k]) for k in {min(len(word), MAX_PREFIX), *short} if k >= 2)
            groups.append(group)
        if query.date_of_birth is not None:
            groups.append({t("db", query.date_of_birth.isoformat())})
        if query.district is not None:
            groups.append({t("di", query.district)})
        if query.school is not None:
            groups.append({t("sc", normalised_school(query.school))})
        with self._store.read_view():
            if query.national_id is not None:
                held = self._store.find_by_national_id_hash(
                    self._keys.national_id_hash(query.national_id)
                )
                ids = set() if held is None else {held}
                if groups and ids:
                    ids &= self._store.children_matching(groups)
            else:
                ids = self._store.children_matching(groups)
            if query.name is not None and not query_words:
                ids = set()
            closed = self._store.closed_children(ids)
            scored: list[tuple[float, str, _Known]] = []
            for child_id in ids:
                if child_id in closed and not query.include_closed:
                    continue
                known = self._open(child_id)
                score = _query_score(query_words, known) if query_words else 1.0
                if score >= SEARCH_SIMILARITY:
                    scored.append((score, child_id, known))
            scored.sort(key=lambda item: (-item[0], item[1]))
            start = _offset(query.page_token)
            end = start + query.page_size
            hits = tuple(
                self._hit(known, score, cid in closed) for score, cid, known in scored[start:end]
            )
        return SearchPage(hits=hits, next_page_token=f"p{end}" if end < len(scored) else None)

    # --- the duplicate warning ----------------------------------------------------------
    def likely_duplicates(self, child: ChildIn) -> tuple[DuplicateCandidate, ...]:
        """Children already held that may be ``child``, most likely first.

        Same national id; or a similar name (any script, typos, given and family names
        swapped) with the same birth date, one within :data:`CLOSE_DAYS`, or the day and
        month swapped. Blocking: only children sharing a name-and-year token and a
        birth-date token are unsealed and compared.
        """
        t = self.tokens.token
        born = child.date_of_birth
        days = [born + dt.timedelta(days=d) for d in range(-CLOSE_DAYS, CLOSE_DAYS + 1)]
        swap = swapped(born)
        dates = days + ([swap] if swap else [])
        years = sorted({str(d.year) for d in dates})
        name_group: set[bytes] = set()
        for word in names.words(child.given_name) + names.words(child.family_name):
            key = names.phonetic(word)
            for year in years:
                name_group.add(t("bn", f"{key}|{year}"))
                name_group.add(t("bk", f"{word[:4]}|{year}"))
        date_group = {t("db", d.isoformat()) for d in dates}
        given, family = names.skeleton(child.given_name), names.skeleton(child.family_name)
        found: dict[str, tuple[float, list[str], _Known]] = {}
        with self._store.read_view():
            if child.national_id is not None:
                held = self._store.find_by_national_id_hash(
                    self._keys.national_id_hash(child.national_id)
                )
                if held is not None and held != child.child_id:
                    found[held] = (1.0, ["same national id"], self._open(held))
            for child_id in self._store.children_matching([name_group, date_group]):
                if child_id == child.child_id:
                    continue
                known = found[child_id][2] if child_id in found else self._open(child_id)
                why = _duplicate_reasons(given, family, born, swap, known)
                if why is None:
                    continue
                score, reasons = why
                if child_id in found:
                    found[child_id] = (1.0, found[child_id][1] + reasons, known)
                else:
                    found[child_id] = (score, reasons, known)
            closed = self._store.closed_children(found)
        ranked = sorted(found.items(), key=lambda item: (-item[1][0], item[0]))
        return tuple(
            DuplicateCandidate(hit=self._hit(known, score, cid in closed), reasons=tuple(reasons))
            for cid, (score, reasons, known) in ranked
        )

    # --- helpers ------------------------------------------------------------------------
    def _open(self, child_id: str) -> _Known:
        stored = self._store.get_child(child_id)
        if stored is None:  # cannot happen: the index only names stored children
            raise RuntimeError("the search index names a child that is not stored")
        key = self._keys.child_key(child_id, stored.key_version, stored.wrapped_key)
        identity = json.loads(self._keys.unseal(key, child_id, _IDENTITY, stored.sealed_identity))
        return _Known(stored, identity["given_name"], identity["family_name"])

    def _hit(self, known: _Known, score: float, closed: bool) -> SearchHit:
        s = known.stored
        return SearchHit(
            child_id=s.child_id,
            given_name=known.given,
            family_name=known.family,
            date_of_birth=s.date_of_birth,
            district=s.district,
            school=self.latest_school(s.child_id),
            closed=closed,
            score=round(min(1.0, max(0.0, score)), 3),
        )


def _offset(page_token: str | None) -> int:
    """The offset a page token stands for (0 for the first page or a foreign token)."""
    if page_token is None:
        return 0
    match = _PAGE_TOKEN.match(page_token)
    return int(match.group(1)) if match else 0


def _query_score(query_words: Iterable[str], known: _Known) -> float:
    """How well a child's names answer the query's words: each word's best match among
    the child's name words (1.0 for a prefix), averaged."""
    held = names.words(known.given) + names.words(known.family)
    if not held:
        return 0.0
    scores = [
        max(1.0 if word.startswith(q) else names.similarity(q, word) for word in held)
        for q in query_words
    ]
    return sum(scores) / len(scores) if scores else 0.0


def _duplicate_reasons(
    given: str, family: str, born: dt.date, swap: dt.date | None, known: _Known
) -> tuple[float, list[str]] | None:
    """The score and reasons if ``known`` is a likely duplicate of the new child, else None."""
    other_given, other_family = known.skeletons
    straight = (names.similarity(given, other_given) + names.similarity(family, other_family)) / 2
    crossed = (names.similarity(given, other_family) + names.similarity(family, other_given)) / 2
    similarity = max(straight, crossed)
    if similarity < DUPLICATE_NAME_SIMILARITY:
        return None
    other = known.stored.date_of_birth
    if other == born:
        date_reason, date_score = "same birth date", 1.0
    elif swap is not None and other == swap:
        date_reason, date_score = "birth day and month swapped", 0.95
    elif abs((other - born).days) <= CLOSE_DAYS:
        date_reason, date_score = "close birth date", 0.9
    else:
        return None
    reasons = ["similar name" if similarity < 1.0 else "same name"]
    if crossed > straight:
        reasons.append("given and family names swapped")
    reasons.append(date_reason)
    return similarity * date_score, reasons
