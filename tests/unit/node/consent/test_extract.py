"""Tests of purpose-limited extracts (node/consent/extract.py, node/rpc/extract.py).

Granted: exactly the policy's fields and no diagnosis, national id, family or guardian
datum anywhere. Refused (every case of issue 7): the defined error and nothing else. The
servicer writes exactly one audit leaf per call, with the grant reference and outcome.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import secrets
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import nacl.public
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from childreg.audit.leaf import AuditEvent
from childreg.errors import (
    ChildregError,
    FailedPrecondition,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from childreg.extract_format import open_extract
from childreg.history import Closure
from childreg.models import (
    AssessmentIn,
    CareSettingIn,
    ChildIn,
    FunctioningItem,
    PlacementIn,
)
from childreg.v1 import consent_pb2 as cpb
from node.audit.log import AuditLog
from node.audit.service import Audited
from node.consent.extract import (
    POLICY,
    ExtractDesk,
    Extracts,
    _usable_x25519,
    extract_verify_key,
    grant_ref,
    parse_grant,
    parse_recipient_key,
)
from node.crypto.keys import KekSource, Keyring, generate_key_file
from node.records.registry import Registry
from node.rpc.extract import ExtractServicer
from node.store.base import RecordStore, StoredConsent
from node.store.memory import MemoryStore

SCHOOL = "spiffe://fed.test/school/s1"
OTHER_SCHOOL = "spiffe://fed.test/school/s2"
NOW = dt.datetime(2024, 10, 1, 12, 0, tzinfo=dt.UTC)
#: Values that must never leave the node in an extract.
SECRETS = (
    *("Məmmədova", "AZ12345678", "Leyla", "+994", "F84.0", "G80.1", "b167.3", "nasimi"),
    *("foster_family", "pct_61_80", "Baku PMPC"),
)


def new_grant() -> str:
    return "cg1_" + base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def fill(registry: Registry) -> None:
    """Child C1 with identity, two placements, a care setting and two assessments."""
    registry.register_child(
        ChildIn(
            child_id="C1",
            national_id="AZ12345678",
            given_name="Aysel",
            family_name="Məmmədova",
            date_of_birth=dt.date(2015, 3, 14),
            sex="female",
            district="nasimi",
            guardian_name="Leyla Məmmədova",
            guardian_phone="+994 50 123 45 67",
        )
    )
    registry.record_placement(
        PlacementIn(child_id="C1", academic_year="2023/24", education_form="special_school")
    )
    registry.record_placement(
        PlacementIn(child_id="C1", academic_year="2024/25", education_form="inclusive_class")
    )
    registry.record_care_setting(
        CareSettingIn(child_id="C1", care_setting="foster_family", since=dt.date(2020, 1, 1))
    )
    old = AssessmentIn(
        child_id="C1",
        assessment_date=dt.date(2021, 5, 2),
        commission="Baku PMPC",
        supports=("braille",),
    )
    registry.record_assessment(old)
    registry.record_assessment(
        AssessmentIn(
            child_id="C1",
            assessment_date=dt.date(2024, 5, 2),
            commission="Baku PMPC",
            impairment_band="pct_61_80",
            icf_codes=("d140.2", "b167.3", "e1151", "s110"),
            diagnoses=("F84.0", "G80.1"),
            functioning=(
                FunctioningItem(domain="seeing", level="some_difficulty"),
                FunctioningItem(domain="anxiety", level="weekly"),
            ),
            recommended_form="inclusive_class",
            supports=("speech_therapy", "teaching_assistant"),
            accommodations=("extra_time",),
            next_review=dt.date(2025, 5, 2),
        )
    )


class Node:
    """A desk over a filled registry, a grant for SCHOOL and the school's key pair."""

    def __init__(self, store: RecordStore, keyring: Keyring) -> None:
        self.store, self.keyring = store, keyring
        self.registry = Registry(store, keyring)
        fill(self.registry)
        self.witnessed = True
        self.now = NOW
        self.desk = ExtractDesk(
            store,
            keyring,
            origin="childreg.fed.test/d1",
            guard=self._guard,
            clock=lambda: self.now,
        )
        self.school_key = nacl.public.PrivateKey.generate()
        self.grant = self.consent()

    def _guard(self) -> None:
        if not self.witnessed:
            raise FailedPrecondition("the access log has not been witnessed recently")

    def consent(self, **changes: Any) -> str:
        grant = new_grant()
        fields: dict[str, Any] = {
            "consent_id": "K" + secrets.token_hex(4),
            "child_id": "C1",
            "purpose": "iep_preparation",
            "school": SCHOOL,
            "valid_from": dt.date(2024, 9, 1),
            "valid_until": dt.date(2025, 6, 30),
            "evidence_ref": "box 4",
            "granted_at": NOW - dt.timedelta(days=30),
            "granted_by": "spiffe://fed.test/staff/d1/ann",
            "grant_hash": self.keyring.grant_hash(grant),
            "sealed_guardian": b"x",
        }
        self.store.insert_consent(StoredConsent(**(fields | changes)))
        return grant

    @property
    def public(self) -> bytes:
        return bytes(self.school_key.public_key)

    def envelope(self, sealed: bytes) -> bytes:
        return nacl.public.SealedBox(self.school_key).decrypt(sealed)


@pytest.fixture
def node(store: RecordStore, keyring: Keyring) -> Node:
    return Node(store, keyring)


def test_granted_extract_carries_exactly_the_policy_fields(node: Node) -> None:
    """A granted extract names the child and grant reference and carries exactly the purpose's
    fields, never the grant itself."""
    sealed, child_id, ref = node.desk.extract(node.grant, node.public, SCHOOL)
    assert child_id == "C1"
    assert ref == grant_ref(node.keyring.grant_hash(node.grant))
    assert len(ref) == 16
    body = open_extract(sealed, node.school_key, extract_verify_key(node.keyring), SCHOOL, NOW)
    assert set(body["child"]) == set(POLICY["iep_preparation"])
    assert body["child"] == {
        "given_name": "Aysel",
        "birth_year": 2015,
        "functioning": [
            {"domain": "seeing", "level": "some_difficulty"},
            {"domain": "anxiety", "level": "weekly"},
        ],
        "icf_codes": ["d140.2", "e1151"],
        "supports": ["speech_therapy", "teaching_assistant"],
        "accommodations": ["extra_time"],
        "recommended_form": "inclusive_class",
        "education_form": "inclusive_class",
        "assessment_date": "2024-05-02",
        "next_review": "2025-05-02",
    }
    assert body["audience"] == SCHOOL
    assert body["purpose"] == "iep_preparation"
    assert body["grant_ref"] == ref
    assert body["expires_at"] == "2025-06-30T23:59:59Z"
    assert node.grant not in node.envelope(sealed).decode()


def test_no_withheld_datum_appears_anywhere_in_the_extract(node: Node) -> None:
    """No withheld value (diagnosis, national id, family, guardian, care setting, district)
    appears in the sealed box, the envelope or the payload, in any spelling."""
    sealed, _, _ = node.desk.extract(node.grant, node.public, SCHOOL)
    envelope = node.envelope(sealed)
    payload = json.loads(envelope)["payload"].encode()
    for blob in (sealed, envelope, payload):
        for value in SECRETS:
            assert value.encode() not in blob
            assert value.encode("unicode_escape") not in blob
            assert json.dumps(value).encode()[1:-1] not in blob


def refused(node: Node, grant: str, caller: str = SCHOOL, key: bytes | None = None) -> Exception:
    with pytest.raises(ChildregError) as info:
        node.desk.extract(grant, node.public if key is None else key, caller)
    return info.value


@pytest.mark.parametrize(
    "case",
    ["unknown", "other_school_consent", "withdrawn", "expired", "not_yet_valid"],
)
def test_invalid_grants_are_refused_alike(node: Node, case: str) -> None:
    """Unknown, foreign, withdrawn, expired and not-yet-valid grants all get the same
    PermissionDenied "grant not valid"."""
    grants: dict[str, Callable[[], str]] = {
        "unknown": new_grant,
        "other_school_consent": lambda: node.consent(school=OTHER_SCHOOL),
        "withdrawn": lambda: node.consent(withdrawn_at=NOW - dt.timedelta(seconds=1)),
        "expired": lambda: node.consent(valid_until=dt.date(2024, 9, 30)),
        "not_yet_valid": lambda: node.consent(valid_from=dt.date(2024, 10, 2)),
    }
    exc = refused(node, grants[case]())
    assert type(exc) is PermissionDenied
    assert str(exc) == "grant not valid"


def test_validity_days_are_inclusive(node: Node) -> None:
    """A consent is valid on its first and on its last day."""
    node.desk.extract(node.consent(valid_until=NOW.date()), node.public, SCHOOL)
    node.desk.extract(node.consent(valid_from=NOW.date()), node.public, SCHOOL)


def test_a_grant_presented_by_another_school_is_refused(node: Node) -> None:
    """A grant presented by another school, or by a caller with no identity, is refused as not
    valid."""
    exc = refused(node, node.grant, caller=OTHER_SCHOOL)
    assert type(exc) is PermissionDenied
    assert str(exc) == "grant not valid"
    assert type(refused(node, node.grant, caller="-")) is PermissionDenied


def test_withdrawal_takes_effect_immediately(node: Node) -> None:
    """The first extract after a consent is withdrawn is refused."""
    node.desk.extract(node.grant, node.public, SCHOOL)
    source = node.store.extract_source(node.keyring.grant_hash(node.grant), "2024/25")
    assert source is not None
    consent = source.consent
    assert node.store.withdraw_consent(consent.consent_id, NOW)
    assert type(refused(node, node.grant)) is PermissionDenied


def test_a_consent_expires_at_the_end_of_its_last_day(node: Node) -> None:
    """An extract is allowed in the last minute of the consent's last day and refused from
    midnight on."""
    node.now = dt.datetime(2025, 6, 30, 23, 59, tzinfo=dt.UTC)
    node.desk.extract(node.grant, node.public, SCHOOL)
    node.now = dt.datetime(2025, 7, 1, 0, 0, tzinfo=dt.UTC)
    assert type(refused(node, node.grant)) is PermissionDenied


def test_another_purpose_is_refused(node: Node) -> None:
    """A consent for a purpose with no extract policy gives no extract."""
    exc = refused(node, node.consent(purpose="research"))
    assert type(exc) is PermissionDenied
    assert "purpose" in str(exc)


def test_forged_and_altered_grants_are_refused(node: Node) -> None:
    """A grant with one changed character is not valid; a malformed or non-canonical spelling
    is InvalidInput on the grant field."""
    g = node.grant
    flipped = g[:10] + ("A" if g[10] != "A" else "B") + g[11:]
    assert type(refused(node, flipped)) is PermissionDenied
    for bad in (g[:-1], g + "A", "cg2_" + g[4:], g.upper(), g + "\n", " " + g, "", g[:-1] + "B"):
        exc = refused(node, bad)  # the last: a non-canonical spelling (low bits set)
        assert isinstance(exc, InvalidInput)
        assert exc.violations[0].field == "grant"


def test_unknown_child_and_missing_assessment(node: Node) -> None:
    """A grant for a child the node does not hold is NotFound (without the id) and one for a
    child without an assessment is FailedPrecondition."""
    exc = refused(node, node.consent(child_id="C404"))
    assert type(exc) is NotFound
    assert "C404" not in str(exc)
    node.registry.register_child(
        ChildIn(
            child_id="C2",
            given_name="A",
            family_name="B",
            date_of_birth=dt.date(2016, 1, 1),
            sex="male",
            district="nasimi",
        )
    )
    assert type(refused(node, node.consent(child_id="C2"))) is FailedPrecondition


def test_the_guard_fails_closed_before_any_lookup(node: Node) -> None:
    """While the log is not recently witnessed every extract is refused, for known and unknown
    grants alike."""
    node.witnessed = False
    assert type(refused(node, node.grant)) is FailedPrecondition
    assert type(refused(node, new_grant())) is FailedPrecondition  # same for unknown grants


@pytest.mark.parametrize("key", [b"", b"\x01" * 31, b"\x01" * 33, bytes(32)])
def test_recipient_key_must_be_a_usable_x25519_key(node: Node, key: bytes) -> None:
    """A recipient key of the wrong length or of low order is InvalidInput on the recipient_key
    field."""
    exc = refused(node, node.grant, key=key)
    assert type(exc) is InvalidInput
    assert exc.violations[0].field == "recipient_key"


class FakeContext:
    """The bits of grpc.ServicerContext peer_identity reads."""

    def __init__(self, identity: str) -> None:
        self._identity = identity

    def auth_context(self) -> dict[str, list[bytes]]:
        return {"x509_subject_alternative_name": [self._identity.encode()]}


def servicer_for(node: Node) -> tuple[AuditLog, ExtractServicer]:
    """The node's audit log and the extract servicer over the audited extract service."""
    audit = AuditLog(
        node.store, node.keyring.audit_signing_seed(), federation="fed.test", department="d1"
    )
    extracts = Extracts(node.desk, Audited(node.store, node.keyring, audit))
    return audit, ExtractServicer(extracts)


def test_the_servicer_logs_exactly_one_leaf_per_call(node: Node) -> None:
    """Each GetExtract call, granted or refused, leaves exactly one extract.disclose leaf
    naming the caller, with the child's pseudonym and grant reference once the grant was found."""
    audit, servicer = servicer_for(node)
    ctx: Any = FakeContext(SCHOOL)
    reply = servicer.GetExtract(
        cpb.ExtractRequest(grant=node.grant, recipient_key=node.public), ctx
    )
    assert node.envelope(reply.sealed)
    for request, caller in (
        (cpb.ExtractRequest(grant=node.grant, recipient_key=node.public), OTHER_SCHOOL),
        (cpb.ExtractRequest(grant="nonsense", recipient_key=node.public), SCHOOL),
    ):
        with pytest.raises(ChildregError):
            servicer.GetExtract(request, FakeContext(caller))  # type: ignore[arg-type]
    events = [AuditEvent.from_bytes(leaf) for leaf in audit.leaves()]
    assert [(e.action, e.outcome) for e in events] == [
        ("extract.disclose", "OK"),
        ("extract.disclose", grpc.StatusCode.PERMISSION_DENIED.name),
        ("extract.disclose", grpc.StatusCode.INVALID_ARGUMENT.name),
    ]
    ref = grant_ref(node.keyring.grant_hash(node.grant))
    pseudonym = node.keyring.pseudonym("C1").hex()
    assert [(e.grant, e.subject, e.purpose) for e in events] == [
        (ref, pseudonym, "iep_preparation"),
        (ref, pseudonym, "iep_preparation"),
        ("", "", ""),
    ]
    assert [e.actor for e in events] == [SCHOOL, OTHER_SCHOOL, SCHOOL]


# --- fuzzing: only defined errors, never another exception, never data ---------------

_FUZZ_DIR = Path(tempfile.mkdtemp(prefix="childreg-extract-fuzz-"))
generate_key_file(_FUZZ_DIR / "kek.key")
_FUZZ = Node(
    MemoryStore(),
    Keyring.create(_FUZZ_DIR / "keyring.json", KekSource.from_key_file(_FUZZ_DIR / "kek.key")),
)


def _mutations(grant: str) -> st.SearchStrategy[str]:
    def mutate(data: tuple[int, str, int]) -> str:
        at, char, how = data
        at %= len(grant)
        if how == 0:
            return grant[:at] + char + grant[at + 1 :]
        if how == 1:
            return grant[:at] + char + grant[at:]
        return grant[:at] + grant[at + 1 :]

    return st.tuples(st.integers(0, 200), st.characters(), st.integers(0, 2)).map(mutate)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    grant=st.one_of(
        st.text(max_size=80),
        _mutations(_FUZZ.grant),
        st.binary(max_size=60).map(lambda b: b.decode("latin-1")),
        st.just(new_grant()),
    ),
    key=st.one_of(st.binary(max_size=40), st.binary(min_size=32, max_size=32), st.just(b"")),
    caller=st.sampled_from([SCHOOL, OTHER_SCHOOL, "-", ""]),
)
def test_fuzz_grants_and_keys_only_defined_errors(grant: str, key: bytes, caller: str) -> None:
    """Any grant, key and caller give either a defined refusal or, only for the real grant from
    its school, an extract."""
    with contextlib.suppress(InvalidInput):
        parse_grant(grant)
    try:
        sealed, _, _ = _FUZZ.desk.extract(grant, key, caller)
    except (InvalidInput, PermissionDenied, FailedPrecondition, NotFound):
        return
    # Only the real grant, from its school, may ever yield an extract.
    assert (grant, caller) == (_FUZZ.grant, SCHOOL)
    assert sealed


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 42), st.characters(whitelist_categories=("Lu", "Ll", "Nd")))
def test_every_one_char_change_of_a_grant_is_refused(at: int, char: str) -> None:
    """Changing any one character of a grant's body makes it refused."""
    grant = _FUZZ.grant
    altered = grant[: 4 + at] + char + grant[5 + at :]
    if altered == grant:
        return
    with pytest.raises((InvalidInput, PermissionDenied)):
        _FUZZ.desk.extract(altered, _FUZZ.public, SCHOOL)


def test_a_withdrawal_waits_for_an_extract_in_flight_and_stops_the_next(node: Node) -> None:
    """The extract runs in one write transaction from the consent check to its leaf: staff
    withdrawing meanwhile wait until the leaf is committed, and the next call is refused."""
    audit, servicer = servicer_for(node)
    source = node.store.extract_source(node.keyring.grant_hash(node.grant), "2024/25")
    assert source is not None
    consent = source.consent
    build = node.desk.extract
    withdrawn = threading.Event()
    finished_inside: list[bool] = []

    def withdraw() -> None:
        node.store.withdraw_consent(consent.consent_id, NOW)  # staff, meanwhile
        withdrawn.set()

    def build_while_staff_withdraw(*args: Any, **kwargs: Any) -> Any:
        made = build(*args, **kwargs)
        staff = threading.Thread(target=withdraw)
        staff.start()
        staff.join(timeout=0.2)  # it must still be waiting for the extract's transaction
        finished_inside.append(withdrawn.is_set())
        return made

    node.desk.extract = build_while_staff_withdraw  # type: ignore[method-assign]
    ctx: Any = FakeContext(SCHOOL)
    request = cpb.ExtractRequest(grant=node.grant, recipient_key=node.public)
    assert node.envelope(servicer.GetExtract(request, ctx).sealed)
    assert finished_inside == [False]
    assert withdrawn.wait(timeout=10)
    node.desk.extract = build  # type: ignore[method-assign]
    with pytest.raises(PermissionDenied):
        servicer.GetExtract(request, ctx)
    leaves = [AuditEvent.from_bytes(b) for b in audit.entries(0, audit.size)]
    assert [leaf.outcome for leaf in leaves] == ["OK", "PERMISSION_DENIED"]


def test_a_refusal_inside_the_transaction_leaves_one_leaf_and_no_other_write(node: Node) -> None:
    """A refusal raised after the grant was read rolls the transaction back and is logged
    once, with the child's pseudonym and the grant reference."""
    audit, servicer = servicer_for(node)
    ctx: Any = FakeContext(SCHOOL)
    grant = node.consent(child_id="C404")
    with pytest.raises(NotFound):
        servicer.GetExtract(cpb.ExtractRequest(grant=grant, recipient_key=node.public), ctx)
    (leaf,) = [AuditEvent.from_bytes(b) for b in audit.entries(0, audit.size)]
    assert (leaf.outcome, leaf.grant) == ("NOT_FOUND", grant_ref(node.keyring.grant_hash(grant)))
    assert leaf.subject == node.keyring.pseudonym("C404").hex()


def test_recipient_key_verdicts_are_cached_and_stay_the_same() -> None:
    """The key check is cached per key (a school sends the same key each time): a usable
    key stays usable, a low-order point stays refused, and the cache is bounded."""
    good = bytes(nacl.public.PrivateKey.generate().public_key)
    for _ in range(2):
        assert parse_recipient_key(good) == good
        with pytest.raises(InvalidInput):
            parse_recipient_key(bytes(32))
    assert _usable_x25519.cache_info().maxsize == 1024


def test_a_closed_record_shares_nothing(node: Node) -> None:
    """Once the child's record is closed, a valid grant yields no extract (FailedPrecondition
    naming the closing, not the child)."""
    node.desk.extract(node.grant, node.public, SCHOOL)
    node.registry.close_child(
        Closure(child_id="C1", closed_on=dt.date(2024, 6, 1), reason="moved_abroad")
    )
    exc = refused(node, node.grant)
    assert type(exc) is FailedPrecondition
    assert "closed" in str(exc)
    assert "C1" not in str(exc)
