"""The witness's composition root: build the witness, serve it, or hand it to a host.

Why: one place wires the parts of a witness together — its key (:mod:`witness.config`), its
store (:mod:`witness.store`), the cosigning decision (:mod:`witness.cosigning`) and the gRPC
WitnessService (:mod:`witness.servicer`) — in the two ways a witness runs:

- stand-alone (``childreg audit witness serve``): :func:`start_witness` / :func:`serve`
  start the mutual-TLS service the one way every childreg service starts
  (``childreg.service.start_grpc_service``);
- hosted by the coordinator (``childreg coordinator serve``): :func:`embedded_witness`
  builds a witness that the coordinator's composition root takes through its own protocol
  (``coordinator.rounds.witnessing.HostedWitness``), so neither package imports the other.

It also reads the evidence kept, for ``childreg audit witness evidence``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
import structlog
from grpc_health.v1 import health

from childreg.audit.checkpoint import parse_childreg_origin
from childreg.audit.note import NoteSigner, NoteVerifier
from childreg.errors import InvalidInput, Violation
from childreg.pki import IdentityFiles
from childreg.service import (
    bound_address,
    set_health,
    start_grpc_service,
    wait_for_signal,
    write_ready_file,
)
from childreg.v1 import audit_pb2_grpc as apb_grpc
from witness.config import WitnessConfig, WitnessedNode, load_witness_signer, trusted_nodes
from witness.cosigning import Witness
from witness.servicer import SERVICE, WitnessServicer
from witness.store import Evidence, WitnessStore

log = structlog.get_logger("childreg.witness")

SERVICES = (SERVICE,)


def build_witness(db_path: Path, signer: NoteSigner, nodes: Iterable[WitnessedNode]) -> Witness:
    """A witness over its store at ``db_path``, pinning ``nodes``' log keys."""
    return Witness(WitnessStore(db_path), signer, trusted_nodes(nodes))


@dataclass
class WitnessApp:
    """A running witness: its server, port, health and store to close on shutdown."""

    server: grpc.Server
    port: int
    health: health.HealthServicer
    witness: Witness
    store: WitnessStore

    def stop(self, grace: float = 5.0) -> None:
        """Stop serving, then close the store."""
        set_health(self.health, SERVICES, serving=False)
        self.server.stop(grace).wait()
        self.store.close()


def _check_federation(config: WitnessConfig) -> None:
    federation = IdentityFiles(config.identity_dir).spiffe_id().federation
    others = [n.origin for n in config.nodes if parse_childreg_origin(n.origin)[0] != federation]
    if others:
        raise InvalidInput(
            f"the witness's identity is of federation {federation}; these nodes are not",
            [Violation("nodes", f"origin {o} is of another federation") for o in others],
        )


def start_witness(config: WitnessConfig) -> WitnessApp:
    """Load the key, open the store, and start the mutual-TLS WitnessService."""
    _check_federation(config)
    signer = load_witness_signer(config.signing_key_file, config.name)
    store = WitnessStore(config.db_path)
    witness = Witness(store, signer, trusted_nodes(config.nodes))
    try:

        def register(server: grpc.Server) -> None:
            apb_grpc.add_WitnessServiceServicer_to_server(WitnessServicer(witness), server)

        server, port, health_servicer = start_grpc_service(
            config, register, SERVICES, state_dir=config.state_dir
        )
    except BaseException:
        store.close()
        raise
    return WitnessApp(server, port, health_servicer, witness, store)


def serve(config: WitnessConfig, ready_file: Path | None = None) -> None:
    """Run the witness until SIGTERM or SIGINT."""
    app = start_witness(config)
    address = bound_address(config.listen, app.port)
    log.info(
        "witness.serving",
        address=address,
        nodes=len(config.nodes),
        verifier_key=app.witness.verifier.key_string(),
    )
    if ready_file is not None:
        write_ready_file(ready_file, address)
    wait_for_signal()
    log.info("witness.stopping")
    app.stop()


def read_evidence(config: WitnessConfig) -> list[Evidence]:
    """The evidence a witness has kept, oldest first (its database opened read-only;
    NotFound if it has none yet)."""
    store = WitnessStore(config.db_path, readonly=True)
    try:
        return store.evidence()
    finally:
        store.close()


class EmbeddedWitness:
    """A witness hosted in another service's server: it cosigns what the host pulls from
    the nodes, serves WitnessService on the host's server for nodes that push, and closes
    its store when the host stops. Structurally a ``coordinator.rounds.witnessing.
    HostedWitness``."""

    #: The full gRPC service name, for the host's health checking.
    service_name: str = SERVICE

    def __init__(self, witness: Witness) -> None:
        self.witness = witness

    @property
    def verifier(self) -> NoteVerifier:
        """The witness's public key, for auditors and nodes to pin."""
        return self.witness.verifier

    def add_checkpoint(
        self, note: str, old_size: int, proof: Sequence[bytes], transitions: Sequence[str] = ()
    ) -> str:
        """The node's checkpoint cosigned, or a refusal (:meth:`Witness.add_checkpoint`)."""
        return self.witness.add_checkpoint(note, old_size, proof, transitions)

    def state(self, origin: str) -> str | None:
        """The latest cosigned checkpoint note held for ``origin``, if any."""
        return self.witness.state(origin)

    def evidence(self, origin: str | None = None) -> list[Evidence]:
        """Every contradiction kept, oldest first."""
        return self.witness.evidence(origin)

    def register(self, server: grpc.Server) -> None:
        """Serve WitnessService on the host's (mutual-TLS) server."""
        apb_grpc.add_WitnessServiceServicer_to_server(WitnessServicer(self.witness), server)

    def close(self) -> None:
        """Close the witness's store (the host calls it on shutdown)."""
        self.witness.close()


def embedded_witness(
    db_path: Path, signing_key_file: Path, name: str, nodes: Mapping[str, str]
) -> EmbeddedWitness:
    """The witness a host (the coordinator) runs: its key loaded from ``signing_key_file``
    (named ``name``; KeyProblem with a hint if unusable), its store at ``db_path``, and
    ``nodes`` (log origin -> the node's pinned verifier key string) the only logs it cosigns.
    """
    pinned = [WitnessedNode(origin=o, verifier_key=k) for o, k in nodes.items()]
    signer = load_witness_signer(signing_key_file, name)
    return EmbeddedWitness(build_witness(db_path, signer, pinned))
