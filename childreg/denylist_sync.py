"""The deny-list reaching every server: one party publishes it, every server fetches it.

Why: revocation used to mean copying ``denylist.json`` by hand to every server. Now the
operator names a publisher (the coordinator, ``[revocation] publish = true``) which serves
the list in force over mutual TLS (RevocationService GetDenyList; nodes, witnesses and
coordinators may call it). Every server's :class:`DenyListKeeper` thread, each
``fetch_seconds``, re-reads its own file, fetches the publisher's list and offers it to
its :class:`~childreg.revocation.RevocationCheck`, which verifies it with the CA's key
exactly as a local file and installs it without restart under the version rules of
:func:`childreg.revocation.judge`. The publisher is trusted for availability only.

The keeper also watches the list's age (since the CA signed it): older than
``max_age_seconds``, the server logs ``denylist.stale`` and reports the health entry
:data:`HEALTH_SERVICE` as NOT_SERVING (the server itself keeps serving).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import grpc
import structlog
from grpc_health.v1 import health, health_pb2

from childreg.errors import FailedPrecondition
from childreg.pki import IdentityFiles
from childreg.revocation import RevocationCheck
from childreg.rpc import TlsMaterial, secure_channel
from childreg.v1 import revocation_pb2 as rpb
from childreg.v1 import revocation_pb2_grpc as rpb_grpc

log = structlog.get_logger("childreg.revocation")

#: The full service name of the publisher's RPC.
SERVICE: str = rpb.DESCRIPTOR.services_by_name["RevocationService"].full_name
#: The health entry saying whether this server's deny-list is younger than its maximum age.
HEALTH_SERVICE = "childreg.revocation"

Fetch = Callable[[], bytes]


class DenyListPublisher(rpb_grpc.RevocationServiceServicer):
    """Serves the signed list in force, byte for byte (the publisher has verified it)."""

    def __init__(self, check: RevocationCheck) -> None:
        self._check = check

    def GetDenyList(
        self, request: rpb.DenyListRequest, context: grpc.ServicerContext
    ) -> rpb.SignedDenyList:
        self._check.refresh()
        document = self._check.document
        if not document:
            raise FailedPrecondition("this server has no deny-list to publish")
        return rpb.SignedDenyList(document=document)


def grpc_fetch(
    identity: IdentityFiles, address: str, server_name: str | None, deadline: float = 10.0
) -> Fetch:
    """A fetch of the publisher's list over mutual TLS as ``identity`` (one channel per
    fetch, so a renewed identity is used from the next one)."""

    def fetch() -> bytes:
        with secure_channel(address, TlsMaterial.from_dir(identity), server_name) as channel:
            reply = rpb_grpc.RevocationServiceStub(channel).GetDenyList(
                rpb.DenyListRequest(), timeout=deadline
            )
        return reply.document

    return fetch


class DenyListKeeper:
    """Keeps one server's deny-list current and says when it is too old."""

    def __init__(
        self,
        check: RevocationCheck,
        *,
        fetch: Fetch | None,
        max_age_seconds: float,
        health_servicer: health.HealthServicer | None = None,
    ) -> None:
        self._check = check
        self._fetch = fetch
        self._max_age = max_age_seconds
        self._health = health_servicer
        self._stale: bool | None = None

    @property
    def stale(self) -> bool:
        """True if the list in force is older than the maximum age (or carries no time)."""
        age = self._check.age_seconds()
        return age is None or age > self._max_age

    def tick(self) -> None:
        """Re-read the local file, fetch and offer the publisher's list, report the age."""
        self._check.refresh()
        if self._fetch is not None:
            try:
                document = self._fetch()
            except grpc.RpcError as err:
                code = err.code() if isinstance(err, grpc.Call) else None
                log.warning("denylist.fetch_failed", status=getattr(code, "name", "UNKNOWN"))
            else:
                self._check.offer(document, source="publisher")
        self._report()

    def _report(self) -> None:
        stale = self.stale
        if stale:  # every tick while stale: an operator grepping the log sees it now
            age = self._check.age_seconds()
            log.warning(
                "denylist.stale",
                version=self._check.current.version,
                age_seconds=None if age is None else round(age),
                max_age_seconds=self._max_age,
            )
        elif self._stale:
            log.info("denylist.fresh", version=self._check.current.version)
        self._stale = stale
        if self._health is not None:
            status = (
                health_pb2.HealthCheckResponse.NOT_SERVING
                if stale
                else health_pb2.HealthCheckResponse.SERVING
            )
            self._health.set(HEALTH_SERVICE, status)

    def start(self, server: grpc.Server, interval: float) -> threading.Thread:
        """Report the age now; tick at once (in the thread), then every ``interval``
        seconds until ``server`` terminates."""
        self._report()

        def loop() -> None:
            while True:
                try:
                    self.tick()
                except Exception as exc:  # the thread must outlive one bad tick
                    log.error("denylist.tick_failed", error_type=type(exc).__name__)
                if _terminated(server, interval):
                    return

        thread = threading.Thread(target=loop, name="denylist-keeper", daemon=True)
        thread.start()
        return thread


def _terminated(server: grpc.Server, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds; True once the server has stopped."""
    timed_out = server.wait_for_termination(timeout=timeout)
    return not timed_out
