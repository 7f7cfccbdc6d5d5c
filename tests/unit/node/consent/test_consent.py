"""Consents at the department (node/consent/desk.py) and the guardian's receipts.

The receipts are node/consent/receipts.py.

Runs over both stores: a grant keeps only the grant's keyed hash and the guardian's name
sealed, so neither appears in the stored row nor in the database file.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from childreg.errors import FailedPrecondition, InvalidInput, NotFound
from childreg.history import Closure
from childreg.models import ChildIn
from node.consent.desk import GRANT_RE, ConsentDesk, ConsentIn
from node.consent.receipts import DepartmentReceipts
from node.crypto.keys import Keyring
from node.records.registry import Registry
from node.store.base import RecordStore

FEDERATION = "test.childreg"
SCHOOL = f"spiffe://{FEDERATION}/school/school-7"
GUARDIAN = "Zülfiyyə Planted-Guardian"
NOW = dt.datetime(2025, 3, 1, 9, 30, tzinfo=dt.UTC)


@pytest.fixture
def desk(store: RecordStore, keyring: Keyring) -> ConsentDesk:
    """A desk over the store with one registered child, C1, and a fixed clock."""
    Registry(store, keyring).register_child(
        ChildIn(
            child_id="C1",
            given_name="Aysel",
            family_name="Məmmədova",
            date_of_birth=dt.date(2015, 3, 14),
            sex="female",
            district="nasimi",
        )
    )
    return ConsentDesk(store, keyring, FEDERATION, clock=lambda: NOW)


def consent_data(**changes: Any) -> dict[str, Any]:
    """A valid consent's fields."""
    fields: dict[str, Any] = {
        "child_id": "C1",
        "guardian_name": GUARDIAN,
        "purpose": "iep_preparation",
        "school": SCHOOL,
        "valid_from": "2025-03-01",
        "valid_until": "2026-02-28",
        "evidence_ref": "folder 12, form 2025/031",
    }
    return fields | changes


def test_grant_keeps_only_the_grant_hash_and_a_sealed_guardian(
    desk: ConsentDesk, store: RecordStore, keyring: Keyring, tmp_path: Path
) -> None:
    """The token is random and well-formed; the row holds neither it nor the guardian."""
    stored, token = desk.grant(desk.parse(consent_data()), "spiffe://x/department-staff/a.b")
    assert GRANT_RE.fullmatch(token)
    assert len(token) == 47
    assert stored.consent_id.startswith("cns_")
    assert len(stored.consent_id) == 36
    row = store.get_consent(stored.consent_id)
    assert row == stored
    assert row.grant_hash == keyring.grant_hash(token)
    source = store.extract_source(keyring.grant_hash(token), "2024/25")
    assert source is not None
    assert source.consent == stored
    assert token.encode() not in repr(row).encode()
    assert GUARDIAN.encode() not in row.sealed_guardian
    assert GUARDIAN not in repr(row)
    assert desk.guardian_and_language(row)[0] == GUARDIAN
    _, second = desk.grant(desk.parse(consent_data()), "staff")
    assert second != token
    store.close()  # flush everything to disk before looking at the bytes
    for path in tmp_path.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert GUARDIAN.encode() not in data, path
            assert "Planted-Guardian".encode("utf-16-le") not in data, path
            assert token.encode() not in data, path


def test_withdraw_works_once(desk: ConsentDesk) -> None:
    """Withdrawal is immediate; a second one is refused; unknown ids are NotFound."""
    stored, _ = desk.grant(desk.parse(consent_data()), "staff")
    withdrawn = desk.withdraw(stored.consent_id, "staff")
    assert withdrawn.withdrawn_at == NOW
    assert desk.get(stored.consent_id).withdrawn_at == NOW
    with pytest.raises(FailedPrecondition):
        desk.withdraw(stored.consent_id, "staff")
    with pytest.raises(NotFound):
        desk.withdraw("cns_" + "0" * 32, "staff")
    with pytest.raises(InvalidInput):
        desk.withdraw("not-a-consent", "staff")
    assert [c.consent_id for c in desk.list("C1")] == [stored.consent_id]


def test_a_closed_record_takes_no_new_consent(
    desk: ConsentDesk, store: RecordStore, keyring: Keyring
) -> None:
    """Granting a consent for a child whose record is closed is refused; none is stored."""
    Registry(store, keyring).close_child(
        Closure(child_id="C1", closed_on=dt.date(2024, 6, 1), reason="aged_out")
    )
    with pytest.raises(FailedPrecondition, match="closed"):
        desk.grant(desk.parse(consent_data()), "staff")
    assert store.consents_of("C1") == []


def test_unknown_child_is_not_found(desk: ConsentDesk) -> None:
    """No consent for a child the department does not hold; the message has no guardian."""
    with pytest.raises(NotFound) as caught:
        desk.grant(desk.parse(consent_data(child_id="C404")), "staff")
    assert GUARDIAN not in str(caught.value)
    with pytest.raises(NotFound):
        desk.list("C404")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"purpose": "marketing"}, "purpose"),
        ({"school": "spiffe://other.fed/school/s1"}, "school"),
        ({"school": f"spiffe://{FEDERATION}/department-staff/a.b"}, "school"),
        ({"valid_until": "2025-02-01"}, "valid_until"),  # before valid_from, and past
        ({"valid_from": "2024-01-01", "valid_until": "2025-02-28"}, "valid_until"),  # past
        ({"valid_until": "2027-03-02"}, "valid_until"),  # more than 2 years
        ({"valid_from": "not a date"}, "valid_from"),
        ({"evidence_ref": ""}, "evidence_ref"),
        ({"evidence_ref": "x" * 201}, "evidence_ref"),
        ({"guardian_name": ""}, "guardian_name"),
        ({"child_id": "bad id!"}, "child_id"),
    ],
)
def test_validation_names_the_field_not_the_value(
    desk: ConsentDesk, changes: dict[str, Any], field: str
) -> None:
    """Each bad input is InvalidInput naming its field, never quoting the guardian."""
    with pytest.raises(InvalidInput) as caught:
        desk.parse(consent_data(**changes))
    assert field in {v.field for v in caught.value.violations}
    assert all(GUARDIAN not in str(v) for v in caught.value.violations)


def test_exactly_two_years_is_allowed(desk: ConsentDesk) -> None:
    """The longest consent runs to the same day two years on."""
    parsed = desk.parse(consent_data(valid_until="2027-03-01"))
    assert parsed.valid_until == dt.date(2027, 3, 1)
    assert isinstance(parsed, ConsentIn)


def test_grant_rechecks_a_model_built_elsewhere(desk: ConsentDesk) -> None:
    """A ConsentIn built without the desk's context is still checked against the federation."""
    data = consent_data(school="spiffe://other.fed/school/s1")
    foreign = ConsentIn.model_validate(data, context={"today": NOW.date()})
    with pytest.raises(InvalidInput):
        desk.grant(foreign, "staff")


def test_receipts_say_what_who_why_until_and_how_to_withdraw(desk: ConsentDesk) -> None:
    """Both forms carry the shared fields, school, purpose, dates and withdrawal advice."""
    stored, token = desk.grant(desk.parse(consent_data()), "staff")
    receipts = DepartmentReceipts("")
    data = json.loads(receipts.consent(stored, GUARDIAN, "grant", "en").json())
    assert data["consent_id"] == stored.consent_id
    assert data["school"] == {"id": "school-7", "name": "school-7"}
    assert data["purpose"] == "iep_preparation"
    assert data["valid_until"] == "2026-02-28"
    assert any("functioning profile" in f for f in data["shared_fields"])
    page = receipts.consent(stored, GUARDIAN, "grant", "en").html
    for needle in ("school-7", stored.consent_id, "February 28, 2026", "How to withdraw", "ICF-CY"):
        assert needle in page
    assert "spiffe://" not in page
    assert token not in page
    assert token not in json.dumps(data)
    withdrawn = desk.withdraw(stored.consent_id, "staff")
    assert "withdrawn" in receipts.consent(withdrawn, GUARDIAN, "withdrawal", "en").html
    assert json.loads(receipts.consent(withdrawn, GUARDIAN, "withdrawal", "").json())[
        "withdrawn_at"
    ]


def test_the_guardians_language_is_kept_sealed_with_the_consent(
    desk: ConsentDesk, store: RecordStore
) -> None:
    """The language chosen at the grant comes back for the withdrawal's receipt; with none
    chosen it is the profile's first (az); it is not in the stored row in the clear."""
    stored, _ = desk.grant(desk.parse(consent_data(language="ru")), "staff")
    assert desk.guardian_and_language(stored) == (GUARDIAN, "ru")
    row = store.get_consent(stored.consent_id)
    assert row is not None
    assert b"ru" not in row.sealed_guardian
    default, _ = desk.grant(desk.parse(consent_data()), "staff")
    assert desk.guardian_and_language(default) == (GUARDIAN, "az")


def test_an_unknown_language_is_refused_naming_the_field(desk: ConsentDesk) -> None:
    """A receipt language childreg does not speak is refused, naming ``language``."""
    with pytest.raises(InvalidInput) as caught:
        desk.parse(consent_data(language="xx"))
    assert [v.field for v in caught.value.violations] == ["language"]
