"""Warnings before a service's certificate or the CA's expires (childreg/cert_watch.py).

Far from expiry the health entry says SERVING and nothing is logged; within the warning
window, or past expiry, the log says which certificate and when, and the entry says
NOT_SERVING; a renewed certificate is seen at the next check.
"""

from __future__ import annotations

import datetime as dt

from grpc_health.v1 import health, health_pb2
from structlog.testing import capture_logs

from childreg.cert_watch import HEALTH_SERVICE, CertificateWatch
from tests.conftest import IssueFn


def status(servicer: health.HealthServicer) -> int:
    """The health entry's current status."""
    request = health_pb2.HealthCheckRequest(service=HEALTH_SERVICE)
    return int(servicer.Check(request, None).status)  # type: ignore[arg-type]


def test_far_from_expiry_all_is_well(issue: IssueFn) -> None:
    """A service certificate of a year, checked today: SERVING, no warning."""
    servicer = health.HealthServicer()
    watch = CertificateWatch(issue("node", "w1"), warn_days=30, health_servicer=servicer)
    with capture_logs() as logs:
        assert watch.tick()
    assert status(servicer) == health_pb2.HealthCheckResponse.SERVING
    assert logs == []


def test_within_the_window_the_log_and_health_say_so(issue: IssueFn) -> None:
    """A certificate with 10 days left against a 30-day window: a warning naming the
    service certificate and its days left, and NOT_SERVING."""
    identity = issue("node", "w2", validity=dt.timedelta(days=10))
    servicer = health.HealthServicer()
    watch = CertificateWatch(identity, warn_days=30, health_servicer=servicer)
    with capture_logs() as logs:
        assert not watch.tick()
    [warning] = [e for e in logs if e["event"] == "certificate.expiring"]
    assert warning["certificate"] == "service"
    assert 9 <= warning["days_left"] <= 10
    assert status(servicer) == health_pb2.HealthCheckResponse.NOT_SERVING


def test_an_expired_certificate_is_an_error(issue: IssueFn) -> None:
    """Checked after the certificate's end: certificate.expired, NOT_SERVING."""
    identity = issue("node", "w3", validity=dt.timedelta(days=10))
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=11)
    watch = CertificateWatch(identity, warn_days=5, clock=lambda: later)
    with capture_logs() as logs:
        assert not watch.tick()
    assert [e["certificate"] for e in logs if e["event"] == "certificate.expired"] == ["service"]


def test_a_renewal_is_seen_at_the_next_check(issue: IssueFn) -> None:
    """Replacing tls.crt with a renewed certificate turns the entry back to SERVING."""
    identity = issue("node", "w4", validity=dt.timedelta(days=10))
    servicer = health.HealthServicer()
    watch = CertificateWatch(identity, warn_days=30, health_servicer=servicer)
    assert not watch.tick()
    renewed = issue("node", "w4-renewed")
    identity.cert.write_bytes(renewed.cert.read_bytes())
    assert watch.tick()
    assert status(servicer) == health_pb2.HealthCheckResponse.SERVING
