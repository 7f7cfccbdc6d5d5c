"""The department's records: registering children and what happens to them, and reading back.

This is where records are sealed: a child's identity fields (names, national id, guardian
contacts) are sealed together under the child's own data key, and each sensitive
assessment field separately, before anything reaches the store; the national id is kept
only as a keyed hash for look-ups. Reading a child unseals them again. Error messages may
name a child id (an internal identifier) but never a name, a national id or a date.

A bulk import seals rows as they arrive and checks and writes them a batch at a time
(:data:`IMPORT_BATCH`): one look-up per batch for ids and national ids already held, then
one bulk insert (:meth:`~node.store.base.RecordStore.insert_new_children`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from json.encoder import encode_basestring
from typing import Final, NamedTuple, TypeVar

from pydantic import ValidationError

from childreg.errors import FailedPrecondition, ImportRejected, InvalidInput, Violation
from childreg.history import CORRECTABLE, ChildHistory, Closure, Correction, ErasureIn
from childreg.models import (
    AssessmentIn,
    CareSettingIn,
    ChildIn,
    ChildView,
    FunctioningItem,
    ImportRecord,
    PlacementIn,
    birth_problems,
    violations_of,
)
from childreg.search import DuplicateCandidate, Registration, SearchPage, SearchQuery
from node.crypto.keys import Keyring
from node.records.erasure import Eraser, Erasure, absent, refuse_erased_id
from node.records.history import HistoryBook, changed, text
from node.records.search import ChildIndex, Tokens
from node.store.base import (
    NewChild,
    RecordStore,
    StoredAssessment,
    StoredCareSetting,
    StoredChild,
    StoredClosure,
    StoredPlacement,
    pack_sealed,
)

IDENTITY_FIELDS: Final = (
    "given_name",
    "family_name",
    "national_id",
    "guardian_name",
    "guardian_phone",
)
#: The sealing context of a child's identity fields.
IDENTITY_CONTEXT: Final = "identity"
#: Assessment fields sealed under the child's key, each with its own context.
SEALED_ASSESSMENT_FIELDS: Final = (
    "icf_codes",
    "diagnoses",
    "functioning",
    "supports",
    "accommodations",
)


#: Rows an import checks against the store and inserts at a time.
IMPORT_BATCH: Final = 256

_V = TypeVar("_V", str, bytes)

_SORTED_IDENTITY: Final = tuple(sorted(IDENTITY_FIELDS))


# Sealed plaintexts are canonical JSON, i.e. the bytes of json.dumps(value, sort_keys=True,
# separators=(",", ":"), ensure_ascii=False) in UTF-8. These build them for the shapes sealed
# on every row without setting up an encoder per call (tests/unit/test_registry.py checks
# that they agree with json.dumps).
def _json_text(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)


def _canonical_identity(child: ChildIn) -> bytes:
    """Canonical JSON of the child's identity fields (an object with sorted keys)."""
    inner = ",".join([f'"{name}":{_json_text(getattr(child, name))}' for name in _SORTED_IDENTITY])
    return ("{" + inner + "}").encode("utf-8")


def _canonical_strings(values: Iterable[str]) -> bytes:
    """Canonical JSON of a list of strings."""
    return ("[" + ",".join(map(encode_basestring, values)) + "]").encode("utf-8")


@functools.lru_cache(maxsize=512)  # validated profiles use a few dozen (domain, level) pairs
def _canonical_pair(domain: str, level: str) -> str:
    return f"[{encode_basestring(domain)},{encode_basestring(level)}]"


def _canonical_functioning(items: Iterable[FunctioningItem]) -> bytes:
    """Canonical JSON of a functioning profile: ``[[domain, level], ...]``."""
    return ("[" + ",".join([_canonical_pair(f.domain, f.level) for f in items]) + "]").encode(
        "utf-8"
    )


def assessment_context(assessment_id: int, field: str) -> str:
    """The sealing context of one field of one assessment, e.g. ``assessment:3:diagnoses``."""
    return f"assessment:{assessment_id}:{field}"


def stored_child(
    keys: Keyring,
    child: ChildIn,
    key: bytes,
    wrapped: bytes,
    version: int,
    *,
    digest: bytes | None,
) -> StoredChild:
    """The child's row with its identity fields sealed under its data ``key``."""
    return StoredChild(
        child_id=child.child_id,
        key_version=version,
        wrapped_key=wrapped,
        national_id_hash=digest,
        date_of_birth=child.date_of_birth,
        sex=child.sex,
        district=child.district,
        sealed_identity=keys.seal(
            key, child.child_id, IDENTITY_CONTEXT, _canonical_identity(child)
        ),
    )


def _sealed_plaintexts(a: AssessmentIn) -> dict[str, bytes]:
    """The canonical JSON of each sealed field of an assessment, by name."""
    return {
        "icf_codes": _canonical_strings(a.icf_codes),
        "diagnoses": _canonical_strings(a.diagnoses),
        "functioning": _canonical_functioning(a.functioning),
        "supports": _canonical_strings(a.supports),
        "accommodations": _canonical_strings(a.accommodations),
    }


def stored_assessment(
    keys: Keyring, a: AssessmentIn, key: bytes, assessment_id: int
) -> StoredAssessment:
    """The assessment with each sensitive field sealed on its own for ``assessment_id``."""
    plain = _sealed_plaintexts(a)
    seal, child_id = keys.seal, a.child_id
    return StoredAssessment(
        child_id=child_id,
        assessment_id=assessment_id,
        assessment_date=a.assessment_date,
        commission=a.commission,
        impairment_band=a.impairment_band,
        recommended_form=a.recommended_form,
        next_review=a.next_review,
        sealed_fields={
            name: seal(key, child_id, assessment_context(assessment_id, name), plain[name])
            for name in SEALED_ASSESSMENT_FIELDS
        },
    )


#: The sealing contexts of a new child's first assessment (number 1), field by field.
_FIRST_ASSESSMENT: Final = tuple(
    (name, assessment_context(1, name)) for name in SEALED_ASSESSMENT_FIELDS
)


class SealedRow(NamedTuple):
    """An import row ready for its batch's check: sealed unless a violation was known."""

    line: int
    child_id: str
    digest: bytes | None  # keyed hash of the national id, if one was given
    sealed: NewChild | None
    tokens: frozenset[bytes] = frozenset()  # the child's search-index tokens, when sealed


class RowSealer:
    """Makes a new child's key and seals its import row; needs the keyring, not the store.

    Used by the registry itself and, in forked processes, by :mod:`node.rpc.import_workers`.
    """

    def __init__(self, keyring: Keyring) -> None:
        self._keys = keyring
        self._tokens = Tokens(keyring)

    def row(self, record: ImportRecord, *, seal: bool = True) -> SealedRow:
        """The row of ``record``; unsealed (``sealed`` None) when ``seal`` is false."""
        child = record.child
        nid = child.national_id
        digest = None if nid is None else self._keys.national_id_hash(nid)
        if not seal:
            return SealedRow(record.line, child.child_id, digest, None)
        return SealedRow(
            record.line,
            child.child_id,
            digest,
            self._new_row(record, digest),
            self._tokens.of_child(child, record.placement.institution),
        )

    def _new_row(self, record: ImportRecord, digest: bytes | None) -> NewChild:
        """A new child's row with its key made and its identity and assessment sealed:
        the same ciphertexts' layout and contexts as :func:`stored_child` and
        :func:`stored_assessment` (for assessment 1), in the store's bulk form."""
        child, p, care, a = record.child, record.placement, record.care, record.assessment
        child_id = child.child_id
        values = [(IDENTITY_CONTEXT, _canonical_identity(child))]
        if a is not None:
            plain = _sealed_plaintexts(a)
            values += [(context, plain[name]) for name, context in _FIRST_ASSESSMENT]
        wrapped, version, sealed = self._keys.seal_new_child(child_id, values)
        return (
            (
                child_id,
                version,
                wrapped,
                digest,
                child.date_of_birth.isoformat(),
                child.sex,
                child.district,
                sealed[0],
            ),
            (p.academic_year, p.education_form, p.institution),
            None if care is None else (care.since.isoformat(), care.care_setting),
            None
            if a is None
            else (
                a.assessment_date.isoformat(),
                a.commission,
                a.impairment_band,
                a.recommended_form,
                None if a.next_review is None else a.next_review.isoformat(),
                pack_sealed(dict(zip(SEALED_ASSESSMENT_FIELDS, sealed[1:], strict=True))),
            ),
        )


class Registry:
    """Domain operations on a node's records; every write runs inside ``store.atomic()``."""

    def __init__(
        self, store: RecordStore, keyring: Keyring, districts: Collection[str] | None = None
    ) -> None:
        self._store = store
        self._keys = keyring
        self._sealer = RowSealer(keyring)
        self.index = ChildIndex(store, keyring)
        self.history_book = HistoryBook(store, keyring)
        self._eraser = Eraser(store, keyring)

        #: The department's districts (node config); None: any district of the profile.
        self._districts = None if districts is None else frozenset(districts)

    def _outside(self, district: str | None, line: int | None = None) -> Violation | None:
        """The violation of a child living outside this department's districts, if so."""
        if self._districts is None or district is None or district in self._districts:
            return None
        problem = f"{district} is not one of this department's districts"
        return Violation("district", problem, line)

    def register_child(
        self, child: ChildIn, *, not_duplicate_reason: str | None = None
    ) -> Registration:
        """Register a new child unless it looks like one already held.

        Likely duplicates (:meth:`likely_duplicates`) hold the registration back
        (``registered`` False, nothing written) unless ``not_duplicate_reason`` says why the
        child is none of them; the reason is kept, sealed, in the child's history (the
        audit leaf says only that one was given). AlreadyExists if the id or the national
        id is already held (a child with a held national id cannot be new, reason or not).
        """
        if outside := self._outside(child.district):
            raise InvalidInput("the child lives outside this department's districts", [outside])
        with self._store.atomic():
            duplicates = self.index.likely_duplicates(child)
            held_nid = any("same national id" in d.reasons for d in duplicates)
            if duplicates and not_duplicate_reason is None and not held_nid:
                return Registration(registered=False, duplicates=duplicates)
            refuse_erased_id(self._store, self._keys, child.child_id)
            stored, key = self._new_stored_child(child)
            self._store.insert_child(stored)
            self.index.index(child, None)
            first = changed({}, _fields(child))
            self.history_book.record(
                child.child_id, key, "registered", first, reason=not_duplicate_reason
            )
        return Registration(registered=True, duplicates=duplicates)

    def likely_duplicates(self, child: ChildIn) -> tuple[DuplicateCandidate, ...]:
        """Children already held that may be ``child`` (see ChildIndex.likely_duplicates)."""
        return self.index.likely_duplicates(child)

    def find_children(self, query: SearchQuery) -> SearchPage:
        """One page of the children matching ``query``, best first (node/records/search.py)."""
        return self.index.find(query)

    def reindex_children(self) -> int:
        """Rebuild every child's search tokens (a store made before the index); how many."""
        n = 0
        with self._store.atomic():
            for child_id in list(self._store.child_ids()):
                self._reindex(child_id)
                n += 1
        return n

    def correct_child(self, correction: Correction) -> None:
        """Change some fields of a child's record, keeping the old values in its history.

        The corrected record is validated as a whole (as a registration would be); a new
        birth date must not contradict the placements, care settings and assessments held.
        InvalidInput if nothing would change; FailedPrecondition for a closed record.
        """
        with self._store.atomic():
            stored = self._require_open(correction.child_id)
            key = self._key(stored)
            old = self._child_of(stored, key)
            fields = {**old.model_dump(), **correction.changes()}
            new = _revalidated(fields)
            if outside := self._outside(new.district):
                raise InvalidInput("the child lives outside this department's districts", [outside])
            diff = changed(_fields(old), _fields(new))
            if not diff:
                raise InvalidInput(
                    "nothing to correct",
                    [Violation("record", "the values given are those already recorded")],
                )
            if "date_of_birth" in diff:
                self._check_history_dates(new)
            self._store.replace_child(
                self._stored_child(new, key, stored.wrapped_key, stored.key_version)
            )
            self.index.index(new, self.index.latest_school(new.child_id))
            self.history_book.record(new.child_id, key, "corrected", diff, reason=correction.reason)

    def close_child(self, closure: Closure) -> None:
        """Close a child's record from a date on: it stays, for audit and history, and the
        child is counted only in snapshots whose reference date falls before that date.
        FailedPrecondition if it is closed already."""
        with self._store.atomic():
            stored = self._require_open(closure.child_id)
            if closure.closed_on < stored.date_of_birth:
                raise InvalidInput(
                    "invalid closure",
                    [Violation("closed_on", "must not be before the child's date of birth")],
                )
            key = self._key(stored)
            self._store.close_child(
                StoredClosure(closure.child_id, closure.closed_on, closure.reason)
            )
            diff = {
                "closed_on": (None, text(closure.closed_on)),
                "close_reason": (None, closure.reason),
            }
            self.history_book.record(closure.child_id, key, "closed", diff, reason=closure.note)

    def erase_child(self, erasure: ErasureIn) -> Erasure:
        """Erase a child's record by crypto-shredding (node/records/erasure.py): its data
        key and every row go, a tombstone keeps its pseudonym; open or closed alike.
        NotFound if it is not held, Erased if it was erased already."""
        return self._eraser.erase(erasure)

    def history(self, child_id: str) -> ChildHistory:
        """Every recorded step of a child's record, oldest first; NotFound if absent."""
        with self._store.read_view():
            stored = self._require(child_id)
            key = self._key(stored)
            current = _fields(self._child_of(stored, key))
            return self.history_book.read(child_id, key, current)

    def record_placement(self, placement: PlacementIn, *, reason: str | None = None) -> None:
        """Set where a child is educated in an academic year; NotFound for an unknown child.

        Changing a year's placement already recorded is a correction: it needs a ``reason``.
        """
        with self._store.atomic():
            stored = self._require_open(placement.child_id)
            _check_dates(stored, placement)
            held = {p.academic_year: p for p in self._store.placements(placement.child_id)}
            before = held.get(placement.academic_year)
            diff = _replacing(
                None
                if before is None
                else {"education_form": before.education_form, "institution": before.institution},
                {"education_form": placement.education_form, "institution": placement.institution},
                reason,
                "a placement recorded for that year",
            )
            if not diff:
                return  # recorded already, exactly so: nothing to write
            self._store.upsert_placement(
                StoredPlacement(
                    placement.child_id,
                    placement.academic_year,
                    placement.education_form,
                    placement.institution,
                )
            )
            self._reindex(placement.child_id)
            self.history_book.record(
                placement.child_id,
                self._key(stored),
                "placed",
                diff,
                scope=placement.academic_year,
                reason=reason,
            )

    def record_care_setting(self, care: CareSettingIn, *, reason: str | None = None) -> None:
        """Record where a child lives from a date on; NotFound for an unknown child.

        Changing the setting already recorded from that same date is a correction: it
        needs a ``reason``.
        """
        with self._store.atomic():
            stored = self._require_open(care.child_id)
            _check_dates(stored, care)
            held = {c.since: c for c in self._store.care_settings(care.child_id)}
            before = held.get(care.since)
            diff = _replacing(
                None if before is None else {"care_setting": before.care_setting},
                {"care_setting": care.care_setting},
                reason,
                "a care setting recorded from that date",
            )
            if not diff:
                return
            self._store.put_care_setting(
                StoredCareSetting(care.child_id, care.care_setting, care.since)
            )
            self.history_book.record(
                care.child_id,
                self._key(stored),
                "care_setting",
                diff,
                scope=care.since.isoformat(),
                reason=reason,
            )

    def record_assessment(self, assessment: AssessmentIn) -> int:
        """Record a commission's assessment and return its id (1, 2, … per child)."""
        with self._store.atomic():
            stored = self._require_open(assessment.child_id)
            _check_dates(stored, assessment)
            key = self._key(stored)
            expected = len(self._store.assessments(assessment.child_id)) + 1
            got = self._add_assessment(assessment, key, expected)
            a = assessment
            summary = {
                "assessment_date": a.assessment_date,
                "commission": a.commission,
                "impairment_band": a.impairment_band,
                "recommended_form": a.recommended_form,
                "next_review": a.next_review,
            }
            self.history_book.record(
                a.child_id, key, "assessed", changed({}, summary), scope=str(got)
            )
            return got

    def get_child(self, child_id: str) -> ChildView:
        """Everything held about a child, unsealed; NotFound if absent."""
        with self._store.read_view():  # one consistent view; does not wait for writers
            stored = self._require(child_id)
            placements = self._store.placements(child_id)
            cares = self._store.care_settings(child_id)
            assessments = self._store.assessments(child_id)
            closure = self._store.closure(child_id)
        key = self._key(stored)
        return ChildView(
            child=self._child_of(stored, key),
            placements=tuple(
                PlacementIn(
                    child_id=child_id,
                    academic_year=p.academic_year,
                    education_form=p.education_form,
                    institution=p.institution,
                )
                for p in placements
            ),
            care_settings=tuple(
                CareSettingIn(child_id=child_id, care_setting=c.care_setting, since=c.since)
                for c in cares
            ),
            assessments=tuple(self._open_assessment(a, key) for a in assessments),
            closed_on=None if closure is None else closure.closed_on,
            close_reason=None if closure is None else closure.reason,
        )

    def import_records(
        self, items: Iterable[ImportRecord | SealedRow | Sequence[Violation]]
    ) -> int:
        """Import new children all-or-nothing; return how many, or raise ImportRejected.

        ``items`` are validated rows, rows already sealed (by :class:`RowSealer`, e.g. in
        :mod:`node.rpc.import_workers`), or the violations of rows already found bad. Every
        violation is collected, in input order (bad rows, duplicates within the import,
        children already held) and, if there is any, nothing is imported. Inside one
        transaction, rows are sealed as they arrive and checked against the store and
        written a batch at a time, so memory holds one batch of sealed rows and the id and
        national-id-hash maps. Once a violation is known, rows are only checked, no longer
        sealed or written (the transaction is rolled back anyway).
        """
        with self._store.atomic():
            # Read inside the transaction: an erasure committed just before it is seen,
            # one committed after it waits for the import to commit first.
            erased = {e.pseudonym for e in self._store.erased_children()}
            run = _ImportRun(
                self._store,
                self._sealer,
                self.history_book,
                (lambda child_id: self._keys.pseudonym(child_id) in erased) if erased else None,
            )
            try:
                for item in self._in_districts(items):
                    run.add(item)
                run.flush()
            finally:  # end a generator of rows now, inside the transaction (workers' replies)
                close = getattr(items, "close", None)
                if callable(close):
                    close()
            if run.bad_rows:
                raise ImportRejected(
                    f"{run.bad_rows} bad rows; nothing was imported", run.violations
                )
        return run.imported

    def _reindex(self, child_id: str) -> None:
        """Recompute a stored child's search tokens (e.g. after a new placement)."""
        self.index.reindex(self._require(child_id))

    def _in_districts(
        self, items: Iterable[ImportRecord | SealedRow | Sequence[Violation]]
    ) -> Iterator[ImportRecord | SealedRow | Sequence[Violation]]:
        """The import's items, a row outside this department's districts as its violation."""
        for item in items:
            if isinstance(item, ImportRecord):
                outside = self._outside(item.child.district, item.line)
            elif isinstance(item, SealedRow) and item.sealed is not None:
                outside = self._outside(item.sealed[0][6], item.line)  # ChildColumns' district
            else:
                outside = None
            yield [outside] if outside else item

    def _new_stored_child(self, child: ChildIn) -> tuple[StoredChild, bytes]:
        key, wrapped, version = self._keys.new_child_key(child.child_id)
        return self._stored_child(child, key, wrapped, version), key

    def _key(self, stored: StoredChild) -> bytes:
        return self._keys.child_key(stored.child_id, stored.key_version, stored.wrapped_key)

    def _child_of(self, stored: StoredChild, key: bytes) -> ChildIn:
        """The child's identifying record, its identity unsealed."""
        identity = json.loads(
            self._keys.unseal(key, stored.child_id, IDENTITY_CONTEXT, stored.sealed_identity)
        )
        return ChildIn.model_construct(
            child_id=stored.child_id,
            date_of_birth=stored.date_of_birth,
            sex=stored.sex,
            district=stored.district,
            **identity,
        )

    def _require_open(self, child_id: str) -> StoredChild:
        """The child's row; NotFound if absent, FailedPrecondition if its record is closed."""
        stored = self._require(child_id)
        if self._store.closure(child_id) is not None:
            raise FailedPrecondition(
                "the child's record is closed; a closed record is kept for audit and "
                "history and takes no more changes"
            )
        return stored

    def _check_history_dates(self, child: ChildIn) -> None:
        """InvalidInput if a corrected birth date contradicts the records held."""
        cid = child.child_id
        records: list[PlacementIn | CareSettingIn | AssessmentIn] = [
            PlacementIn.model_construct(
                child_id=cid, academic_year=p.academic_year, education_form=p.education_form
            )
            for p in self._store.placements(cid)
        ]
        records += [
            CareSettingIn.model_construct(child_id=cid, since=c.since, care_setting=c.care_setting)
            for c in self._store.care_settings(cid)
        ]
        records += [
            AssessmentIn.model_construct(
                child_id=cid, assessment_date=a.assessment_date, commission=a.commission
            )
            for a in self._store.assessments(cid)
        ]
        for record in records:
            if problems := birth_problems(child.date_of_birth, record):
                raise InvalidInput(
                    "the date of birth contradicts the records held",
                    [
                        Violation("date_of_birth", "must be before every record held: " + p.problem)
                        for p in problems
                    ],
                )

    def _stored_child(
        self, child: ChildIn, key: bytes, wrapped: bytes, version: int
    ) -> StoredChild:
        digest = None
        if child.national_id is not None:
            digest = self._keys.national_id_hash(child.national_id)
        return stored_child(self._keys, child, key, wrapped, version, digest=digest)

    def _add_assessment(self, a: AssessmentIn, key: bytes, expected_id: int) -> int:
        """Seal the sensitive fields for the id the store will assign, then add."""
        got = self._store.add_assessment(stored_assessment(self._keys, a, key, expected_id))
        if got != expected_id:  # raising inside atomic() rolls the assessment back
            raise FailedPrecondition("the store assigned an unexpected assessment id")
        return got

    def _open_assessment(self, a: StoredAssessment, key: bytes) -> AssessmentIn:
        values = {
            name: json.loads(
                self._keys.unseal(
                    key,
                    a.child_id,
                    assessment_context(a.assessment_id, name),
                    a.sealed_fields.get(name, b""),
                )
            )
            for name in SEALED_ASSESSMENT_FIELDS
        }
        return AssessmentIn(
            child_id=a.child_id,
            assessment_date=a.assessment_date,
            commission=a.commission,
            impairment_band=a.impairment_band,
            recommended_form=a.recommended_form,
            next_review=a.next_review,
            icf_codes=tuple(values["icf_codes"]),
            diagnoses=tuple(values["diagnoses"]),
            functioning=tuple(
                FunctioningItem(domain=domain, level=level)
                for domain, level in values["functioning"]
            ),
            supports=tuple(values["supports"]),
            accommodations=tuple(values["accommodations"]),
        )

    def _require(self, child_id: str) -> StoredChild:
        stored = self._store.get_child(child_id)
        if stored is None:
            raise absent(self._store, self._keys, child_id)
        return stored


def _fields(child: ChildIn) -> dict[str, object]:
    """The correctable fields of a child's record, by name."""
    return {name: getattr(child, name) for name in CORRECTABLE}


def _revalidated(fields: dict[str, object]) -> ChildIn:
    """A corrected record, validated as a whole (InvalidInput naming the fields)."""
    try:
        return ChildIn.model_validate(fields)
    except ValidationError as exc:
        raise InvalidInput("invalid correction", violations_of(exc)) from None


def _replacing(
    before: dict[str, object] | None, after: dict[str, object], reason: str | None, what: str
) -> dict[str, tuple[str | None, str | None]]:
    """What recording ``after`` over ``before`` (None: nothing recorded) changes; empty if
    nothing. InvalidInput if it changes ``what`` was recorded and no reason is given."""
    diff = changed(before or {}, after)
    if diff and before is not None and reason is None:
        raise InvalidInput(
            f"changing {what} is a correction",
            [Violation("reason", f"required to change {what}")],
        )
    return diff


def _check_dates(child: StoredChild, record: PlacementIn | CareSettingIn | AssessmentIn) -> None:
    """InvalidInput if ``record``'s dates contradict the child's birth (an import row's
    are checked by ImportRecord itself, which holds the birth date)."""
    problems = birth_problems(child.date_of_birth, record)
    if problems:
        raise InvalidInput("dates before the child's birth", problems)


class _ImportRun:
    """One import's state: what was seen on which line, what was wrong, the pending batch.

    Rows are sealed on arrival (unless they come sealed) and kept in that compact form,
    not as the parsed records, which keeps the batch small for memory and for the
    garbage collector.
    """

    def __init__(
        self,
        store: RecordStore,
        sealer: RowSealer,
        book: HistoryBook,
        erased: Callable[[str], bool] | None = None,
    ) -> None:
        self._store = store
        self._sealer = sealer
        self._book = book
        self._erased = erased  # whether a child id is an erased child's (None: none erased)
        self._batch: list[SealedRow | list[Violation]] = []
        self._spoiled = False  # a violation is known: stop sealing and writing
        self.line_of_id: dict[str, int] = {}  # first line of each id new to the store
        self.line_of_hash: dict[bytes, int] = {}  # likewise for national-id hashes
        self.violations: list[Violation] = []
        self.bad_rows = 0
        self.imported = 0

    def add(self, item: ImportRecord | SealedRow | Sequence[Violation]) -> None:
        """Take the next row (sealed while nothing is wrong yet); check a full batch."""
        if isinstance(item, SealedRow):
            self._batch.append(item)
        elif isinstance(item, ImportRecord):
            self._batch.append(self._sealer.row(item, seal=not self._spoiled))
        else:
            self._batch.append(list(item))
            self._spoiled = True
        if len(self._batch) >= IMPORT_BATCH:
            self.flush()

    def flush(self) -> None:
        """Check the pending rows in input order and, if nothing is wrong, write them.

        A value is a duplicate if an earlier line of this import introduced it, else
        "already exists" if the store holds it (then later lines are told the same).
        """
        batch, self._batch = self._batch, []
        rows = [item for item in batch if isinstance(item, SealedRow)]
        held_ids = self._store.existing_child_ids(
            {r.child_id for r in rows} - self.line_of_id.keys()
        )
        held_hashes = self._store.existing_national_id_hashes(
            {r.digest for r in rows if r.digest is not None} - self.line_of_hash.keys()
        )
        for item in batch:
            if not isinstance(item, SealedRow):
                self._bad(item)
                continue
            seen = [_sighting(self.line_of_id, item.child_id, held_ids, "child_id", item.line)]
            if self._erased is not None and self._erased(item.child_id):
                seen.append(
                    Violation("child_id", "a child with this child_id was erased", item.line)
                )
            if item.digest is not None:
                seen.append(
                    _sighting(self.line_of_hash, item.digest, held_hashes, "national_id", item.line)
                )
            found = [v for v in seen if v is not None]
            if found:
                self._bad(found)
        if self.bad_rows:
            self._spoiled = True
            return
        sealed = [r.sealed for r in rows if r.sealed is not None]
        if len(sealed) != len(rows):  # cannot happen: rows are sealed until something is wrong
            raise RuntimeError("an import row was not sealed")
        self._store.insert_new_children(sealed)
        self._store.add_child_tokens([(r.child_id, r.tokens) for r in rows])
        self._book.imported([r.child_id for r in rows])
        self.imported += len(sealed)

    def _bad(self, found: list[Violation]) -> None:
        self.bad_rows += 1
        self.violations.extend(found)


def _sighting(
    seen: dict[_V, int], value: _V, held: set[_V], name: str, line: int
) -> Violation | None:
    """The violation if ``value`` was seen on an earlier line or is held, else note its line."""
    first = seen.get(value)
    if first is not None:
        return Violation(name, f"duplicate {name} (first on line {first})", line)
    if value in held:
        return Violation(name, f"a child with this {name} already exists", line)
    seen[value] = line
    return None
