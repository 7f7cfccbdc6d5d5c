"""The coordinator's composition root: catalogue, roster, release store, channels, the
aggregation mechanism (stage 1 or stage 2 of docs/design/privacy.md), publisher, server — and the
witness of the departments' audit logs it hosts, which it is given (it never imports
``witness/``: ``childreg coordinator serve`` builds one with ``witness.server`` and passes
it in through :class:`~coordinator.rounds.witnessing.HostedWitness`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc
import structlog
from grpc_health.v1 import health
from nacl.signing import VerifyKey

from childreg import profile
from childreg.catalogue import KIND as CATALOGUE_KIND
from childreg.catalogue import load_verify_key, verify_catalogue
from childreg.errors import ChildregError, FailedPrecondition, InvalidInput, KeyProblem
from childreg.pki import IdentityFiles
from childreg.secagg.masks import MIN_PARTICIPANTS
from childreg.secagg.roster import KIND as ROSTER_KIND
from childreg.secagg.roster import verify_roster
from childreg.service import (
    bound_address,
    set_health,
    start_grpc_service,
    wait_for_signal,
    write_ready_file,
)
from childreg.signed import read_signed_file
from childreg.v1 import statistics_pb2_grpc as spb_grpc
from coordinator.config import CoordinatorConfig
from coordinator.publication.publisher import Publisher, SignedCatalogue
from coordinator.publication.releases import ReleaseStore
from coordinator.rounds.channels import NodeChannels
from coordinator.rounds.federation import Federation, PerDepartmentRounds, Rounds
from coordinator.rounds.secure import SecureRounds, SignedRoster
from coordinator.rounds.witnessing import HostedWitness, PullWitness
from coordinator.rpc.convert import PUBLISHED_TABLES
from coordinator.rpc.servicer import NationalStatisticsServicer

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
    witness: PullWitness | None = None
    #: The services whose health it reports (with the hosted witness's, if any).
    services: tuple[str, ...] = SERVICES

    def stop(self, grace: float = 5.0) -> None:
        """Stop serving, then close the witness, every channel to the nodes and the store."""
        set_health(self.health, self.services, serving=False)
        if self.witness is not None:
            self.witness.stop()
        self.server.stop(grace).wait()
        if self.witness is not None:
            self.witness.witness.close()
        self.channels.close()
        self.store.close()


def signed_inputs(config: CoordinatorConfig) -> tuple[SignedCatalogue, SignedRoster | None]:
    """What the coordinator checks before it serves: its identity's federation, and the
    catalogue and (under secure aggregation) the roster against the pinned authority key.

    KeyProblem (with a hint) or the signed documents' own errors when something is wrong;
    ``childreg coordinator check-config`` runs exactly this.
    """
    identity = IdentityFiles(config.identity_dir)
    if identity.spiffe_id().federation != config.federation:
        raise KeyProblem(
            f"the identity in {config.identity_dir} belongs to another federation",
            hint=f"issue the coordinator's identity from the CA of {config.federation}",
        )
    authority = load_verify_key(config.statistics_authority_key)
    try:  # verify exactly the bytes that are served
        blob = read_signed_file(CATALOGUE_KIND, config.catalogue_file)
    except InvalidInput as exc:
        raise KeyProblem(
            f"cannot read the catalogue {config.catalogue_file}: {exc}",
            hint="set catalogue_file to the file `childreg stats catalogue sign` wrote",
        ) from None
    catalogue = SignedCatalogue(
        blob, verify_catalogue(blob, authority, federation=config.federation)
    )
    return catalogue, load_roster(config, authority)


def start_coordinator(
    config: CoordinatorConfig, *, witness: HostedWitness | None = None
) -> CoordinatorApp:
    """Connect to every department (lazily) and start the mutual-TLS server.

    ``witness`` is the witness of the departments' audit logs that the configuration's
    ``witness`` section asks for (``childreg coordinator serve`` builds it); the coordinator
    then owns it, and closes it on shutdown or if it fails to start. FailedPrecondition,
    before anything is opened, when the section and the witness do not go together.
    """
    try:
        _check_witness(config, witness)
        return _start(config, witness)
    except BaseException:
        if witness is not None:
            witness.close()
        raise


def _check_witness(config: CoordinatorConfig, witness: HostedWitness | None) -> None:
    """Never skip witnessing silently, and never witness without the section's settings."""
    if config.witness is not None and witness is None:
        raise FailedPrecondition(
            "the configuration has a `witness` section, but the coordinator was started "
            "without a witness, so the departments' audit logs would go unwitnessed; start "
            "it with `childreg coordinator serve`, which builds the witness from that "
            "section, or remove the section"
        )
    if config.witness is None and witness is not None:
        raise FailedPrecondition(
            "the coordinator was given a witness, but the configuration has no `witness` "
            "section (its name, signing_key_file and interval_seconds); add the section, "
            "or start the coordinator without a witness"
        )


def _start(config: CoordinatorConfig, witness: HostedWitness | None) -> CoordinatorApp:
    identity = IdentityFiles(config.identity_dir)
    catalogue, roster = signed_inputs(config)
    authority = load_verify_key(config.statistics_authority_key)
    profile.install(config.country_profile(authority, config.federation))
    store = ReleaseStore(config.releases_path)
    channels = NodeChannels(config.departments, identity)
    try:
        rounds: Rounds
        if roster is None:
            rounds = PerDepartmentRounds(
                Federation(channels, deadline_seconds=config.department_deadline_seconds),
                {d.id: d.region for d in config.departments},
            )
        else:
            rounds = SecureRounds(
                channels,
                roster,
                store,
                deadline_seconds=config.department_deadline_seconds,
                settle_seconds=config.settle_seconds,
                round_attempts=config.round_attempts,
            )
        publisher = Publisher(
            catalogue,
            rounds,
            store,
            {s.id: s.rho for s in config.statisticians},
            codec=PUBLISHED_TABLES,
            solver_time_limit=config.solver_time_limit_seconds,
            solver_node_limit=config.solver_node_limit,
        )
        pull = None
        if witness is not None and config.witness is not None:
            pull = PullWitness(
                witness, channels.channel, config.audit_origins(), config.witness.interval_seconds
            )

        def register(server: grpc.Server) -> None:
            spb_grpc.add_NationalStatisticsServiceServicer_to_server(
                NationalStatisticsServicer(publisher, store), server
            )
            if witness is not None:
                witness.register(server)

        services = SERVICES + ((witness.service_name,) if witness is not None else ())
        server, port, health_servicer = start_grpc_service(
            config, register, services, state_dir=config.state_dir
        )
    except BaseException:
        channels.close()
        store.close()
        raise
    if pull is not None:
        pull.start()
    return CoordinatorApp(server, port, channels, health_servicer, store, pull, services)


def load_roster(config: CoordinatorConfig, authority: VerifyKey) -> SignedRoster | None:
    """The verified roster under secure aggregation (None per department); KeyProblem when
    it cannot be read or verified, or does not list every configured department."""
    if config.aggregation != "secure":
        return None
    path = config.roster_file
    if path is None:  # the configuration's validation already refuses this
        raise KeyProblem("secure aggregation needs roster_file", hint=_ROSTER_HINT)
    try:
        blob = read_signed_file(ROSTER_KIND, path)
    except InvalidInput as exc:
        raise KeyProblem(f"cannot read the roster {path}: {exc}", hint=_ROSTER_HINT) from None
    try:
        roster = verify_roster(blob, authority, federation=config.federation)
    except ChildregError as exc:
        raise KeyProblem(
            f"the roster {path} is not valid for federation {config.federation} under the "
            f"pinned statistics-authority key: {exc}",
            hint=_ROSTER_HINT,
        ) from None
    outside = [d.id for d in config.departments if d.id not in roster.departments]
    if outside:
        raise KeyProblem(
            f"configured departments are not in the roster {path} (version "
            f"{roster.version}): {', '.join(outside)}",
            hint="add their `childreg node roster-entry` to the roster and sign it again "
            "(`childreg stats roster sign`), or remove them from `departments`",
        )
    if len(config.departments) < roster.min_participants:
        raise KeyProblem(
            f"secure aggregation needs at least {roster.min_participants} configured "
            f"departments (at least {MIN_PARTICIPANTS}, more than half of the roster's "
            f"{len(roster.members)} and more than its {roster.colluders} colluders); "
            f"{len(config.departments)} are configured",
            hint='configure more departments, or set aggregation = "per-department"',
        )
    return SignedRoster(blob, roster)


_ROSTER_HINT = (
    "sign the federation roster with the statistics authority's key "
    "(`childreg stats roster sign`) and set roster_file to it"
)


def serve(
    config: CoordinatorConfig,
    ready_file: Path | None = None,
    *,
    witness: HostedWitness | None = None,
) -> None:
    """Run the coordinator (with the witness its configuration asks for) until SIGTERM or
    SIGINT."""
    app = start_coordinator(config, witness=witness)
    address = bound_address(config.listen, app.port)
    log.info("coordinator.serving", address=address, departments=len(config.departments))
    if ready_file is not None:
        write_ready_file(ready_file, address)
    wait_for_signal()
    log.info("coordinator.stopping")
    app.stop()
