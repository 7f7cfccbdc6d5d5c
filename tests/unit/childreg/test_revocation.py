"""The deny-list's version rules, the remembered newest list, its age, and the keeper."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from grpc_health.v1 import health, health_pb2
from structlog.testing import capture_logs

from childreg.denylist_sync import HEALTH_SERVICE, DenyListKeeper
from childreg.errors import InvalidInput, KeyProblem
from childreg.pki import CertificateAuthority
from childreg.revocation import DENYLIST_FILE, DenyList, RevocationCheck, judge, sign, verify

FED = "unit.childreg"
NOW = 1_800_000_000


@pytest.fixture
def ca(tmp_path: Path) -> CertificateAuthority:
    """A CA of its own, so each test's lists start at version 1."""
    return CertificateAuthority.create(FED, tmp_path / "ca")


def _key(ca: CertificateAuthority) -> ec.EllipticCurvePrivateKey:
    assert ca.directory is not None
    key = serialization.load_pem_private_key((ca.directory / "ca.key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def _signed(ca: CertificateAuthority, version: int, *serials: int, at: int = NOW) -> bytes:
    return sign(DenyList(FED, version, frozenset(serials), issued_at=at), _key(ca))


def _check(ca: CertificateAuthority, tmp_path: Path, document: bytes) -> RevocationCheck:
    local = tmp_path / "server" / DENYLIST_FILE
    local.parent.mkdir(exist_ok=True)
    local.write_bytes(document)
    state = tmp_path / "server" / "state" / "denylist.accepted.json"
    return RevocationCheck(local, ca.cert, FED, state_file=state, wall=lambda: NOW + 60.0)


def test_judge_orders_lists_by_version_and_content() -> None:
    """Higher wins only as a superset; equal only byte-equal; lower and foreign never."""
    v2 = DenyList(FED, 2, frozenset({1, 2}))
    assert judge(None, v2) == "newer"
    assert judge(v2, DenyList(FED, 3, frozenset({1, 2, 3}))) == "newer"
    assert judge(v2, DenyList(FED, 2, frozenset({1, 2}))) == "same"
    assert judge(v2, DenyList(FED, 2, frozenset({1}))) == "conflict"
    assert judge(v2, DenyList(FED, 2, frozenset({1, 2}), issued_at=5)) == "conflict"
    assert judge(v2, DenyList(FED, 1, frozenset({1, 2}))) == "older"
    assert judge(v2, DenyList(FED, 3, frozenset({2, 3}))) == "drops"
    assert judge(v2, DenyList("other.childreg", 3, frozenset({1, 2}))) == "foreign"


def test_issued_at_is_signed_and_old_lists_without_it_still_verify(
    ca: CertificateAuthority,
) -> None:
    """Changing the signed time breaks the signature; a list signed without one verifies."""
    doc = json.loads(_signed(ca, 4, 7))
    doc["issued_at"] += 86_400
    with pytest.raises(InvalidInput):
        verify(json.dumps(doc).encode(), ca.cert)
    legacy = sign(DenyList(FED, 4, frozenset({7})), _key(ca))
    assert "issued_at" not in json.loads(legacy)
    assert verify(legacy, ca.cert) == DenyList(FED, 4, frozenset({7}))


def test_equal_version_with_other_content_is_refused(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    """A second list signed with the version in force never replaces it, from any source."""
    check = _check(ca, tmp_path, _signed(ca, 2, 10))
    with capture_logs() as logs:
        assert check.offer(_signed(ca, 2, 11), source="publisher") == "conflict"
    assert check.current.serials == {10}
    assert check.is_revoked(10)
    assert not check.is_revoked(11)
    assert [e["reason"] for e in logs if e["event"] == "denylist.refused"] == ["conflict"]
    assert check.offer(check.document, source="publisher") == "same"


def test_older_and_shrinking_lists_are_refused(ca: CertificateAuthority, tmp_path: Path) -> None:
    """A lower version, or a higher one that un-revokes a serial, leaves the list in force."""
    check = _check(ca, tmp_path, _signed(ca, 3, 10, 11))
    assert check.offer(_signed(ca, 2, 10, 11, 12), source="publisher") == "older"
    assert check.offer(_signed(ca, 4, 10), source="publisher") == "drops"
    assert check.current.version == 3
    assert check.is_revoked(11)
    assert check.offer(_signed(ca, 4, 10, 11, 12), source="publisher") == "newer"
    assert check.current.version == 4
    assert check.is_revoked(12)


def test_invalid_documents_are_refused(ca: CertificateAuthority, tmp_path: Path) -> None:
    """Garbage or a list signed by another key is refused and changes nothing."""
    check = _check(ca, tmp_path, _signed(ca, 2, 10))
    other = CertificateAuthority.create(FED, tmp_path / "other-ca")
    assert check.offer(b"not json", source="publisher") == "invalid"
    assert check.offer(_signed(other, 9), source="publisher") == "invalid"
    assert check.current.version == 2


def test_newest_accepted_list_survives_a_restart(ca: CertificateAuthority, tmp_path: Path) -> None:
    """After a restart with an older local file, the remembered newer list stays in force."""
    check = _check(ca, tmp_path, _signed(ca, 2, 10))
    newer = _signed(ca, 5, 10, 20)
    assert check.offer(newer, source="publisher") == "newer"
    state = tmp_path / "server" / "state" / "denylist.accepted.json"
    assert state.read_bytes() == newer
    assert state.stat().st_mode & 0o077 == 0
    with capture_logs() as logs:
        restarted = _check(ca, tmp_path, _signed(ca, 2, 10))  # the old file, still there
    assert restarted.current.version == 5
    assert restarted.is_revoked(20)
    assert restarted.document == newer
    assert [e.get("reason") for e in logs if e["event"] == "denylist.refused"] == ["older"]
    assert restarted.offer(_signed(ca, 5, 10), source="publisher") == "conflict"


def test_a_newer_local_file_replaces_the_remembered_list(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    """Started with a local file newer than the one remembered, the server takes the file."""
    _check(ca, tmp_path, _signed(ca, 2, 10))
    restarted = _check(ca, tmp_path, _signed(ca, 3, 10, 30))
    assert restarted.current.version == 3
    state = tmp_path / "server" / "state" / "denylist.accepted.json"
    assert verify(state.read_bytes(), ca.cert).version == 3


def test_a_tampered_remembered_list_stops_start_up(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    """A state file that does not verify is an error, never 'start from the file alone'."""
    _check(ca, tmp_path, _signed(ca, 2, 10))
    state = tmp_path / "server" / "state" / "denylist.accepted.json"
    doc = json.loads(state.read_bytes())
    doc["serials"] = []
    state.write_text(json.dumps(doc))
    with pytest.raises(KeyProblem, match="remembered"):
        _check(ca, tmp_path, _signed(ca, 2, 10))


def test_ca_revoke_stamps_each_new_version(ca: CertificateAuthority) -> None:
    """`pki revoke` (CertificateAuthority.revoke) signs a higher version with a time."""
    first = ca.revoke([])
    second = ca.revoke([0xABC])
    assert second.version == first.version + 1
    assert second.issued_at is not None
    assert first.issued_at is not None
    assert second.issued_at >= first.issued_at
    assert 0xABC in second.serials


class _Unavailable(grpc.RpcError, grpc.Call):  # type: ignore[misc]
    """A failed call as grpc raises it (only its code is read)."""

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE


def _status(servicer: health.HealthServicer) -> int:
    request = health_pb2.HealthCheckRequest(service=HEALTH_SERVICE)
    reply = servicer.Check(request, None)  # type: ignore[arg-type]
    return int(reply.status)


def test_keeper_installs_the_fetched_list_and_reports_its_age(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    """A fetched newer list is installed; a list older than the maximum age is reported
    stale in the health entry and the log, and fresh again once a young list arrives."""
    check = _check(ca, tmp_path, _signed(ca, 2, 10, at=NOW - 3600))
    served = [_signed(ca, 2, 10, at=NOW - 3600)]
    servicer = health.HealthServicer()
    keeper = DenyListKeeper(
        check, fetch=lambda: served[0], max_age_seconds=600, health_servicer=servicer
    )
    with capture_logs() as logs:
        keeper.tick()
    assert keeper.stale
    assert _status(servicer) == health_pb2.HealthCheckResponse.NOT_SERVING
    stale = [e for e in logs if e["event"] == "denylist.stale"]
    assert stale
    assert stale[0]["version"] == 2
    assert stale[0]["max_age_seconds"] == 600
    served[0] = _signed(ca, 3, 10, 11, at=NOW)
    with capture_logs() as logs:
        keeper.tick()
    assert check.current.version == 3
    assert check.is_revoked(11)
    assert not keeper.stale
    assert _status(servicer) == health_pb2.HealthCheckResponse.SERVING
    assert [e["event"] for e in logs if e["event"].startswith("denylist.")] == [
        "denylist.loaded",
        "denylist.fresh",
    ]


def test_keeper_survives_an_unreachable_publisher(ca: CertificateAuthority, tmp_path: Path) -> None:
    """A failed fetch is logged with its status only, and the list in force stays."""
    check = _check(ca, tmp_path, _signed(ca, 2, 10))

    def fetch() -> bytes:
        raise _Unavailable()

    keeper = DenyListKeeper(check, fetch=fetch, max_age_seconds=600)
    with capture_logs() as logs:
        keeper.tick()
    failed = [e for e in logs if e["event"] == "denylist.fetch_failed"]
    assert failed == [{"event": "denylist.fetch_failed", "status": "UNAVAILABLE",
                       "log_level": "warning"}]  # fmt: skip
    assert check.current.version == 2


def test_a_list_without_a_time_counts_as_stale(ca: CertificateAuthority, tmp_path: Path) -> None:
    """A list signed before lists carried a time cannot show it is young: it is stale."""
    check = _check(ca, tmp_path, sign(DenyList(FED, 2, frozenset()), _key(ca)))
    assert check.age_seconds() is None
    assert DenyListKeeper(check, fetch=None, max_age_seconds=600).stale


def test_revocation_settings_name_the_field_and_the_problem() -> None:
    """A malformed publisher address or an unknown key in [revocation] is refused by name."""
    from pydantic import ValidationError

    from childreg.config import RevocationSettings

    assert RevocationSettings().publisher is None
    with pytest.raises(ValidationError, match="publisher"):
        RevocationSettings.model_validate({"publisher": "no port here"})
    with pytest.raises(ValidationError, match="fetch_interval"):
        RevocationSettings.model_validate({"fetch_interval": 5})
    with pytest.raises(ValidationError, match="max_age_seconds"):
        RevocationSettings.model_validate({"max_age_seconds": 0})


def test_a_node_may_not_publish(tmp_path: Path) -> None:
    """A node's configuration with `[revocation] publish = true` is refused, naming it."""
    from pydantic import ValidationError

    from node.config import NodeConfig

    data = {
        "department_id": "alpha", "name": "Alpha", "region": "baku", "districts": ["nasimi"],
        "data_dir": str(tmp_path), "identity_dir": str(tmp_path), "kek_file": str(tmp_path / "k"),
        "denylist_file": str(tmp_path / DENYLIST_FILE),
        "statistics_authority_key": str(tmp_path / "authority.pub"),
    }  # fmt: skip
    NodeConfig.model_validate(data)
    with pytest.raises(ValidationError, match=r"revocation\.publish"):
        NodeConfig.model_validate(data | {"revocation": {"publish": True}})
