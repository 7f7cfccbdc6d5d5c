"""The lean extract read gives the same extract as the full record read it replaced.

node/consent/extract.py once built an extract from the whole unsealed record
(``Registry.get_child``:
every row, every sealed field, pydantic view models) and picked the policy's fields from
it. It now reads only what the extract needs (``RecordStore.extract_source``) and unseals
only the identity and the assessment fields the purpose allows. :func:`reference_payload`
is the old way, kept here as the oracle: for random children (ties of assessment dates,
placements in and out of the current year, no assessment, no child) both stores must give
an extract whose payload is byte for byte the old one's (``issued_at`` aside), or refuse
with the same error; and the diagnoses are never unsealed.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nacl.public
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from childreg import codes
from childreg.errors import ChildregError, FailedPrecondition, NotFound
from childreg.extract_format import EXTRACT_TYPE, EXTRACT_VERSION
from childreg.models import AssessmentIn, ChildIn, ChildView, PlacementIn
from childreg.signed import canonical_json
from node.consent.extract import (
    POLICY,
    ExtractDesk,
    academic_year_of,
    envelope_json,
    grant_ref,
    rfc3339,
)
from node.crypto.keys import KekSource, Keyring, generate_key_file
from node.records.registry import Registry
from node.store.base import RecordStore, StoredConsent
from node.store.memory import MemoryStore
from node.store.sqlcipher import SqlCipherStore
from tests import strategies

SCHOOL = "spiffe://fed.test/school/s1"
ORIGIN = "childreg.fed.test/d1"
NOW = dt.datetime(2024, 10, 1, 12, 0, tzinfo=dt.UTC)
YEAR = academic_year_of(NOW.date())  # 2024/25

_DIR = Path(tempfile.mkdtemp(prefix="childreg-extract-lean-"))
generate_key_file(_DIR / "kek.key")
KEYRING = Keyring.create(_DIR / "keyring.json", KekSource.from_key_file(_DIR / "kek.key"))
SCHOOL_KEY = nacl.public.PrivateKey.generate()
SCHOOL_PUBLIC = bytes(SCHOOL_KEY.public_key)


def reference_child(view: ChildView, purpose: str, today: dt.date) -> dict[str, Any]:
    """The ``child`` part of an extract as the full path built it (the old _FIELDS)."""
    if not view.assessments:
        raise FailedPrecondition("no assessment is recorded for the child of this grant")
    a: AssessmentIn = max(view.assessments, key=lambda x: x.assessment_date)
    year = academic_year_of(today)
    old = {
        "given_name": view.child.given_name,
        "birth_year": view.child.date_of_birth.year,
        "functioning": [{"domain": f.domain, "level": f.level} for f in a.functioning],
        "icf_codes": [c for c in a.icf_codes if c[:1] in ("d", "e")],
        "supports": list(a.supports),
        "accommodations": list(a.accommodations),
        "recommended_form": a.recommended_form,
        "education_form": next(
            (p.education_form for p in view.placements if p.academic_year == year), None
        ),
        "assessment_date": a.assessment_date.isoformat(),
        "next_review": None if a.next_review is None else a.next_review.isoformat(),
    }
    return {name: old[name] for name in POLICY[purpose]}


def reference_payload(
    registry: Registry, consent: StoredConsent, grant: str, issued_at: str
) -> bytes:
    """The signed payload the full path made for this consent's child."""
    try:
        view = registry.get_child(consent.child_id)
    except NotFound:
        raise NotFound("the child of this grant is not held by this node") from None
    return canonical_json(
        {
            "v": EXTRACT_VERSION,
            "type": EXTRACT_TYPE,
            "node": ORIGIN,
            "grant_ref": grant_ref(KEYRING.grant_hash(grant)),
            "purpose": consent.purpose,
            "audience": consent.school,
            "recipient_key": base64.b64encode(SCHOOL_PUBLIC).decode(),
            "issued_at": issued_at,
            "expires_at": rfc3339(
                dt.datetime.combine(consent.valid_until, dt.time(23, 59, 59), tzinfo=dt.UTC)
            ),
            "child": reference_child(view, consent.purpose, NOW.date()),
        }
    )


def payload_of(sealed: bytes) -> bytes:
    envelope = nacl.public.SealedBox(SCHOOL_KEY).decrypt(sealed)
    return str(json.loads(envelope)["payload"]).encode()


@contextmanager
def open_store(kind: str) -> Iterator[RecordStore]:
    if kind == "memory":
        made: RecordStore = MemoryStore()
    else:
        where = Path(tempfile.mkdtemp(dir=_DIR))
        made = SqlCipherStore.open(where / "node.db", secrets.token_hex(32), create=True)
    try:
        yield made
    finally:
        made.close()


def a_child(child_id: str) -> ChildIn:
    return ChildIn(
        child_id=child_id,
        national_id="AZ" + secrets.token_hex(4).upper(),
        given_name="Aysel",
        family_name="Məmmədova",
        date_of_birth=dt.date(2015, 3, 14),
        sex="female",
        district="nasimi",
        guardian_name="Leyla Məmmədova",
    )


def add_consent(store: RecordStore, child_id: str) -> tuple[StoredConsent, str]:
    grant = "cg1_" + base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    consent = StoredConsent(
        consent_id="K" + secrets.token_hex(6),
        child_id=child_id,
        purpose="iep_preparation",
        school=SCHOOL,
        valid_from=dt.date(2024, 9, 1),
        valid_until=dt.date(2025, 6, 30),
        evidence_ref="box 4",
        granted_at=NOW - dt.timedelta(days=3),
        granted_by="spiffe://fed.test/department-staff/d1.ann",
        grant_hash=KEYRING.grant_hash(grant),
        sealed_guardian=b"x",
    )
    store.insert_consent(consent)
    return consent, grant


#: Few dates, so that several assessments of a child often share the latest one.
_DAYS = st.sampled_from([dt.date(2023, 5, 2), dt.date(2024, 5, 2), dt.date(2024, 9, 30)])


@st.composite
def records(draw: st.DrawFn, child_id: str) -> tuple[Any, list[Any], list[AssessmentIn]]:
    """A child with placements (often one in the current year) and 0-3 assessments."""
    child = draw(strategies.children(st.just(child_id)))
    years = draw(st.lists(st.sampled_from(["2023/24", YEAR, "2025/26"]), unique=True))
    placements = [
        PlacementIn(
            child_id=child_id,
            academic_year=y,
            education_form=draw(st.sampled_from(codes.EDUCATION_FORMS)),
        )
        for y in years
    ]
    assessments = []
    for day in draw(st.lists(_DAYS, max_size=3)):
        drawn = draw(strategies.assessments(child_id)).model_dump()
        review = None if drawn["next_review"] is None else day + dt.timedelta(days=365)
        assessments.append(
            AssessmentIn.model_validate(drawn | {"assessment_date": day, "next_review": review})
        )
    return child.model_copy(update={"national_id": None}), placements, assessments


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    kind=st.sampled_from(["memory", "sqlcipher"]),
    data=st.lists(
        st.sampled_from(["A1", "A2", "A3", "A4"]), min_size=1, max_size=4, unique=True
    ).flatmap(lambda ids: st.tuples(*(records(i) for i in ids))),
    orphan=st.booleans(),
)
def test_the_lean_extract_is_the_full_paths_extract(
    kind: str, data: tuple[tuple[Any, list[Any], list[AssessmentIn]], ...], orphan: bool
) -> None:
    """The extract built from the store's lean extract source is byte for byte (or refusal for
    refusal) the one built from the full child record."""
    with open_store(kind) as store:
        registry = Registry(store, KEYRING)
        for child, placements, assessments in data:
            registry.register_child(child, not_duplicate_reason="generated")  # may look alike
            for p in placements:
                registry.record_placement(p)
            for a in assessments:
                registry.record_assessment(a)
        desk = ExtractDesk(store, KEYRING, origin=ORIGIN, guard=lambda: None, clock=lambda: NOW)
        ids = [child.child_id for child, _, _ in data] + (["GONE"] if orphan else [])
        for child_id in ids:
            consent, grant = add_consent(store, child_id)
            lean = outcome(lean_payload, desk, grant)
            issued_at = json.loads(lean)["issued_at"] if isinstance(lean, bytes) else ""
            assert issued_at in ("", "2024-10-01T12:00:00Z")
            assert lean == outcome(reference_payload, registry, consent, grant, issued_at)


def lean_payload(desk: ExtractDesk, grant: str) -> bytes:
    return payload_of(desk.extract(grant, SCHOOL_PUBLIC, SCHOOL)[0])


def outcome(make: Callable[..., bytes], *args: Any) -> bytes | tuple[type[Exception], str]:
    """What ``make(*args)`` gives: its bytes, or the type and message of its refusal."""
    try:
        return make(*args)
    except ChildregError as exc:
        return type(exc), str(exc)


def test_the_latest_assessment_of_a_day_is_the_first_recorded(store: RecordStore) -> None:
    """Two assessments of the same, latest date: the one with the lower id is used (as
    max() over the assessments in id order did)."""
    registry = Registry(store, KEYRING)
    child = a_child("T1")
    registry.register_child(child)
    day = dt.date(2024, 5, 2)
    for supports in (("braille",), ("speech_therapy",), ("braille", "speech_therapy")):
        registry.record_assessment(
            AssessmentIn(child_id="T1", assessment_date=day, commission="PMPC", supports=supports)
        )
    registry.record_assessment(
        AssessmentIn(child_id="T1", assessment_date=dt.date(2020, 1, 1), commission="PMPC")
    )
    _, grant = add_consent(store, "T1")
    desk = ExtractDesk(store, KEYRING, origin=ORIGIN, guard=lambda: None, clock=lambda: NOW)
    sealed, _, _ = desk.extract(grant, SCHOOL_PUBLIC, SCHOOL)
    assert json.loads(payload_of(sealed))["child"]["supports"] == ["braille"]


def test_only_the_identity_and_the_allowed_fields_are_unsealed(
    store: RecordStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Diagnoses (and anything else the purpose does not name) stay sealed."""
    registry = Registry(store, KEYRING)
    registry.register_child(a_child("U1"))
    registry.record_assessment(
        AssessmentIn(
            child_id="U1",
            assessment_date=dt.date(2024, 5, 2),
            commission="PMPC",
            diagnoses=("F84.0",),
            icf_codes=("d140.2", "b167.3"),
        )
    )
    _, grant = add_consent(store, "U1")
    opened: list[str] = []
    unseal = Keyring.unseal

    def spy(self: Keyring, key: bytes, child_id: str, context: str, ciphertext: bytes) -> bytes:
        opened.append(context)
        return unseal(self, key, child_id, context, ciphertext)

    monkeypatch.setattr(Keyring, "unseal", spy)
    desk = ExtractDesk(store, KEYRING, origin=ORIGIN, guard=lambda: None, clock=lambda: NOW)
    desk.extract(grant, SCHOOL_PUBLIC, SCHOOL)
    assert sorted(opened) == [
        "assessment:1:accommodations",
        "assessment:1:functioning",
        "assessment:1:icf_codes",
        "assessment:1:supports",
        "identity",
    ]


@given(
    payload=st.text(max_size=300),
    signature=st.binary(min_size=64, max_size=64),
    signer=st.binary(min_size=32, max_size=32),
)
def test_the_envelope_is_the_canonical_json_of_its_three_fields(
    payload: str, signature: bytes, signer: bytes
) -> None:
    """The hand-built envelope equals canonical_json of its payload, signature and signer for
    any values."""
    sig, key = base64.b64encode(signature).decode(), base64.b64encode(signer).decode()
    assert envelope_json(payload, sig, key) == canonical_json(
        {"payload": payload, "signature": sig, "signer": key}
    )
