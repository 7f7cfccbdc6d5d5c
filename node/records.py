"""The department's records: registering children and what happens to them, and reading back.

This is where records are sealed: a child's identity fields (names, national id, guardian
contacts) are sealed together under the child's own data key, and each sensitive
assessment field separately, before anything reaches the store; the national id is kept
only as a keyed hash for look-ups. Reading a child unseals them again. Error messages may
name a child id (an internal identifier) but never a name, a national id or a date.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, Final

from childreg.errors import AlreadyExists, FailedPrecondition, ImportRejected, NotFound, Violation
from childreg.models import (
    AssessmentIn,
    CareSettingIn,
    ChildIn,
    ChildView,
    FunctioningItem,
    ImportRecord,
    PlacementIn,
)
from node.keys import Keyring
from node.store.base import (
    RecordStore,
    StoredAssessment,
    StoredCareSetting,
    StoredChild,
    StoredPlacement,
)

IDENTITY_FIELDS: Final = (
    "given_name",
    "family_name",
    "national_id",
    "guardian_name",
    "guardian_phone",
)
#: Assessment fields sealed under the child's key, each with its own context.
SEALED_ASSESSMENT_FIELDS: Final = (
    "icf_codes",
    "diagnoses",
    "functioning",
    "supports",
    "accommodations",
)


_CANONICAL_JSON: Final = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _canonical(value: Any) -> bytes:
    return _CANONICAL_JSON.encode(value).encode("utf-8")


def assessment_context(assessment_id: int, field: str) -> str:
    """The sealing context of one field of one assessment, e.g. ``assessment:3:diagnoses``."""
    return f"assessment:{assessment_id}:{field}"


class Registry:
    """Domain operations on a node's records; every write runs inside ``store.atomic()``."""

    def __init__(self, store: RecordStore, keyring: Keyring) -> None:
        self._store = store
        self._keys = keyring

    def register_child(self, child: ChildIn) -> None:
        """Register a new child; AlreadyExists if its id or national id is already held."""
        with self._store.atomic():
            self._store.insert_child(self._new_stored_child(child))

    def update_child(self, child: ChildIn) -> None:
        """Replace a child's identifying record, keeping its data key; NotFound if absent."""
        with self._store.atomic():
            old = self._require(child.child_id)
            key = self._keys.child_key(old.child_id, old.key_version, old.wrapped_key)
            self._store.replace_child(
                self._stored_child(child, key, old.wrapped_key, old.key_version)
            )

    def record_placement(self, placement: PlacementIn) -> None:
        """Set where a child is educated in an academic year; NotFound for an unknown child."""
        with self._store.atomic():
            self._store.upsert_placement(
                StoredPlacement(
                    placement.child_id,
                    placement.academic_year,
                    placement.education_form,
                    placement.institution,
                )
            )

    def record_care_setting(self, care: CareSettingIn) -> None:
        """Record where a child lives from a date on; NotFound for an unknown child."""
        with self._store.atomic():
            self._store.put_care_setting(
                StoredCareSetting(care.child_id, care.care_setting, care.since)
            )

    def record_assessment(self, assessment: AssessmentIn) -> int:
        """Record a commission's assessment and return its id (1, 2, … per child)."""
        with self._store.atomic():
            stored = self._require(assessment.child_id)
            key = self._keys.child_key(stored.child_id, stored.key_version, stored.wrapped_key)
            expected = len(self._store.assessments(assessment.child_id)) + 1
            return self._add_assessment(assessment, key, expected)

    def get_child(self, child_id: str) -> ChildView:
        """Everything held about a child, unsealed; NotFound if absent."""
        with self._store.atomic():  # one consistent view while other threads write
            stored = self._require(child_id)
            placements = self._store.placements(child_id)
            cares = self._store.care_settings(child_id)
            assessments = self._store.assessments(child_id)
        key = self._keys.child_key(child_id, stored.key_version, stored.wrapped_key)
        identity = json.loads(self._keys.unseal(key, child_id, "identity", stored.sealed_identity))
        return ChildView(
            child=ChildIn(
                child_id=child_id,
                date_of_birth=stored.date_of_birth,
                sex=stored.sex,
                district=stored.district,
                **identity,
            ),
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
        )

    def import_records(self, items: Iterable[ImportRecord | Sequence[Violation]]) -> int:
        """Import new children all-or-nothing; return how many, or raise ImportRejected.

        ``items`` are validated rows, or the violations of rows already found bad. Every
        violation is collected (bad rows, duplicates within the batch, children already
        held) and, if there is any, nothing is imported. Rows are written as they come,
        inside one transaction, so memory holds only the id and national-id-hash maps.
        """
        violations: list[Violation] = []
        bad_rows = 0
        imported = 0
        line_of_id: dict[str, int] = {}
        line_of_hash: dict[bytes, int] = {}
        with self._store.atomic():
            for item in items:
                if isinstance(item, ImportRecord):
                    found = self._import_one(item, line_of_id, line_of_hash)
                    if not found:
                        imported += 1
                        continue
                else:
                    found = list(item)
                bad_rows += 1
                violations.extend(found)
            if bad_rows:
                raise ImportRejected(f"{bad_rows} bad rows; nothing was imported", violations)
        return imported

    def _import_one(
        self, record: ImportRecord, line_of_id: dict[str, int], line_of_hash: dict[bytes, int]
    ) -> list[Violation]:
        line = record.line
        child_id = record.child.child_id
        nid = record.child.national_id
        digest = self._keys.national_id_hash(nid) if nid is not None else None
        found: list[Violation] = []
        first_id = line_of_id.get(child_id)
        if first_id is None:
            line_of_id[child_id] = line
        else:
            found.append(
                Violation("child_id", f"duplicate child_id (first on line {first_id})", line)
            )
        first_hash = None if digest is None else line_of_hash.get(digest)
        if digest is not None and first_hash is None:
            line_of_hash[digest] = line
        elif first_hash is not None:
            found.append(
                Violation(
                    "national_id", f"duplicate national_id (first on line {first_hash})", line
                )
            )
        if not found:
            try:
                self._insert_row(record, digest)
                return []
            except AlreadyExists:
                pass  # which of the two is worked out below
        # Held before this import: say so, and let later rows be told the same (not "dup").
        if first_id is None and self._store.get_child(child_id) is not None:
            found.append(Violation("child_id", "a child with this child_id already exists", line))
            del line_of_id[child_id]
        if (
            digest is not None
            and first_hash is None
            and self._store.find_by_national_id_hash(digest) is not None
        ):
            found.append(
                Violation("national_id", "a child with this national_id already exists", line)
            )
            del line_of_hash[digest]
        return found or [Violation("child_id", "a child with this child_id already exists", line)]

    def _insert_row(self, record: ImportRecord, digest: bytes | None) -> None:
        child = record.child
        key, wrapped, version = self._keys.new_child_key(child.child_id)
        self._store.insert_child(self._stored_child(child, key, wrapped, version, digest))
        p = record.placement
        self._store.upsert_placement(
            StoredPlacement(child.child_id, p.academic_year, p.education_form, p.institution)
        )
        if record.care is not None:
            c = record.care
            self._store.put_care_setting(StoredCareSetting(c.child_id, c.care_setting, c.since))
        if record.assessment is not None:
            self._add_assessment(record.assessment, key, 1)

    def _new_stored_child(self, child: ChildIn) -> StoredChild:
        key, wrapped, version = self._keys.new_child_key(child.child_id)
        return self._stored_child(child, key, wrapped, version)

    def _stored_child(
        self,
        child: ChildIn,
        key: bytes,
        wrapped: bytes,
        version: int,
        digest: bytes | None = None,
    ) -> StoredChild:
        if digest is None and child.national_id is not None:
            digest = self._keys.national_id_hash(child.national_id)
        identity = {name: getattr(child, name) for name in IDENTITY_FIELDS}
        return StoredChild(
            child_id=child.child_id,
            key_version=version,
            wrapped_key=wrapped,
            national_id_hash=digest,
            date_of_birth=child.date_of_birth,
            sex=child.sex,
            district=child.district,
            sealed_identity=self._keys.seal(key, child.child_id, "identity", _canonical(identity)),
        )

    def _add_assessment(self, a: AssessmentIn, key: bytes, expected_id: int) -> int:
        """Seal the sensitive fields for the id the store will assign, then add."""
        values: dict[str, Any] = {
            "icf_codes": list(a.icf_codes),
            "diagnoses": list(a.diagnoses),
            "functioning": [[f.domain, f.level] for f in a.functioning],
            "supports": list(a.supports),
            "accommodations": list(a.accommodations),
        }
        sealed = {
            name: self._keys.seal(
                key, a.child_id, assessment_context(expected_id, name), _canonical(values[name])
            )
            for name in SEALED_ASSESSMENT_FIELDS
        }
        got = self._store.add_assessment(
            StoredAssessment(
                child_id=a.child_id,
                assessment_id=expected_id,
                assessment_date=a.assessment_date,
                commission=a.commission,
                impairment_band=a.impairment_band,
                recommended_form=a.recommended_form,
                next_review=a.next_review,
                sealed_fields=sealed,
            )
        )
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
            raise NotFound(f"no child with child_id {child_id}")
        return stored
