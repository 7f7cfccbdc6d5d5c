"""Warnings before a service's own certificate, or the federation CA's, expires.

Why: the CA key stays offline, so a renewal is a planned trip to it; an operator must hear
weeks ahead, not find the service refused by every peer one morning. Each service checks
its identity files (re-read every time, so a renewal shows at once) when it starts and
every hour: within ``warn_days`` of expiry it logs ``certificate.expiring`` (which
certificate, days left, the expiry time; nothing about people) and reports the health
entry :data:`HEALTH_SERVICE` NOT_SERVING — the server itself keeps serving — and once a
certificate has expired, ``certificate.expired``. docs/operations.md says how to renew.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import grpc
import structlog
from cryptography import x509
from grpc_health.v1 import health, health_pb2

from childreg.pki import IdentityFiles

log = structlog.get_logger("childreg.certificates")

#: The health entry saying whether the service's certificates are far from expiry.
HEALTH_SERVICE: Final = "childreg.certificate"
#: How often a running service looks again (seconds).
INTERVAL: Final = 3600.0


@dataclass(frozen=True)
class Expiry:
    """One certificate's expiry as seen now."""

    which: str  # "service" (tls.crt) or "ca" (ca.crt)
    not_after: dt.datetime
    days_left: float


def _not_after(pem: bytes) -> dt.datetime:
    return x509.load_pem_x509_certificate(pem).not_valid_after_utc


class CertificateWatch:
    """Checks a service's certificates against the warning window and reports."""

    def __init__(
        self,
        identity: IdentityFiles,
        *,
        warn_days: int,
        health_servicer: health.HealthServicer | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._identity = identity
        self._warn = dt.timedelta(days=warn_days)
        self._health = health_servicer
        self._clock = clock

    def expiries(self) -> list[Expiry]:
        """The service certificate's and the CA certificate's expiry, as of now."""
        now = self._clock()
        out = []
        for which, path in (("service", self._identity.cert), ("ca", self._identity.ca)):
            not_after = _not_after(path.read_bytes())
            out.append(Expiry(which, not_after, (not_after - now) / dt.timedelta(days=1)))
        return out

    def tick(self) -> bool:
        """Log what needs attention and set the health entry; True if all is well."""
        healthy = True
        for e in self.expiries():
            if e.days_left <= 0:
                log.error(
                    "certificate.expired", certificate=e.which, not_after=e.not_after.isoformat()
                )
                healthy = False
            elif e.days_left <= self._warn / dt.timedelta(days=1):
                log.warning(
                    "certificate.expiring",
                    certificate=e.which,
                    days_left=round(e.days_left, 1),
                    not_after=e.not_after.isoformat(),
                )
                healthy = False
        if self._health is not None:
            self._health.set(
                HEALTH_SERVICE,
                health_pb2.HealthCheckResponse.SERVING
                if healthy
                else health_pb2.HealthCheckResponse.NOT_SERVING,
            )
        return healthy

    def start(self, server: grpc.Server, interval: float = INTERVAL) -> threading.Thread:
        """Check now, then every ``interval`` seconds until ``server`` terminates."""
        self._safe_tick()

        def loop() -> None:
            while server.wait_for_termination(timeout=interval):  # True: timed out, still up
                self._safe_tick()

        thread = threading.Thread(target=loop, name="certificate-watch", daemon=True)
        thread.start()
        return thread

    def _safe_tick(self) -> None:
        try:
            self.tick()
        except Exception as exc:  # an unreadable file must not stop the service
            log.error("certificate.check_failed", error_type=type(exc).__name__)
