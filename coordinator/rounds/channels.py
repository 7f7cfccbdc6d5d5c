"""The coordinator's channels to every department's node, renewed with its certificate.

When the coordinator's identity files change (a renewed certificate), the next round
builds fresh channels with the new certificate and closes the old ones — no restart. So
does a new deny-list: a node presenting a revoked certificate gets no channel (it is left
out of the rounds, and ``tls.server_revoked`` is logged; childreg/server_check.py).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Final

import grpc
import structlog

from childreg.errors import PermissionDenied
from childreg.pki import IdentityFiles
from childreg.revocation import RevocationCheck
from childreg.rpc import TlsMaterial, secure_channel
from childreg.server_check import check_server, outgoing_check
from childreg.v1 import statistics_pb2_grpc as spb_grpc
from coordinator.config import Department

log = structlog.get_logger("childreg.coordinator")


#: A node back up is reconnected to within about this long (gRPC would back off up to 120 s),
#: so the next round's Ready re-asks (coordinator/rounds/secure.py) reach it.
RECONNECT_BACKOFF_MS: Final = 400


class NodeChannels(Mapping[str, spb_grpc.StatisticsServiceStub]):
    """Department id -> statistics stub, rebuilt when the identity files change."""

    def __init__(self, departments: tuple[Department, ...], identity: IdentityFiles) -> None:
        self._departments = departments
        self._identity = identity
        self._lock = threading.Lock()
        self._stamp: tuple[int, ...] = ()
        self._version = -1  # of the deny-list the channels were checked against
        self._channels: dict[str, grpc.Channel] = {}
        self._stubs: dict[str, spb_grpc.StatisticsServiceStub] = {}
        self._refresh()

    def _refresh(self) -> None:
        with self._lock:
            try:
                stamp = self._identity.stamp()
                check = outgoing_check()
                version = -1 if check is None else check.current.version
                if stamp == self._stamp and version == self._version:
                    return
                tls = TlsMaterial.from_dir(self._identity)
            except Exception:  # half-written files: keep the channels we have
                log.warning("tls.client_reload_failed")
                return
            old = self._channels
            self._channels = {
                d.id: secure_channel(
                    d.address, tls, d.server_name, max_reconnect_backoff_ms=RECONNECT_BACKOFF_MS
                )
                for d in self._departments
                if not self._revoked(d, check)
            }
            self._version = version
            self._stubs = {
                dept: spb_grpc.StatisticsServiceStub(ch) for dept, ch in self._channels.items()
            }
            if self._stamp:
                log.info("tls.client_reloaded")
            self._stamp = stamp
        for channel in old.values():
            channel.close()

    def _revoked(self, department: Department, check: RevocationCheck | None) -> bool:
        try:
            check_server(department.address, self._identity, department.server_name, check, 5.0)
        except PermissionDenied:
            return True
        return False

    def channel(self, dept: str) -> grpc.Channel:
        """The current channel to a department's node (renewed like the stubs)."""
        self._refresh()
        return self._channels[dept]

    def __getitem__(self, dept: str) -> spb_grpc.StatisticsServiceStub:
        return self._stubs[dept]

    def __iter__(self) -> Iterator[str]:
        self._refresh()  # once per round: rounds iterate the departments first
        return iter(list(self._stubs))

    def __len__(self) -> int:
        return len(self._stubs)

    def close(self) -> None:
        """Close every channel."""
        with self._lock:
            for channel in self._channels.values():
                channel.close()
            self._channels = {}
