"""The authorizer's own certificate checks (defence in depth behind TLS), on a fake context."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from childreg.authz import Authorizer
from childreg.errors import KeyProblem, PermissionDenied, Unauthenticated
from childreg.pki import CertificateAuthority
from childreg.revocation import RevocationCheck
from tests.conftest import FEDERATION, IssueFn
from tests.integration.test_authorization import forge


class FakeContext:
    """Just enough of grpc.ServicerContext: the peer's auth context."""

    def __init__(self, pem: bytes | None) -> None:
        self._auth = {"x509_pem_cert": [pem]} if pem else {}

    def auth_context(self) -> dict[str, list[bytes]]:
        return self._auth


GET_CHILD = "/childreg.v1.RecordsService/GetChild"


def test_missing_certificate_is_unauthenticated() -> None:
    """A call without a peer certificate is refused as unauthenticated."""
    with pytest.raises(Unauthenticated):
        Authorizer(FEDERATION).check(GET_CHILD, FakeContext(None))  # type: ignore[arg-type]


def test_certificate_without_client_auth_is_refused(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    """A CA-signed certificate lacking the clientAuth usage is refused with the reason."""
    material = forge(ca, tmp_path, client_auth=False)
    with pytest.raises(PermissionDenied, match="client authentication"):
        Authorizer(FEDERATION, department="alpha").check(GET_CHILD, FakeContext(material.cert))  # type: ignore[arg-type]


def test_unknown_method_is_denied_for_every_role(issue: IssueFn) -> None:
    """A method missing from the table is refused even for a valid caller (deny by default)."""
    pem = issue("statistician", "s1").cert.read_bytes()
    with pytest.raises(PermissionDenied):
        Authorizer(FEDERATION).check("/childreg.v1.Secret/Leak", FakeContext(pem))  # type: ignore[arg-type]


def test_verdicts_are_cached_per_certificate(
    issue: IssueFn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same certificate is parsed once; a cached verdict gives the same caller."""
    pem = issue("coordinator", "national").cert.read_bytes()
    authz = Authorizer(FEDERATION)
    parsed: list[bytes] = []
    inspect = authz._inspect

    def counting(pem_bytes: bytes) -> object:
        parsed.append(pem_bytes)
        return inspect(pem_bytes)

    monkeypatch.setattr(authz, "_inspect", counting)
    first = authz.check("/childreg.v1.StatisticsService/NoisyTable", FakeContext(pem))  # type: ignore[arg-type]
    second = authz.check("/childreg.v1.StatisticsService/NoisyTable", FakeContext(pem))  # type: ignore[arg-type]
    assert first == second
    assert parsed == [pem]
    assert str(first.spiffe) == f"spiffe://{FEDERATION}/coordinator/national"


def test_expired_certificate_is_refused_on_an_open_connection(issue: IssueFn) -> None:
    """Dates are checked on every call, so expiry bites even without a new handshake."""
    pem = issue("statistician", "s-exp", validity=dt.timedelta(hours=24)).cert.read_bytes()
    later = [dt.datetime.now(dt.UTC)]
    authz = Authorizer(FEDERATION, clock=lambda: later[0])
    method = "/childreg.v1.NationalStatisticsService/PublishedTable"
    authz.check(method, FakeContext(pem))  # type: ignore[arg-type]
    later[0] += dt.timedelta(days=2)  # issued for 24 hours
    with pytest.raises(PermissionDenied, match="expired"):
        authz.check(method, FakeContext(pem))  # type: ignore[arg-type]


def test_missing_or_bad_deny_list_stops_start_up(ca: CertificateAuthority, tmp_path: Path) -> None:
    """A configured deny-list that is absent or unsigned is an error, not 'nothing revoked'."""
    with pytest.raises(KeyProblem):
        RevocationCheck(tmp_path / "absent.json", ca.cert, FEDERATION)
    forged = tmp_path / "forged.json"
    forged.write_text(
        '{"federation": "test.childreg", "version": 9, "serials": [], "signature": "AA=="}'
    )
    with pytest.raises(KeyProblem):
        RevocationCheck(forged, ca.cert, FEDERATION)
