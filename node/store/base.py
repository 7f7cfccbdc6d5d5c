"""The storage contract every record store honours (in-memory for tests, SQLCipher for real).

Stores hold records in their *stored* form: identity fields and sensitive assessment fields
arrive already sealed (ciphertext) by the domain layer, so a store never sees a name or a
diagnosis in the clear and never sees protobuf. One contract test suite
(tests/contract/test_store_contract.py) runs against every implementation.
:class:`BlockNesting` is the nesting of ``atomic()`` blocks both stores share.
"""

from __future__ import annotations

import datetime as dt
import functools
import struct
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Final, Literal

from childreg.secagg.roster import Participation

#: How a ledger entry's vector was released (stage 1 or stage 2 of docs/statistics-method.md).
Mechanism = Literal["per-department", "secure-aggregation"]
MECHANISMS: Final[tuple[Mechanism, ...]] = ("per-department", "secure-aggregation")


@dataclass(frozen=True)
class StoredChild:
    """A child row. ``sealed_identity`` is the identity fields sealed under the child's key."""

    child_id: str
    key_version: int
    wrapped_key: bytes
    national_id_hash: bytes | None
    date_of_birth: dt.date
    sex: str
    district: str
    sealed_identity: bytes


@dataclass(frozen=True)
class LedgerEntry:
    """One statistics release in a node's privacy ledger: what was spent, on what, for whom.

    The ledger is append-only: an entry is never changed or removed, so the spend of a
    snapshot only grows. (snapshot, catalogue_version, table_id) is unique, and the entry
    keeps the exact noisy vector released: asking again returns it unchanged, even if the
    records changed since (a recount with the same noise would reveal the change).
    ``catalogue_digest`` names the catalogue's content, so one version number can never
    stand for two different catalogues. ``mechanism`` says how the vector left the node:
    ``per-department`` (stage 1: the full noise, answered in the clear) or
    ``secure-aggregation`` (stage 2: a noise share, masked; ``released`` is the unmasked
    share, which never leaves the node as such).
    """

    snapshot: str
    catalogue_version: int
    catalogue_digest: str
    table_id: str
    rho: Fraction
    released: tuple[int, ...]
    released_at: dt.datetime
    requested_by: str
    mechanism: Mechanism = "per-department"


@dataclass(frozen=True)
class StoredConsent:
    """A guardian's consent to share one purpose's fields with one school.

    ``grant_hash`` is a keyed hash of the grant handed to the school (the grant itself is
    never stored); ``sealed_guardian`` the guardian's name sealed under the child's key.
    """

    consent_id: str
    child_id: str
    purpose: str
    school: str
    valid_from: dt.date
    valid_until: dt.date
    evidence_ref: str
    granted_at: dt.datetime
    granted_by: str
    grant_hash: bytes
    sealed_guardian: bytes
    withdrawn_at: dt.datetime | None = None


@dataclass(frozen=True)
class StoredBreakGlass:
    """An emergency access: who, when, to which child, and why (sealed)."""

    breakglass_id: str
    child_id: str
    at: dt.datetime
    actor: str
    sealed_reason: bytes


@dataclass(frozen=True)
class StoredPlacement:
    """A child's form of education in one academic year (one per child and year)."""

    child_id: str
    academic_year: str
    education_form: str
    institution: str | None


@dataclass(frozen=True)
class StoredCareSetting:
    """A child's care setting from ``since`` on (one per child and date)."""

    child_id: str
    care_setting: str
    since: dt.date


@dataclass(frozen=True)
class StoredAssessment:
    """A commission's assessment; ``sealed_fields`` maps field name -> ciphertext."""

    child_id: str
    assessment_id: int
    assessment_date: dt.date
    commission: str
    impairment_band: str | None
    recommended_form: str | None
    next_review: dt.date | None
    sealed_fields: dict[str, bytes] = field(default_factory=dict)


#: A new child's row: child_id, key_version, wrapped_key, national_id_hash,
#: date_of_birth (ISO), sex, district, sealed_identity.
ChildColumns = tuple[str, int, bytes, bytes | None, str, str, str, bytes]
#: Its first placement: academic_year, education_form, institution.
PlacementColumns = tuple[str, str, str | None]
#: Its care setting: since (ISO), care_setting.
CareColumns = tuple[str, str]
#: Its first assessment: assessment_date (ISO), commission, impairment_band,
#: recommended_form, next_review (ISO), the sealed fields packed by :func:`pack_sealed`.
AssessmentColumns = tuple[str, str, str | None, str | None, str | None, bytes]
#: A brand-new child with its first placement and optional care setting and assessment,
#: as a bulk import writes it. Plain values only, because an import moves every row
#: between processes (:mod:`node.rpc.import_workers`) and into one ``executemany`` per table:
#: tuples of strings and bytes cost a fraction of the ``Stored*`` records to build, pickle
#: and bind. The parts need not repeat the child's id; :func:`records_of` gives the
#: records the row stands for.
NewChild = tuple[ChildColumns, PlacementColumns, CareColumns | None, AssessmentColumns | None]


@functools.lru_cache(maxsize=64)
def _field_header(name: str) -> bytes:
    raw = name.encode("utf-8")
    return struct.pack(">H", len(raw)) + raw


def pack_sealed(fields: Mapping[str, bytes]) -> bytes:
    """Sealed assessment fields as one blob: (u16 name length, name, u32 length, value)*,
    by name."""
    return b"".join(
        [_field_header(name) + struct.pack(">I", len(v)) + v for name, v in sorted(fields.items())]
    )


def unpack_sealed(blob: bytes) -> dict[str, bytes]:
    """The fields of a :func:`pack_sealed` blob."""
    fields: dict[str, bytes] = {}
    at = 0
    while at < len(blob):
        (n,) = struct.unpack_from(">H", blob, at)
        name = blob[at + 2 : at + 2 + n].decode("utf-8")
        (size,) = struct.unpack_from(">I", blob, at + 2 + n)
        start = at + 6 + n
        fields[name] = blob[start : start + size]
        at = start + size
    return fields


def date_or_none(value: str | None) -> dt.date | None:
    """The date of an ISO text, or None for None (a nullable date column)."""
    return None if value is None else dt.date.fromisoformat(value)


def child_columns(c: StoredChild) -> ChildColumns:
    """A child record as the values of its row (the first part of a :data:`NewChild`)."""
    return (
        c.child_id,
        c.key_version,
        c.wrapped_key,
        c.national_id_hash,
        c.date_of_birth.isoformat(),
        c.sex,
        c.district,
        c.sealed_identity,
    )


def assessment_columns(a: StoredAssessment) -> AssessmentColumns:
    """An assessment's values as a :data:`NewChild` holds them: its sealed fields packed."""
    return (
        a.assessment_date.isoformat(),
        a.commission,
        a.impairment_band,
        a.recommended_form,
        None if a.next_review is None else a.next_review.isoformat(),
        pack_sealed(a.sealed_fields),
    )


def records_of(
    row: NewChild,
) -> tuple[StoredChild, StoredPlacement, StoredCareSetting | None, StoredAssessment | None]:
    """The records a bulk row stands for; its assessment is numbered 1."""
    c, p, care, a = row
    child_id = c[0]
    return (
        StoredChild(c[0], c[1], c[2], c[3], dt.date.fromisoformat(c[4]), c[5], c[6], c[7]),
        StoredPlacement(child_id, *p),
        None
        if care is None
        else StoredCareSetting(child_id, care[1], dt.date.fromisoformat(care[0])),
        None
        if a is None
        else StoredAssessment(
            child_id,
            1,
            dt.date.fromisoformat(a[0]),
            a[1],
            a[2],
            a[3],
            date_or_none(a[4]),
            unpack_sealed(a[5]),
        ),
    )


@dataclass(frozen=True, slots=True)
class ExtractSource:
    """What a school's extract is built from, read in one consistent state, sealed as stored.

    ``child`` is None when the consent's child is not held. ``assessment`` is the child's
    latest by assessment date, the one with the lowest id among several of that date (None
    if it has none); ``education_form`` that of its placement in the academic year asked
    for (None if it has none).
    """

    consent: StoredConsent
    child: StoredChild | None
    assessment: StoredAssessment | None
    education_form: str | None


class BlockNesting:
    """How both stores nest ``atomic()`` blocks: inner blocks join the outermost one.

    Use it while holding the store's re-entrant lock, so one thread at a time is inside.
    Only the outermost :meth:`enter` runs ``outermost()``: a context manager that begins a
    transaction and, on leaving, commits it or, if an exception is leaving, rolls it back.
    ``owner`` is the thread inside the outermost block (None when there is none).
    """

    __slots__ = ("_depth", "owner")

    def __init__(self) -> None:
        self._depth = 0
        self.owner: int | None = None

    @contextmanager
    def enter(self, outermost: Callable[[], AbstractContextManager[None]]) -> Iterator[None]:
        """Join the open block, or run ``outermost()`` around a new one."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        with outermost():
            self._depth, self.owner = 1, threading.get_ident()
            try:
                yield
            finally:
                self._depth, self.owner = 0, None


class RecordStore(ABC):
    """Where a node keeps its records.

    Contract (every implementation):

    - Writes MUST be atomic per call, and every write inside ``with store.atomic():`` MUST
      commit together or not at all: an exception leaving the block rolls back every write
      made inside it. Nested ``atomic()`` blocks join the outermost one.
    - Reads by the thread inside an ``atomic()`` block MUST see the block's own uncommitted
      writes; reads by any other thread MUST NOT see them (they see the last committed
      state, or wait for the block to end).
    - Inside ``with store.read_view():`` every read by that thread MUST see one consistent
      committed state (inside an ``atomic()`` block it is the block's state). Writing or
      opening ``atomic()`` inside a read view is a programming error and MUST raise
      RuntimeError without changing anything.
    - ``insert_child`` MUST raise :class:`childreg.errors.AlreadyExists` when the child id,
      or a non-null ``national_id_hash``, is already present, and MUST NOT change anything.
    - ``insert_new_children`` MUST store every row (child, placement, care setting and
      assessment numbered 1) or none: on AlreadyExists (an id or non-null hash already
      present, or repeated within the rows) it MUST NOT change anything, and an enclosing
      ``atomic()`` block stays usable. Stored rows read back exactly as the single-row
      writes of their :func:`records_of` would have stored them.
    - ``existing_child_ids`` / ``existing_national_id_hashes`` MUST return exactly those of
      the given values that are present, and nothing else.
    - Writes naming a child that does not exist MUST raise :class:`childreg.errors.NotFound`.
    - ``upsert_placement`` keeps one placement per (child, academic year), replacing it;
      ``put_care_setting`` keeps one per (child, since), replacing it.
    - ``add_assessment`` ignores the given ``assessment_id`` and returns a new one, unique
      and increasing per child starting at 1.
    - Reads return records ordered: placements by academic year, care settings by date,
      assessments by id.
    - ``append_ledger`` keeps every field of the entry, ``mechanism`` included; the ledger
      is append-only. ``record_participation`` stores a participant set (with its number of
      colluders) only if none is recorded for its snapshot, never replacing
      one, and it is never changed or removed; both writes roll back with an enclosing
      ``atomic()`` block.
    - ``extract_source`` returns the consent of the grant (None if there is none), the
      consent's child, its latest assessment (by date; the lowest id among several of that
      date) and the form of education of its placement in the given academic year, all
      as one consistent state.
    - ``audit_append`` with an ``index`` that is not the current size MUST raise
      AlreadyExists and change nothing.
    - ``count_table`` counts each child that has a placement for ``academic_year`` exactly
      once, in the cell of its categories (see ``count_table``); it returns only non-zero
      cells. It MUST NOT return anything about a child without such a placement.
    - A store MUST NOT log record contents.
    """

    @abstractmethod
    def atomic(self) -> AbstractContextManager[None]:
        """A block whose writes commit together or not at all."""

    @abstractmethod
    def read_view(self) -> AbstractContextManager[None]:
        """A block whose reads by this thread see one consistent state; no writes inside."""

    @abstractmethod
    def insert_child(self, child: StoredChild) -> None:
        """Add a new child; AlreadyExists if the id or national-id hash is taken."""

    @abstractmethod
    def insert_new_children(self, rows: Sequence[NewChild]) -> None:
        """Add new children with their first records, all or none; AlreadyExists if any is held.

        The bulk path of an import: the caller checks first (``existing_child_ids``,
        ``existing_national_id_hashes``) so the refusal is a safety net, not the way to find
        duplicates. Inside the caller's ``atomic()`` block, or atomic by itself without one.
        """

    @abstractmethod
    def existing_child_ids(self, child_ids: Iterable[str]) -> set[str]:
        """Those of ``child_ids`` that are held."""

    @abstractmethod
    def existing_national_id_hashes(self, digests: Iterable[bytes]) -> set[bytes]:
        """Those of ``digests`` that some held child has as its national-id hash."""

    @abstractmethod
    def replace_child(self, child: StoredChild) -> None:
        """Replace an existing child's row; NotFound if absent; AlreadyExists on a hash clash."""

    @abstractmethod
    def get_child(self, child_id: str) -> StoredChild | None:
        """The child's row, or None."""

    @abstractmethod
    def find_by_national_id_hash(self, digest: bytes) -> str | None:
        """The child id holding this national-id hash, or None."""

    @abstractmethod
    def upsert_placement(self, placement: StoredPlacement) -> None:
        """Set the child's placement for that academic year."""

    @abstractmethod
    def put_care_setting(self, care: StoredCareSetting) -> None:
        """Record the child's care setting from a date on."""

    @abstractmethod
    def add_assessment(self, assessment: StoredAssessment) -> int:
        """Add an assessment and return its new id (1, 2, … per child)."""

    @abstractmethod
    def placements(self, child_id: str) -> list[StoredPlacement]:
        """The child's placements, by academic year."""

    @abstractmethod
    def care_settings(self, child_id: str) -> list[StoredCareSetting]:
        """The child's care settings, by date."""

    @abstractmethod
    def assessments(self, child_id: str) -> list[StoredAssessment]:
        """The child's assessments, by id."""

    @abstractmethod
    def child_ids(self) -> Iterator[str]:
        """Every child id, sorted."""

    @abstractmethod
    def child_count(self) -> int:
        """How many children are stored."""

    @abstractmethod
    def count_table(
        self, academic_year: str, reference_date: dt.date, dimensions: Sequence[str]
    ) -> dict[tuple[str, ...], int]:
        """Sparse counts of children placed in ``academic_year``, by ``dimensions``.

        A child's categories: ``education_form`` from that year's placement; ``sex``;
        ``age_band`` at ``reference_date`` (childreg.codes.age_band); ``care_setting`` from
        the latest care setting with ``since <= reference_date`` else ``not_recorded``;
        ``impairment_band`` from the latest assessment (by date, then id) with
        ``assessment_date <= reference_date`` whose band is set, else ``not_assessed``;
        ``district``; ``region`` of the district. Keys are tuples in ``dimensions`` order.
        """

    @abstractmethod
    def ledger(self, snapshot: str) -> list[LedgerEntry]:
        """Every privacy-ledger entry of ``snapshot``, in the order they were appended."""

    @abstractmethod
    def append_ledger(self, entry: LedgerEntry) -> None:
        """Append an entry; AlreadyExists if its (snapshot, version, table) is there already."""

    @abstractmethod
    def participation(self, snapshot: str) -> Participation | None:
        """The secure-aggregation participation recorded for ``snapshot``, or None."""

    @abstractmethod
    def record_participation(self, snapshot: str, participation: Participation) -> None:
        """Record ``participation`` for ``snapshot`` unless one is there.

        Never overwrites: a second call for the same key changes nothing (the caller reads
        back to see which set holds).
        """

    @abstractmethod
    def audit_size(self) -> int:
        """How many leaves the audit log holds."""

    @abstractmethod
    def audit_append(self, body: bytes, rows: Sequence[tuple[int, int, bytes]], index: int) -> int:
        """Append leaf ``index`` with its new Merkle rows; its index.

        ``index`` is the size the caller read inside the same ``atomic()`` block (its
        Merkle rows depend on it); AlreadyExists if it is not the size.
        """

    @abstractmethod
    def audit_hash(self, level: int, index: int) -> bytes:
        """A stored complete-subtree hash; KeyError if absent (a corruption signal)."""

    @abstractmethod
    def audit_leaves(self, start: int, end: int) -> list[bytes]:
        """Leaf bytes with indices in [start, end)."""

    @abstractmethod
    def audit_put_checkpoint(self, size: int, note: str) -> None:
        """Keep a signed checkpoint (one per size; a second for one size is refused)."""

    @abstractmethod
    def audit_checkpoint(self, size: int | None = None) -> tuple[int, str] | None:
        """The checkpoint of ``size`` (default: the latest), or None."""

    @abstractmethod
    def insert_consent(self, consent: StoredConsent) -> None:
        """Add a consent; AlreadyExists if its id or grant hash is taken."""

    @abstractmethod
    def get_consent(self, consent_id: str) -> StoredConsent | None:
        """One consent by id, or None."""

    @abstractmethod
    def extract_source(self, grant_hash: bytes, academic_year: str) -> ExtractSource | None:
        """The consent of a grant with what its extract is made of, or None (no such grant).

        One consistent state (inside ``atomic()``, the block's own); point look-ups only.
        """

    @abstractmethod
    def consents_of(self, child_id: str) -> list[StoredConsent]:
        """A child's consents, oldest first."""

    @abstractmethod
    def withdraw_consent(self, consent_id: str, at: dt.datetime) -> bool:
        """Mark a standing consent withdrawn; False if absent or withdrawn already."""

    @abstractmethod
    def add_breakglass(self, entry: StoredBreakGlass) -> None:
        """Keep an emergency access (never changed or removed)."""

    @abstractmethod
    def breakglass_of(self, child_id: str) -> list[StoredBreakGlass]:
        """A child's emergency accesses, oldest first."""

    @abstractmethod
    def catalogue_versions(self) -> dict[int, str]:
        """Every catalogue version the ledger holds (any snapshot), with its digest."""

    @abstractmethod
    def close(self) -> None:
        """Release resources; the store is unusable afterwards."""
