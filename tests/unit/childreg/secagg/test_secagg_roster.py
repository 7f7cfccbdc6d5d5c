"""The signed federation roster and the one-participant-set-per-snapshot rule."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from nacl.public import PrivateKey
from nacl.signing import SigningKey

from childreg.catalogue import (
    SIGNING_CONTEXT as CATALOGUE_CONTEXT,
)
from childreg.catalogue import (
    parse_catalogue,
    sign_catalogue,
    verify_catalogue,
)
from childreg.errors import FailedPrecondition, InvalidInput, PermissionDenied
from childreg.secagg.roster import (
    MemoryParticipationStore,
    ParticipationRule,
    Roster,
    parse_roster,
    sign_roster,
    verify_roster,
)
from childreg.signed import key_id

FED = "test.childreg"
Data = dict[str, Any]


def member(department: str, federation: str = FED) -> Data:
    key = bytes(PrivateKey.generate().public_key)
    return {
        "department": department,
        "identity": f"spiffe://{federation}/node/{department}",
        "masking_key": base64.b64encode(key).decode("ascii"),
        "upload_key": base64.b64encode(bytes(SigningKey.generate().verify_key)).decode("ascii"),
    }


def authored(*departments: str) -> Data:
    names = departments or ("baku", "ganja", "sumgait", "lankaran")
    return {
        "federation": FED,
        "version": 2,
        "first_snapshot": "2023/24",
        "last_snapshot": "2025/26",
        "colluders": 1,
        "members": [member(d) for d in names],
    }


@pytest.fixture(scope="module")
def authority() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture(scope="module")
def roster() -> Roster:
    return parse_roster(authored())


def fields(exc: InvalidInput) -> set[str]:
    return {v.field for v in exc.violations}


def resign(document: Data, key: SigningKey, context: bytes) -> bytes:
    """Re-sign the embedded roster of ``document`` under ``context`` (attacker's helper)."""
    body = json.dumps(document["roster"], sort_keys=True, separators=(",", ":")).encode()
    document["signature"] = base64.b64encode(key.sign(context + body).signature).decode()
    document["key_id"] = key_id(key.verify_key)
    return json.dumps(document).encode()


# --- signing ----------------------------------------------------------------------------


def test_round_trip(roster: Roster, authority: SigningKey) -> None:
    """A signed roster is deterministic and verifies back to the same roster with its members'
    keys.
    """
    blob = sign_roster(roster, authority)
    assert blob == sign_roster(roster, authority)  # deterministic
    back = verify_roster(blob, authority.verify_key, federation=FED)
    assert back == roster
    assert back.member("ganja").public_key.encode() == base64.b64decode(
        roster.members[1].masking_key
    )


def test_altered_member_is_refused(roster: Roster, authority: SigningKey) -> None:
    """Altered member is refused."""
    document = json.loads(sign_roster(roster, authority))
    document["roster"]["members"][0]["masking_key"] = member("baku")["masking_key"]
    with pytest.raises(PermissionDenied, match="altered"):
        verify_roster(json.dumps(document).encode(), authority.verify_key)


def test_flipped_signature_byte_is_refused(roster: Roster, authority: SigningKey) -> None:
    """Flipped signature byte is refused."""
    document = json.loads(sign_roster(roster, authority))
    signature = bytearray(base64.b64decode(document["signature"]))
    signature[7] ^= 0x01
    document["signature"] = base64.b64encode(bytes(signature)).decode()
    with pytest.raises(PermissionDenied, match="altered"):
        verify_roster(json.dumps(document).encode(), authority.verify_key)


def test_other_authority_is_refused(roster: Roster, authority: SigningKey) -> None:
    """Other authority is refused."""
    blob = sign_roster(roster, SigningKey.generate())
    with pytest.raises(PermissionDenied, match="another key"):
        verify_roster(blob, authority.verify_key)
    # the same key id claimed, but a signature by another key
    document = json.loads(blob)
    document["key_id"] = key_id(authority.verify_key)
    with pytest.raises(PermissionDenied, match="altered"):
        verify_roster(json.dumps(document).encode(), authority.verify_key)


def test_wrong_federation_is_refused(roster: Roster, authority: SigningKey) -> None:
    """Wrong federation is refused."""
    with pytest.raises(PermissionDenied, match="federation"):
        verify_roster(sign_roster(roster, authority), authority.verify_key, federation="other")


def test_catalogue_blob_is_not_a_roster(authority: SigningKey) -> None:
    """A signed catalogue is refused where a roster is expected."""
    catalogue = parse_catalogue(
        {
            "federation": FED,
            "version": 1,
            "snapshot_rho": "1/4",
            "delta": 1e-9,
            "display_threshold": 10,
            "tables": [{"id": "t", "title": "T", "dimensions": ["sex"], "rho": "1/32"}],
        }
    )
    with pytest.raises(InvalidInput, match="malformed"):
        verify_roster(sign_catalogue(catalogue, authority), authority.verify_key)


def test_a_catalogue_signature_never_signs_a_roster(roster: Roster, authority: SigningKey) -> None:
    """A well-formed roster document signed under the catalogue's prefix fails (domain split)."""
    document = json.loads(sign_roster(roster, authority))
    forged = resign(document, authority, CATALOGUE_CONTEXT)
    with pytest.raises(PermissionDenied, match="altered"):
        verify_roster(forged, authority.verify_key)
    assert verify_roster(resign(document, authority, b"childreg roster v1\n"), authority.verify_key)


def test_a_roster_is_not_a_catalogue(roster: Roster, authority: SigningKey) -> None:
    """A signed roster is refused where a catalogue is expected."""
    with pytest.raises(InvalidInput):
        verify_catalogue(sign_roster(roster, authority), authority.verify_key)


@pytest.mark.parametrize(
    "blob", [b"", b"not json", b"[]", b'{"format": "childreg-roster/1"}', b"x" * (2 << 20)]
)
def test_malformed_blob_is_invalid_input(blob: bytes, authority: SigningKey) -> None:
    """A malformed roster file is refused as invalid input."""
    with pytest.raises(InvalidInput, match="malformed"):
        verify_roster(blob, authority.verify_key)


def test_signed_but_invalid_content_is_invalid_input(authority: SigningKey) -> None:
    """Signed but invalid content is invalid input."""
    data = authored()
    data["members"][1]["department"] = "baku"  # identity no longer matches either
    document = {"format": "childreg-roster/1", "roster": data, "key_id": "", "signature": ""}
    with pytest.raises(InvalidInput) as info:
        verify_roster(resign(document, authority, b"childreg roster v1\n"), authority.verify_key)
    assert "members.1.department" in fields(info.value)


# --- validation -------------------------------------------------------------------------


def test_duplicate_department_identity_or_key_is_refused() -> None:
    """Duplicate department identity or key is refused."""
    data = authored()
    data["members"].append(dict(data["members"][0]))
    with pytest.raises(InvalidInput) as info:
        parse_roster(data)
    assert {
        "members.4.department",
        "members.4.identity",
        "members.4.masking_key",
        "members.4.upload_key",
    } <= fields(info.value)


def test_duplicate_masking_key_alone_is_refused() -> None:
    """Duplicate masking key alone is refused."""
    data = authored()
    data["members"][2]["masking_key"] = data["members"][0]["masking_key"]
    with pytest.raises(InvalidInput) as info:
        parse_roster(data)
    assert fields(info.value) == {"members.2.masking_key"}


def test_fewer_than_three_members_is_refused() -> None:
    """Fewer than three members is refused."""
    with pytest.raises(InvalidInput) as info:
        parse_roster(authored("baku", "ganja"))
    assert fields(info.value) == {"members"}


@pytest.mark.parametrize(
    "identity",
    [
        "spiffe://test.childreg/node/ganja",  # another department's node
        "spiffe://other.childreg/node/baku",  # another federation
        "spiffe://test.childreg/coordinator/baku",  # not a node
    ],
)
def test_identity_must_match_department_and_federation(identity: str) -> None:
    """Identity must match department and federation."""
    data = authored()
    data["members"][0]["identity"] = identity
    with pytest.raises(InvalidInput) as info:
        parse_roster(data)
    assert "members.0.identity" in fields(info.value)


@pytest.mark.parametrize(
    "key",
    [
        "not base64!",
        base64.b64encode(b"\x01" * 31).decode(),
        base64.b64encode(bytes(32)).decode(),
        base64.b64encode(b"\x01" * 32).decode().rstrip("="),
    ],
)
def test_bad_masking_key_is_refused(key: str) -> None:
    """Bad masking key is refused."""
    data = authored()
    data["members"][0]["masking_key"] = key
    with pytest.raises(InvalidInput) as info:
        parse_roster(data)
    assert fields(info.value) == {"members.0.masking_key"}


def test_duplicate_upload_key_alone_is_refused() -> None:
    """Duplicate upload key alone is refused."""
    data = authored()
    data["members"][3]["upload_key"] = data["members"][1]["upload_key"]
    with pytest.raises(InvalidInput) as info:
        parse_roster(data)
    assert fields(info.value) == {"members.3.upload_key"}


@pytest.mark.parametrize("colluders", [4, 5, -1, "1", True])
def test_colluders_must_be_an_int_below_the_member_count(colluders: object) -> None:
    """Colluders must be an int below the member count."""
    data = authored()
    data["colluders"] = colluders
    with pytest.raises(InvalidInput) as info:
        parse_roster(data)
    assert fields(info.value) == {"colluders"}


def test_a_round_must_outnumber_the_colluders() -> None:
    """A round must outnumber the colluders."""
    data = authored("baku", "ganja", "sumgait", "lankaran", "shaki")
    data["colluders"] = 3
    roster = parse_roster(data)
    assert len(roster.participants(["baku", "ganja", "sumgait", "shaki"])) == 4
    with pytest.raises(FailedPrecondition, match="at least 4"):
        roster.participants(["baku", "ganja", "sumgait"])


def test_a_roster_applies_to_its_range_of_snapshots(roster: Roster) -> None:
    """A roster applies to its range of snapshots."""
    for year in ("2023/24", "2024/25", "2025/26"):
        roster.check_covers(year)
    for year in ("2022/23", "2026/27"):
        with pytest.raises(FailedPrecondition, match="applies to snapshots 2023/24 to 2025/26"):
            roster.check_covers(year)


@pytest.mark.parametrize(
    ("first", "last", "field"),
    [("2025/26", "2023/24", "last_snapshot"), ("2023/25", "2025/26", "first_snapshot")],
)
def test_a_bad_range_of_snapshots_is_refused(first: str, last: str, field: str) -> None:
    """A bad range of snapshots is refused."""
    data = authored()
    data["first_snapshot"], data["last_snapshot"] = first, last
    with pytest.raises(InvalidInput) as info:
        parse_roster(data)
    assert fields(info.value) == {field}


def test_member_and_participants(roster: Roster) -> None:
    """Members are found by department, participants come back in roster order, and an unknown
    department is refused.
    """
    assert roster.member("baku").department == "baku"
    chosen = roster.participants(["sumgait", "baku", "ganja"])
    assert [m.department for m in chosen] == ["baku", "ganja", "sumgait"]
    with pytest.raises(InvalidInput, match="not in the federation roster"):
        roster.member("shaki")


def test_participants_refuses_unknown_duplicate_or_too_few(roster: Roster) -> None:
    """Participants refuses unknown duplicate or too few."""
    with pytest.raises(InvalidInput, match="not in the federation roster"):
        roster.participants(["baku", "ganja", "shaki"])
    with pytest.raises(InvalidInput, match="repeat"):
        roster.participants(["baku", "ganja", "ganja"])
    with pytest.raises(FailedPrecondition, match="at least 3"):
        roster.participants(["baku", "ganja"])
    with pytest.raises(FailedPrecondition):
        roster.participants("baku")


# --- one participant set per snapshot ----------------------------------------------------

FULL = ("a", "b", "c", "d")


@pytest.fixture
def rule() -> ParticipationRule:
    r = ParticipationRule(MemoryParticipationStore())
    r.admit("2025-01", FULL, colluders=1)
    return r


def test_first_set_recorded_and_same_set_again_in_any_order(rule: ParticipationRule) -> None:
    """First set recorded and same set again in any order."""
    rule.admit("2025-01", FULL, colluders=1)
    rule.admit("2025-01", reversed(FULL), colluders=1)


def test_a_dropped_is_refused(rule: ParticipationRule) -> None:
    """A snapshot's set with a member dropped is refused after the full set took part, and the
    refusal records nothing.
    """
    with pytest.raises(FailedPrecondition, match="already took part with another set"):
        rule.admit("2025-01", ("b", "c", "d"), colluders=1)
    rule.admit("2025-01", FULL, colluders=1)  # the refusal recorded nothing


def test_an_extra_member_is_refused(rule: ParticipationRule) -> None:
    """An extra member is refused."""
    with pytest.raises(FailedPrecondition, match="already took part with another set"):
        rule.admit("2025-01", (*FULL, "e"), colluders=1)


def test_another_snapshot_is_independent(rule: ParticipationRule) -> None:
    """Another snapshot is independent."""
    rule.admit("2025-02", ("b", "c", "d"), colluders=1)
    with pytest.raises(FailedPrecondition, match="another set"):
        rule.admit("2025-01", ("b", "c", "d"), colluders=1)


def test_a_set_must_hold_more_than_half_of_the_roster() -> None:
    """A set must hold more than half of the roster."""
    data = authored("baku", "ganja", "sumgait", "lankaran", "shaki", "guba")
    roster = parse_roster(data)
    assert len(roster.participants(["baku", "ganja", "sumgait", "lankaran"])) == 4
    with pytest.raises(FailedPrecondition, match="more than half"):
        roster.participants(["baku", "ganja", "sumgait"])  # 3 of 6: another 3 could sum too


def test_the_same_set_with_another_number_of_colluders_is_refused(
    rule: ParticipationRule,
) -> None:
    """The stored noise share was drawn for the first c: a larger c would overstate it."""
    with pytest.raises(FailedPrecondition, match="assuming 1 colluding"):
        rule.admit("2025-01", FULL, colluders=2)
    with pytest.raises(FailedPrecondition, match="assuming 1 colluding"):
        rule.admit("2025-01", FULL, colluders=0)
    rule.admit("2025-01", FULL, colluders=1)


def test_admit_refuses_a_repeated_department(rule: ParticipationRule) -> None:
    """Admit refuses a repeated department."""
    with pytest.raises(InvalidInput, match="repeat"):
        rule.admit("2025-01", ("a", "a", "b", "c"), colluders=1)


@pytest.mark.parametrize("size", range(3, 12))
def test_min_participants_is_exactly_the_smallest_set_participants_accepts(size: int) -> None:
    """Min participants is exactly the smallest set participants accepts."""
    names = [f"dept{i:02d}" for i in range(size)]
    for colluders in range(size):
        data = authored(*names)
        data["colluders"] = colluders
        roster = parse_roster(data)
        accepted = []
        for k in range(1, size + 1):
            try:
                roster.participants(names[:k])
                accepted.append(k)
            except FailedPrecondition:
                pass
        # the three rules by hand: 3 or more, a strict majority, more than the colluders
        expected = max(3, size // 2 + 1, colluders + 1)
        assert accepted == list(range(expected, size + 1))
        assert roster.min_participants == expected
