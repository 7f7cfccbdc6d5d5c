"""The node's composition root: build every dependency from the configuration, then serve.

This is the one place where the node's store, keyring, domain objects, servicers and gRPC
server are constructed and wired together; everything else receives them as arguments.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from pathlib import Path

import grpc
import structlog
from grpc_health.v1 import health
from nacl.signing import SigningKey

from childreg.catalogue import load_verify_key
from childreg.errors import FailedPrecondition, KeyProblem
from childreg.pki import IdentityFiles
from childreg.ratelimit import RateLimit, RateLimiter
from childreg.service import (
    bound_address,
    set_health,
    start_grpc_service,
    wait_for_signal,
    write_ready_file,
)
from childreg.v1 import audit_pb2_grpc, consent_pb2_grpc, statistics_pb2_grpc
from node.audit.checkpointer import Checkpointer
from node.audit.log import AuditLog
from node.audit.service import Audited
from node.config import NodeConfig
from node.consent.breakglass import BreakGlassDesk
from node.consent.desk import ConsentDesk
from node.consent.extract import ExtractDesk
from node.crypto.keys import KekSource, Keyring
from node.records.registry import Registry, RowSealer
from node.rpc.audit import AuditLogServicer
from node.rpc.consent import ConsentServicer
from node.rpc.extract import ExtractServicer
from node.rpc.import_workers import ImportWorkers, default_workers
from node.rpc.records import RecordsServicer, register_records
from node.rpc.statistics import StatisticsServicer
from node.statistics.aggregation import AggregationDesk
from node.statistics.desk import StatisticsDesk
from node.store.sqlcipher import SqlCipherStore

log = structlog.get_logger("childreg.node")

SERVICES = (
    "childreg.v1.RecordsService",
    "childreg.v1.StatisticsService",
    "childreg.v1.AuditLogService",
    "childreg.v1.ConsentService",
    "childreg.v1.ExtractService",
)


def kek_source(config: NodeConfig) -> KekSource:
    """Where the key-encryption key comes from; KeyProblem if it is not available."""
    if config.kek_file is not None:
        return KekSource.from_key_file(config.kek_file)
    env = config.kek_passphrase_env or ""
    passphrase = os.environ.get(env, "")
    if not passphrase:
        raise KeyProblem(
            f"the key-encryption passphrase is not set (environment variable {env} is empty)",
            hint=f"export {env} before starting the node; it never falls back to plaintext",
        )
    return KekSource.from_passphrase(passphrase)


def init_node(config: NodeConfig) -> None:
    """Create a node's data directory, keyring and empty encrypted database."""
    if config.keyring_path.exists() or config.db_path.exists():
        raise FailedPrecondition(f"node already initialised in {config.data_dir}")
    source = kek_source(config)
    config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    keyring = Keyring.create(config.keyring_path, source)
    SqlCipherStore.open(config.db_path, keyring.db_key_hex(), create=True).close()


@dataclass
class NodeApp:
    """A running node: its server, port and the store to close on shutdown."""

    server: grpc.Server
    port: int
    store: SqlCipherStore
    health: health.HealthServicer
    audit: AuditLog
    checkpointer: Checkpointer
    workers: ImportWorkers | None = None

    def stop(self, grace: float = 5.0) -> None:
        """Stop serving (finishing calls in flight for ``grace`` seconds) and close storage."""
        set_health(self.health, SERVICES, serving=False)
        self.checkpointer.stop()
        self.server.stop(grace).wait()
        if self.workers is not None:
            self.workers.close()
        self.store.close()


def open_keyring(config: NodeConfig) -> Keyring:
    """Unlock the node's keyring with the KEK (fails fast on a wrong key)."""
    if not config.keyring_path.exists():
        raise KeyProblem(
            f"no keyring in {config.data_dir}",
            hint="initialise the node first: childreg node init --config FILE",
        )
    return Keyring.open(config.keyring_path, kek_source(config))


def open_node(config: NodeConfig) -> tuple[SqlCipherStore, Keyring]:
    """Unlock the keyring with the KEK and open the encrypted store (fails fast on a wrong key)."""
    keyring = open_keyring(config)
    store = SqlCipherStore.open(config.db_path, keyring.db_key_hex())
    return store, keyring


def start_node(config: NodeConfig) -> NodeApp:
    """Open storage and start the mutual-TLS gRPC server."""
    keyring = open_keyring(config)
    # Forked before the database is opened and before gRPC starts any thread.
    workers = ImportWorkers.start(
        RowSealer(keyring),
        default_workers() if config.import_workers is None else config.import_workers,
    )
    try:
        store = SqlCipherStore.open(config.db_path, keyring.db_key_hex())
    except BaseException:
        if workers is not None:
            workers.close()
        raise
    try:
        registry = Registry(store, keyring)
        federation = IdentityFiles(config.identity_dir).spiffe_id().federation
        authority = load_verify_key(config.statistics_authority_key)
        desk = StatisticsDesk(
            store,
            keyring.noise_secret(),
            authority,
            federation=federation,
            max_snapshot_rho=config.max_snapshot_rho,
        )
        aggregation = (
            AggregationDesk(
                desk,
                store,
                keyring.masking_key(),
                SigningKey(keyring.upload_signing_seed()),
                department=config.department_id,
                federation=federation,
                authority=authority,
            )
            if config.aggregation == "secure"
            else None
        )

        audit = AuditLog(
            store,
            keyring.audit_signing_seed(),
            federation=federation,
            department=config.department_id,
        )
        audited = Audited(store, keyring, audit)
        checkpointer = Checkpointer(
            audit,
            IdentityFiles(config.identity_dir),
            config.witnesses,
            config.audit_checkpoint_seconds,
        )
        # Extracts fail closed: none while no witness has cosigned the log recently.
        extracts = ExtractDesk(
            store,
            keyring,
            origin=audit.origin,
            guard=lambda: checkpointer.require_recent_witness(config.witness_max_age_seconds),
        )

        def register(server: grpc.Server) -> None:
            register_records(RecordsServicer(registry, audited, workers), server)
            statistics_pb2_grpc.add_StatisticsServiceServicer_to_server(
                StatisticsServicer(desk, audited, aggregation), server
            )
            audit_pb2_grpc.add_AuditLogServiceServicer_to_server(AuditLogServicer(audit), server)
            consent_pb2_grpc.add_ConsentServiceServicer_to_server(
                ConsentServicer(
                    ConsentDesk(store, keyring, federation),
                    audited,
                    BreakGlassDesk(store, keyring, registry),
                ),
                server,
            )
            consent_pb2_grpc.add_ExtractServiceServicer_to_server(
                ExtractServicer(
                    extracts,
                    audit,
                    keyring,
                    limiter=RateLimiter(
                        RateLimit(config.extract_rate_per_second, config.extract_rate_burst)
                    ),
                ),
                server,
            )

        def on_denied(method: str, peer: str, status: str) -> None:
            audit.append(actor=peer, action="denied", purpose=method, outcome=status)

        server, port, health_servicer = start_grpc_service(
            config, register, SERVICES, department=config.department_id, on_denied=on_denied
        )
    except BaseException:
        store.close()
        if workers is not None:
            workers.close()
        raise
    checkpointer.start()
    # Everything made while starting lives as long as the node: keep it out of the cyclic
    # garbage collector's full passes, which otherwise stall requests for milliseconds.
    gc.collect()  # start-up's garbage first, so none of it is kept for good
    gc.freeze()
    return NodeApp(server, port, store, health_servicer, audit, checkpointer, workers)


def serve(config: NodeConfig, ready_file: Path | None = None) -> None:
    """Run the node until SIGTERM or SIGINT."""
    app = start_node(config)
    address = bound_address(config.listen, app.port)
    log.info("node.serving", department=config.department_id, address=address)
    if ready_file is not None:
        write_ready_file(ready_file, address)
    wait_for_signal()
    log.info("node.stopping", department=config.department_id)
    app.stop()
