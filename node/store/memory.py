"""A record store in process memory: fast, for tests; the reference the SQL store must match.

It honours the whole :class:`~node.store.base.RecordStore` contract, including rollback of
an ``atomic()`` block (by restoring a snapshot taken when the outermost block starts), and
computes count tables in plain Python with :mod:`childreg.codes`, so the contract tests can
compare the SQLCipher store's SQL against it. One re-entrant lock guards everything: a
read from another thread waits while an ``atomic()`` block or a ``read_view()`` is open.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from childreg import codes
from childreg.errors import AlreadyExists, NotFound
from childreg.secagg.roster import Participation
from node.store.base import (
    BlockNesting,
    ExtractSource,
    LedgerEntry,
    NewChild,
    RecordStore,
    StoredAssessment,
    StoredBreakGlass,
    StoredCareSetting,
    StoredChild,
    StoredConsent,
    StoredPlacement,
    records_of,
)


@dataclass
class _State:
    children: dict[str, StoredChild] = field(default_factory=dict)
    by_hash: dict[bytes, str] = field(default_factory=dict)
    placements: dict[str, dict[str, StoredPlacement]] = field(default_factory=dict)
    care: dict[str, dict[dt.date, StoredCareSetting]] = field(default_factory=dict)
    assessments: dict[str, list[StoredAssessment]] = field(default_factory=dict)
    ledger: list[LedgerEntry] = field(default_factory=list)
    leaves: list[bytes] = field(default_factory=list)
    hashes: dict[tuple[int, int], bytes] = field(default_factory=dict)
    checkpoints: dict[int, str] = field(default_factory=dict)
    consents: dict[str, StoredConsent] = field(default_factory=dict)
    breakglass: list[StoredBreakGlass] = field(default_factory=list)
    participation: dict[str, Participation] = field(default_factory=dict)

    def copy(self) -> _State:
        return _State(
            dict(self.children),
            dict(self.by_hash),
            {k: dict(v) for k, v in self.placements.items()},
            {k: dict(v) for k, v in self.care.items()},
            {k: list(v) for k, v in self.assessments.items()},
            list(self.ledger),
            list(self.leaves),
            dict(self.hashes),
            dict(self.checkpoints),
            dict(self.consents),
            list(self.breakglass),
            dict(self.participation),
        )


def _copy_assessment(a: StoredAssessment, assessment_id: int | None = None) -> StoredAssessment:
    return dataclasses.replace(
        a,
        assessment_id=a.assessment_id if assessment_id is None else assessment_id,
        sealed_fields=dict(a.sealed_fields),
    )


class MemoryStore(RecordStore):
    """Records in dictionaries, guarded by one re-entrant lock."""

    def __init__(self) -> None:
        self._state = _State()
        self._lock = threading.RLock()
        self._nesting = BlockNesting()
        self._viewer: int | None = None  # the thread inside read_view(), if any
        self._closed = False

    def _live(self) -> _State:
        if self._closed:
            raise RuntimeError("the store is closed")
        return self._state

    def _writable(self) -> _State:
        """The state to change (caller holds the lock); RuntimeError inside a read view."""
        if self._viewer == threading.get_ident():
            raise RuntimeError("cannot write inside read_view()")
        return self._live()

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """A block whose writes commit together; nested blocks join the outermost one."""
        with self._lock:
            self._writable()
            with self._nesting.enter(self._snapshot):
                yield

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        snapshot = self._live().copy()
        try:
            yield
        except BaseException:
            self._state = snapshot
            raise

    @contextmanager
    def read_view(self) -> Iterator[None]:
        """Holds the lock, so no other thread changes anything until the block ends."""
        with self._lock:
            me = threading.get_ident()
            if me in (self._viewer, self._nesting.owner):
                yield
                return
            self._live()
            self._viewer = me
            try:
                yield
            finally:
                self._viewer = None

    def insert_child(self, child: StoredChild) -> None:
        """Add a new child; AlreadyExists if the id or national-id hash is taken."""
        with self._lock:
            s = self._writable()
            if child.child_id in s.children:
                raise AlreadyExists("a child with this child_id already exists")
            if child.national_id_hash is not None and child.national_id_hash in s.by_hash:
                raise AlreadyExists("a child with this national id already exists")
            s.children[child.child_id] = child
            if child.national_id_hash is not None:
                s.by_hash[child.national_id_hash] = child.child_id

    def insert_new_children(self, rows: Sequence[NewChild]) -> None:
        """Add new children with their first records, all or none; AlreadyExists if any is held."""
        with self._lock:
            s = self._writable()
            ids: set[str] = set()
            digests: set[bytes] = set()
            for (child_id, _, _, digest, *_), *_ in rows:  # check everything before changing
                if child_id in s.children or child_id in ids:
                    raise AlreadyExists("a child with this child_id already exists")
                if digest is not None and (digest in s.by_hash or digest in digests):
                    raise AlreadyExists("a child with this national id already exists")
                ids.add(child_id)
                if digest is not None:
                    digests.add(digest)
            records = [records_of(row) for row in rows]  # a malformed row changes nothing
            for child, placement, care, assessment in records:
                child_id = child.child_id
                s.children[child_id] = child
                if child.national_id_hash is not None:
                    s.by_hash[child.national_id_hash] = child_id
                s.placements[child_id] = {placement.academic_year: placement}
                if care is not None:
                    s.care[child_id] = {care.since: care}
                if assessment is not None:
                    s.assessments[child_id] = [assessment]

    def existing_child_ids(self, child_ids: Iterable[str]) -> set[str]:
        """Those of ``child_ids`` that are held."""
        with self._lock:
            held = self._live().children
            return {child_id for child_id in child_ids if child_id in held}

    def existing_national_id_hashes(self, digests: Iterable[bytes]) -> set[bytes]:
        """Those of ``digests`` that some held child has as its national-id hash."""
        with self._lock:
            held = self._live().by_hash
            return {digest for digest in digests if digest in held}

    def replace_child(self, child: StoredChild) -> None:
        """Replace an existing child's row; NotFound if absent; AlreadyExists on a hash clash."""
        with self._lock:
            s = self._writable()
            old = self._require(child.child_id)
            digest = child.national_id_hash
            if digest is not None and s.by_hash.get(digest, child.child_id) != child.child_id:
                raise AlreadyExists("a child with this national id already exists")
            if old.national_id_hash is not None:
                del s.by_hash[old.national_id_hash]
            if digest is not None:
                s.by_hash[digest] = child.child_id
            s.children[child.child_id] = child

    def get_child(self, child_id: str) -> StoredChild | None:
        """The child's row, or None."""
        with self._lock:
            return self._live().children.get(child_id)

    def find_by_national_id_hash(self, digest: bytes) -> str | None:
        """The child id holding this national-id hash, or None."""
        with self._lock:
            return self._live().by_hash.get(digest)

    def upsert_placement(self, placement: StoredPlacement) -> None:
        """Set the child's placement for that academic year."""
        with self._lock:
            s = self._writable()
            self._require(placement.child_id)
            per_year = s.placements.setdefault(placement.child_id, {})
            per_year[placement.academic_year] = placement

    def put_care_setting(self, care: StoredCareSetting) -> None:
        """Record the child's care setting from a date on."""
        with self._lock:
            s = self._writable()
            self._require(care.child_id)
            s.care.setdefault(care.child_id, {})[care.since] = care

    def add_assessment(self, assessment: StoredAssessment) -> int:
        """Add an assessment and return its new id (1, 2, … per child)."""
        with self._lock:
            s = self._writable()
            self._require(assessment.child_id)
            existing = s.assessments.setdefault(assessment.child_id, [])
            new_id = existing[-1].assessment_id + 1 if existing else 1
            existing.append(_copy_assessment(assessment, assessment_id=new_id))
            return new_id

    def placements(self, child_id: str) -> list[StoredPlacement]:
        """The child's placements, by academic year."""
        with self._lock:
            per_year = self._live().placements.get(child_id, {})
            return [per_year[year] for year in sorted(per_year)]

    def care_settings(self, child_id: str) -> list[StoredCareSetting]:
        """The child's care settings, by date."""
        with self._lock:
            per_date = self._live().care.get(child_id, {})
            return [per_date[since] for since in sorted(per_date)]

    def assessments(self, child_id: str) -> list[StoredAssessment]:
        """The child's assessments, by id."""
        with self._lock:
            return [_copy_assessment(a) for a in self._live().assessments.get(child_id, [])]

    def child_ids(self) -> Iterator[str]:
        """Every child id, sorted."""
        with self._lock:
            ids = sorted(self._live().children)
        return iter(ids)

    def child_count(self) -> int:
        """How many children are stored."""
        with self._lock:
            return len(self._live().children)

    def count_table(
        self, academic_year: str, reference_date: dt.date, dimensions: Sequence[str]
    ) -> dict[tuple[str, ...], int]:
        """Sparse counts of children placed in ``academic_year``, by ``dimensions``."""
        for d in dimensions:
            codes.codes(d)  # KeyError for an unknown dimension, as in the SQL store
        counts: dict[tuple[str, ...], int] = {}
        with self._lock:
            s = self._live()
            for child_id, per_year in s.placements.items():
                placement = per_year.get(academic_year)
                if placement is None:
                    continue
                categories = self._categories(child_id, placement, reference_date)
                cell = tuple(categories[d] for d in dimensions)
                counts[cell] = counts.get(cell, 0) + 1
        return counts

    def ledger(self, snapshot: str) -> list[LedgerEntry]:
        """Every privacy-ledger entry of ``snapshot``, in the order they were appended."""
        with self._lock:
            return [e for e in self._live().ledger if e.snapshot == snapshot]

    def append_ledger(self, entry: LedgerEntry) -> None:
        """Append an entry; AlreadyExists if its (snapshot, version, table) is there already."""
        with self._lock:
            state = self._writable()
            key = (entry.snapshot, entry.catalogue_version, entry.table_id)
            if any((e.snapshot, e.catalogue_version, e.table_id) == key for e in state.ledger):
                raise AlreadyExists("this table is already in the privacy ledger")
            state.ledger.append(entry)

    def participation(self, snapshot: str) -> Participation | None:
        """The participation recorded for ``snapshot``, or None."""
        with self._lock:
            return self._live().participation.get(snapshot)

    def record_participation(self, snapshot: str, participation: Participation) -> None:
        """Record ``participation`` unless one is recorded already (never overwrites)."""
        with self._lock:
            self._writable().participation.setdefault(snapshot, participation)

    def audit_size(self) -> int:
        """How many leaves the audit log holds."""
        with self._lock:
            return len(self._live().leaves)

    def audit_append(self, body: bytes, rows: Sequence[tuple[int, int, bytes]], index: int) -> int:
        """Append a leaf (index = the current size) with its new Merkle rows; its index."""
        with self._lock, self.atomic():
            state = self._writable()
            if index != len(state.leaves):
                raise AlreadyExists("an audit leaf would be overwritten or skipped")
            for level, idx, digest in rows:
                if state.hashes.setdefault((level, idx), digest) != digest:
                    raise AlreadyExists("a Merkle row would be overwritten")
            state.leaves.append(bytes(body))
            return len(state.leaves) - 1

    def audit_hash(self, level: int, index: int) -> bytes:
        """A stored complete-subtree hash; KeyError if absent (a corruption signal)."""
        with self._lock:
            return self._live().hashes[level, index]

    def audit_leaves(self, start: int, end: int) -> list[bytes]:
        """Leaf bytes with indices in [start, end)."""
        with self._lock:
            return list(self._live().leaves[start:end])

    def audit_put_checkpoint(self, size: int, note: str) -> None:
        """Keep a signed checkpoint (one per size; a second for one size is refused)."""
        with self._lock:
            state = self._writable()
            if size in state.checkpoints:
                raise AlreadyExists("a checkpoint of this size exists")
            state.checkpoints[size] = note

    def audit_checkpoint(self, size: int | None = None) -> tuple[int, str] | None:
        """The checkpoint of ``size`` (default: the latest), or None."""
        with self._lock:
            held = self._live().checkpoints
            if not held:
                return None
            key = max(held) if size is None else size
            return (key, held[key]) if key in held else None

    def insert_consent(self, consent: StoredConsent) -> None:
        """Add a consent; AlreadyExists if its id or grant hash is taken."""
        with self._lock:
            state = self._writable()
            if consent.consent_id in state.consents or any(
                c.grant_hash == consent.grant_hash for c in state.consents.values()
            ):
                raise AlreadyExists("a consent with this id or grant exists")
            state.consents[consent.consent_id] = consent

    def get_consent(self, consent_id: str) -> StoredConsent | None:
        """One consent by id, or None."""
        with self._lock:
            return self._live().consents.get(consent_id)

    def extract_source(self, grant_hash: bytes, academic_year: str) -> ExtractSource | None:
        """The consent of a grant with what its extract is made of, or None."""
        with self._lock:
            state = self._live()
            consent = next((c for c in state.consents.values() if c.grant_hash == grant_hash), None)
            if consent is None:
                return None
            child = state.children.get(consent.child_id)
            if child is None:
                return ExtractSource(consent, None, None, None)
            latest = max(
                state.assessments.get(child.child_id, []),
                key=lambda a: (a.assessment_date, -a.assessment_id),
                default=None,
            )
            placement = state.placements.get(child.child_id, {}).get(academic_year)
            return ExtractSource(
                consent,
                child,
                None if latest is None else _copy_assessment(latest),
                None if placement is None else placement.education_form,
            )

    def consents_of(self, child_id: str) -> list[StoredConsent]:
        """A child's consents, oldest first."""
        with self._lock:
            found = [c for c in self._live().consents.values() if c.child_id == child_id]
            return sorted(found, key=lambda c: (c.granted_at, c.consent_id))

    def withdraw_consent(self, consent_id: str, at: dt.datetime) -> bool:
        """Mark a standing consent withdrawn; False if absent or withdrawn already."""
        with self._lock:
            state = self._writable()
            held = state.consents.get(consent_id)
            if held is None or held.withdrawn_at is not None:
                return False
            state.consents[consent_id] = dataclasses.replace(held, withdrawn_at=at)
            return True

    def add_breakglass(self, entry: StoredBreakGlass) -> None:
        """Keep an emergency access (never changed or removed)."""
        with self._lock:
            self._writable().breakglass.append(entry)

    def breakglass_of(self, child_id: str) -> list[StoredBreakGlass]:
        """A child's emergency accesses, oldest first."""
        with self._lock:
            return [e for e in self._live().breakglass if e.child_id == child_id]

    def catalogue_versions(self) -> dict[int, str]:
        """Every catalogue version the ledger holds (any snapshot), with its digest."""
        with self._lock:
            return {e.catalogue_version: e.catalogue_digest for e in self._live().ledger}

    def close(self) -> None:
        """Drop every record; the store is unusable afterwards."""
        with self._lock:
            self._state = _State()
            self._closed = True

    def _categories(self, child_id: str, placement: StoredPlacement, on: dt.date) -> dict[str, str]:
        s = self._state
        child = s.children[child_id]
        cares = [c for c in s.care.get(child_id, {}).values() if c.since <= on]
        banded = [
            a
            for a in s.assessments.get(child_id, [])
            if a.assessment_date <= on and a.impairment_band is not None
        ]
        care = max(cares, key=lambda c: c.since).care_setting if cares else None
        latest = max(banded, key=lambda a: (a.assessment_date, a.assessment_id), default=None)
        return {
            "education_form": placement.education_form,
            "sex": child.sex,
            "age_band": codes.age_band(child.date_of_birth, on),
            "care_setting": care or codes.CARE_NOT_RECORDED,
            "impairment_band": (
                latest.impairment_band
                if latest and latest.impairment_band
                else codes.IMPAIRMENT_NOT_ASSESSED
            ),
            "district": child.district,
            "region": codes.DISTRICT_REGION[child.district],
        }

    def _require(self, child_id: str) -> StoredChild:
        child = self._live().children.get(child_id)
        if child is None:
            raise NotFound(f"no child with child_id {child_id}")
        return child
