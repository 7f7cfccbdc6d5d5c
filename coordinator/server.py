"""The coordinator's composition root: catalogue, release store, channels, publisher, server."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc
import structlog
from grpc_health.v1 import health

from childreg.catalogue import load_verify_key, verify_catalogue
from childreg.errors import KeyProblem
from childreg.pki import IdentityFiles
from childreg.service import (
    bound_address,
    set_health,
    start_grpc_service,
    wait_for_signal,
    write_ready_file,
)
from childreg.v1 import statistics_pb2_grpc as spb_grpc
from coordinator.channels import NodeChannels
from coordinator.config import CoordinatorConfig
from coordinator.federation import Federation
from coordinator.publisher import Publisher, SignedCatalogue
from coordinator.releases import ReleaseStore
from coordinator.servicer import NationalStatisticsServicer

log = structlog.get_logger("childreg.coordinator")

SERVICES = ("childreg.v1.NationalStatisticsService",)


@dataclass
class CoordinatorApp:
    """A running coordinator: its server, port and channels to close on shutdown."""

    server: grpc.Server
    port: int
    channels: NodeChannels
    health: health.HealthServicer
    store: ReleaseStore

    def stop(self, grace: float = 5.0) -> None:
        """Stop serving and close every channel to the nodes."""
        set_health(self.health, SERVICES, serving=False)
        self.server.stop(grace).wait()
        self.channels.close()
        self.store.close()


def start_coordinator(config: CoordinatorConfig) -> CoordinatorApp:
    """Connect to every department (lazily) and start the mutual-TLS server."""
    identity = IdentityFiles(config.identity_dir)
    if identity.spiffe_id().federation != config.federation:
        raise KeyProblem(
            f"the identity in {config.identity_dir} belongs to another federation",
            hint=f"issue the coordinator's identity from the CA of {config.federation}",
        )
    authority = load_verify_key(config.statistics_authority_key)
    blob = config.catalogue_file.read_bytes()  # verify exactly the bytes that are served
    catalogue = SignedCatalogue(
        blob, verify_catalogue(blob, authority, federation=config.federation)
    )
    store = ReleaseStore(config.releases_path)
    channels = NodeChannels(config.departments, identity)
    try:
        publisher = Publisher(
            catalogue,
            Federation(channels, deadline_seconds=config.department_deadline_seconds),
            {d.id: d.region for d in config.departments},
            store,
            {s.id: s.rho for s in config.statisticians},
            solver_time_limit=config.solver_time_limit_seconds,
        )

        def register(server: grpc.Server) -> None:
            spb_grpc.add_NationalStatisticsServiceServicer_to_server(
                NationalStatisticsServicer(publisher, store), server
            )

        server, port, health_servicer = start_grpc_service(config, register, SERVICES)
    except BaseException:
        channels.close()
        store.close()
        raise
    return CoordinatorApp(server, port, channels, health_servicer, store)


def serve(config: CoordinatorConfig, ready_file: Path | None = None) -> None:
    """Run the coordinator until SIGTERM or SIGINT."""
    app = start_coordinator(config)
    address = bound_address(config.listen, app.port)
    log.info("coordinator.serving", address=address, departments=len(config.departments))
    if ready_file is not None:
        write_ready_file(ready_file, address)
    wait_for_signal()
    log.info("coordinator.stopping")
    app.stop()
