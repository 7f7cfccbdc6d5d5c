"""The values a store keeps, in their stored form, and the plain rows of a bulk import.

Every store interface (:mod:`node.store.records`, :mod:`node.store.ledger`,
:mod:`node.store.audit`, :mod:`node.store.consents`) and both implementations speak these
types, so they live apart from any one of them. Identity fields and sensitive assessment
fields arrive already sealed (ciphertext) by the domain layer: nothing here holds a name or a
diagnosis in the clear, and nothing here is protobuf. :mod:`node.store.base` re-exports all
of it, so callers import from there.
"""

from __future__ import annotations

import datetime as dt
import functools
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Final, Literal

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
class StoredEvent:
    """One step of a child's history: who, when (UTC, ``YYYY-MM-DDTHH:MM:SSZ``), what kind,
    and its details (the fields changed, before and after, and the reason) as canonical JSON
    sealed under the child's key (``None`` for a step without details, such as an import)."""

    child_id: str
    seq: int
    at: str
    actor: str
    kind: str
    sealed: bytes | None


@dataclass(frozen=True)
class StoredClosure:
    """A closed record: from which date on, and why (a code of childreg.codes.CLOSE_REASONS)."""

    child_id: str
    closed_on: dt.date
    reason: str


@dataclass(frozen=True)
class StoredErasure:
    """An erased child's tombstone: its audit-log pseudonym (32 bytes, the keyed hash of
    its id), when (UTC, ``YYYY-MM-DDTHH:MM:SSZ``), by whom (the actor's name) and why (a
    code of childreg.codes.ERASE_REASONS). Nothing else of the child is kept."""

    pseudonym: bytes
    erased_at: str
    actor: str
    reason: str


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
