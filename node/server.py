"""The node's composition root: build every dependency from the configuration, then serve.

This is the one place where the node's store, keyring, domain objects, servicers and gRPC
server are constructed and wired together; everything else receives them as arguments.
It is also all the command line takes from the node (tests/unit/test_architecture.py):
:func:`init_node`, :func:`serve`, :func:`make_kek_file`, :func:`open_operator` for the
commands an operator runs with the key-encryption key on the node's host, whose accesses
to a child go through the same audited service as every gRPC call, and :func:`rotate_kek`
(node/kek_rotation.py), :func:`rekey_db` (node/rekey.py) and :func:`rotate_key`
(node/key_rotation.py), which need the node stopped; :func:`backup_node` (while it serves),
:func:`verify_backup` and :func:`restore_node` (stopped; node/backup.py, node/restore.py).
Every store opened here for writing gets the change journal of ``[backup] journal_dir``
(node/journal.py) attached.
"""

from __future__ import annotations

import base64
import datetime as dt
import gc
import getpass
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import grpc
import structlog
from grpc_health.v1 import health
from nacl.signing import SigningKey

from childreg import profile
from childreg.catalogue import load_verify_key
from childreg.errors import FailedPrecondition, KeyProblem
from childreg.pki import IdentityFiles
from childreg.profile import Profile
from childreg.ratelimit import RateLimit, RateLimiter
from childreg.service import (
    bound_address,
    set_health,
    start_grpc_service,
    wait_for_signal,
    write_ready_file,
)
from childreg.v1 import audit_pb2_grpc, consent_pb2_grpc, statistics_pb2_grpc
from node.audit.actor import Actor
from node.audit.checkpointer import Checkpointer
from node.audit.log import AuditLog
from node.audit.reads import LogReads
from node.audit.report import AccessReport, LogUnverified, OperatorCommands
from node.audit.service import Audited
from node.backup import BackupSummary, make_backup
from node.backup import Progress as BackupProgress
from node.backup import verify_backup as _verify_backup
from node.config import NodeConfig
from node.consent.breakglass import BreakGlassDesk
from node.consent.desk import ConsentDesk
from node.consent.extract import ExtractDesk, Extracts, extract_verify_key
from node.consent.receipts import DepartmentReceipts
from node.console.accounts import Accounts, AccountView, Enrolment
from node.console.server import ConsoleServer, start_console
from node.crypto.keys import KekSource, Keyring, generate_key_file
from node.journal import ChangeJournal, catch_up, journal_seed
from node.kek_rotation import DataDirLock, Fault, Progress, Rotation, resolve_keyring
from node.kek_rotation import rotate_kek as _rotate_kek
from node.key_rotation import SigningRotation, rotate_signing_key, transitions_of, with_signing
from node.records.registry import Registry, RowSealer
from node.records.retention import Due, Outcome, RetentionJob, RetentionRun, Rules
from node.rekey import Rekey, rekey_database, settle_rekey
from node.restore import REPLAY, RestoreReport
from node.restore import restore_node as _restore_node
from node.rpc.audit import AuditLogServicer
from node.rpc.consent import ConsentServicer
from node.rpc.extract import ExtractServicer
from node.rpc.import_workers import ImportWorkers, default_workers
from node.rpc.records import RecordsServicer, register_records
from node.rpc.statistics import StatisticsServicer, share_body_bytes
from node.rpc.witnesses import GrpcWitnesses
from node.statistics.aggregation import AggregationDesk, roster_entry
from node.statistics.desk import StatisticsDesk
from node.store.sqlcipher import SqlCipherStore

__all__ = [
    "SERVICES",
    "AccessReport",
    "AccountView",
    "BackupSummary",
    "Enrolment",
    "LogUnverified",
    "NodeApp",
    "OperatorSession",
    "RestoreReport",
    "backup_node",
    "init_node",
    "kek_source",
    "make_kek_file",
    "open_keyring",
    "open_node",
    "open_operator",
    "rekey_db",
    "restore_node",
    "rotate_kek",
    "rotate_key",
    "serve",
    "start_node",
    "verify_backup",
]

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


def make_kek_file(out: Path) -> None:
    """Write a new random key-encryption key file (mode 0600)."""
    generate_key_file(out)


def init_node(config: NodeConfig) -> None:
    """Create a node's data directory, keyring and empty encrypted database."""
    if config.keyring_path.exists() or config.db_path.exists():
        raise FailedPrecondition(f"node already initialised in {config.data_dir}")
    node_profile(config)  # a wrong profile, region or district: refused before anything
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
    lock: DataDirLock | None = None
    retention: RetentionJob | None = None
    console: ConsoleServer | None = None  # the web console, when configured

    def stop(self, grace: float = 5.0) -> None:
        """Stop serving (finishing calls in flight for ``grace`` seconds) and close storage."""
        set_health(self.health, SERVICES, serving=False)
        if self.console is not None:
            self.console.stop()
        if self.retention is not None:
            self.retention.stop()
        self.checkpointer.stop()
        self.server.stop(grace).wait()
        if self.workers is not None:
            self.workers.close()
        close_store(self.store)
        if self.lock is not None:
            self.lock.release()


def _need_keyring(config: NodeConfig) -> None:
    """KeyProblem saying to initialise the node if it has no keyring yet."""
    if not config.keyring_path.exists():
        raise KeyProblem(
            f"no keyring in {config.data_dir}",
            hint="initialise the node first: childreg node init --config FILE",
        )


def open_keyring(config: NodeConfig, *, repair: bool = False) -> Keyring:
    """Unlock the node's keyring with the KEK (fails fast on a wrong key), settling an
    interrupted KEK rotation (files changed only with ``repair``, under the data lock)."""
    _need_keyring(config)
    source = kek_source(config)
    settled = settle_rekey(  # an interrupted database rekey first: it decides the db key
        config.keyring_path,
        config.db_path,
        source,
        repair=repair,
        audited=_audited_for(config) if repair else None,
    )
    if settled.keyring is not None:
        return settled.keyring
    return resolve_keyring(config.keyring_path, config.db_path, source, repair=repair)


def _audited_for(config: NodeConfig) -> Callable[[SqlCipherStore, Keyring], Audited]:
    """Builds the audited service over a store opened for a key operation (the caller holds
    the data lock), the change journal caught up and attached (closed with the process)."""

    def audited(store: SqlCipherStore, keyring: Keyring) -> Audited:
        federation = IdentityFiles(config.identity_dir).spiffe_id().federation
        if store.journal is None:
            attach_journal(config, store, keyring, catch=True)
        keyring = with_signing(keyring, store)
        audit = AuditLog(
            store, keyring.audit_signing_seed(), federation=federation,
            department=config.department_id,
        )  # fmt: skip
        return Audited(store, keyring, audit)

    return audited


def open_node(config: NodeConfig) -> tuple[SqlCipherStore, Keyring]:
    """Unlock the keyring with the KEK and open the encrypted store (fails fast on a wrong key),
    its change journal attached if the node has one."""
    keyring = open_keyring(config)
    store = SqlCipherStore.open(config.db_path, keyring.db_key_hex())
    try:
        attach_journal(config, store, keyring, catch=False)
        return store, with_signing(keyring, store)  # the signing keys' generations in use
    except BaseException:
        store.close()
        raise


def attach_journal(
    config: NodeConfig, store: SqlCipherStore, keyring: Keyring, *, catch: bool
) -> ChangeJournal | None:
    """Open the node's change journal (none without ``[backup] journal_dir``), bring it
    level with the store when ``catch`` (the caller holds the data lock), and attach it."""
    if config.backup.journal_dir is None:
        return None
    journal = ChangeJournal.open(
        config.backup.journal_dir, config.department_id, journal_seed(keyring)
    )
    try:
        if catch:
            catch_up(journal, store)
    except BaseException:
        journal.close()
        raise
    store.attach_journal(journal)
    return journal


def node_profile(config: NodeConfig) -> Profile:
    """The node's country profile, signed for its federation, holding its region and
    districts (InvalidInput naming the field, or PermissionDenied for a bad signature)."""
    if config.profile_file is None:  # the embedded default: no signature to check
        country = profile.embedded()
    else:
        federation = IdentityFiles(config.identity_dir).spiffe_id().federation
        authority = load_verify_key(config.statistics_authority_key)
        country = config.country_profile(authority, federation)
    config.check_units(country)
    return country


def _open_store(config: NodeConfig, keyring: Keyring) -> SqlCipherStore:
    """The serving node's store with its change journal caught up and attached."""
    store = SqlCipherStore.open(config.db_path, keyring.db_key_hex())
    try:
        attach_journal(config, store, keyring, catch=True)
        return store
    except BaseException:
        store.close()
        raise


def install_profile(config: NodeConfig) -> None:
    """Install the node's country profile; warn if its directory lacks the department
    (receipts then name it by its configured name, with no contacts)."""
    country = node_profile(config)
    profile.install(country)
    if country.department(config.department_id) is None:
        log.warning(
            "node.not_in_directory",
            department=config.department_id,
            advice="ask the statistics authority to list the department (name, address, "
            "phone, e-mail) in the country profile's directory (docs/country-profile.md)",
        )


def _retention_job(
    config: NodeConfig,
    store: SqlCipherStore,
    keyring: Keyring,
    registry: Registry,
    audited: Audited,
) -> RetentionJob | None:
    """The serving node's scheduled retention run, if its rules ask for one."""
    if not config.retention.scheduled_run:
        return None
    node_actor = Actor.machine(str(IdentityFiles(config.identity_dir).spiffe_id()))  # itself
    return RetentionJob(
        RetentionRun(
            store, keyring, registry, audited, rules=retention_rules(config), actor=node_actor
        ),
        config.retention.run_every_hours * 3600,
    )


def start_node(config: NodeConfig) -> NodeApp:
    """Install the country profile, open storage and start the mutual-TLS gRPC server."""
    install_profile(config)
    lock, keyring, workers, store = _open_storage(config)
    try:
        keyring = with_signing(keyring, store)  # the signing keys' generations in use
        registry = Registry(store, keyring, districts=config.districts)
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
                encode_share=share_body_bytes,
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
            GrpcWitnesses(IdentityFiles(config.identity_dir)),
            config.witnesses,
            config.audit_checkpoint_seconds,
        )
        # Extracts fail closed: none while no witness has cosigned the log recently.
        extracts = ExtractDesk(
            store,
            keyring,
            origin=audit.origin,
            transitions=transitions_of(store, "extract"),
            guard=lambda: checkpointer.require_recent_witness(config.witness_max_age_seconds),
        )

        consents = ConsentDesk(store, keyring, federation)

        def register(server: grpc.Server) -> None:
            receipts = DepartmentReceipts(config.department_id, config.name)
            register_records(RecordsServicer(registry, audited, workers, receipts), server)
            statistics_pb2_grpc.add_StatisticsServiceServicer_to_server(
                StatisticsServicer(desk, audited, aggregation), server
            )
            audit_pb2_grpc.add_AuditLogServiceServicer_to_server(
                AuditLogServicer(LogReads(audited)), server
            )
            consent_pb2_grpc.add_ConsentServiceServicer_to_server(
                ConsentServicer(
                    consents,
                    audited,
                    BreakGlassDesk(store, keyring, registry),
                    receipts,
                ),
                server,
            )
            consent_pb2_grpc.add_ExtractServiceServicer_to_server(
                ExtractServicer(
                    Extracts(extracts, audited),
                    limiter=RateLimiter(
                        RateLimit(config.extract_rate_per_second, config.extract_rate_burst)
                    ),
                ),
                server,
            )

        retention = _retention_job(config, store, keyring, registry, audited)

        server, port, health_servicer = start_grpc_service(
            config,
            register,
            SERVICES,
            department=config.department_id,
            # The hook gives (method, presented identity, status); the leaf's actor is the
            # identity and its purpose the method.
            on_denied=lambda method, peer, status: audited.denied(peer, method, status),
            state_dir=config.data_dir,
        )
    except BaseException:
        close_store(store)
        if workers is not None:
            workers.close()
        lock.release()
        raise
    console = None
    if config.console is not None:
        try:
            console = start_console(
                config, store=store, keyring=keyring, registry=registry, consents=consents,
                audited=audited, desk=desk, witnessed=checkpointer.last_witnessed,
            )  # fmt: skip
        except BaseException:
            _unwind(server, store, workers, lock)
            raise
    checkpointer.start()
    if retention is not None:
        retention.start()
    # Everything made while starting lives as long as the node: keep it out of the cyclic
    # garbage collector's full passes, which otherwise stall requests for milliseconds.
    gc.collect()  # start-up's garbage first, so none of it is kept for good
    gc.freeze()
    return NodeApp(
        server,
        port,
        store,
        health_servicer,
        audit,
        checkpointer,
        workers,
        lock,
        retention,
        console,
    )


def _open_storage(
    config: NodeConfig,
) -> tuple[DataDirLock, Keyring, ImportWorkers | None, SqlCipherStore]:
    """The data directory's lock, the keyring, the import workers and the open store with
    its change journal caught up and attached (closed by :func:`close_store`); nothing held
    if any of them fails."""
    lock = DataDirLock(config.data_dir).acquire()  # no KEK rotation while the node serves
    try:
        keyring = open_keyring(config, repair=True)
        # Forked before the database is opened and before gRPC starts any thread.
        workers = ImportWorkers.start(
            RowSealer(keyring),
            default_workers() if config.import_workers is None else config.import_workers,
        )
    except BaseException:
        lock.release()
        raise
    try:
        store = _open_store(config, keyring)
    except BaseException:
        if workers is not None:
            workers.close()
        lock.release()
        raise
    return lock, keyring, workers, store


def _unwind(
    server: grpc.Server, store: SqlCipherStore, workers: ImportWorkers | None, lock: DataDirLock
) -> None:
    """Undo a start that failed after the gRPC server started."""
    server.stop(0)
    close_store(store)
    if workers is not None:
        workers.close()
    lock.release()


class OperatorSession:
    """The node opened with its KEK for an operator's commands on the node's host.

    :meth:`access_report` and :meth:`pseudonym` touch a child and leave one leaf each,
    named after the operator (node/audit/report.py), and so does each erasure of
    :meth:`retention_apply` (node/records/retention.py); the key commands read only public
    keys derived from the keyring and leave none. Close it (or use it as a context
    manager) to close the store.
    """

    def __init__(self, config: NodeConfig, login: str | None = None) -> None:
        actor = Actor.operator(config.department_id, login or getpass.getuser())
        self._rules = retention_rules(config)
        self._federation = IdentityFiles(config.identity_dir).spiffe_id().federation
        self._department = config.department_id
        self._store, self._keyring = open_node(config)
        try:
            self._audit = AuditLog(
                self._store,
                self._keyring.audit_signing_seed(),
                federation=self._federation,
                department=self._department,
            )
            audited = Audited(self._store, self._keyring, self._audit)
            self._commands = OperatorCommands(audited, self._keyring, actor)
            self._retention = RetentionRun(
                self._store,
                self._keyring,
                Registry(self._store, self._keyring, districts=config.districts),
                audited,
                rules=self._rules,
                actor=actor,
            )
            self._accounts = Accounts(
                self._store, audited, self._department, issuer=f"childreg {self._department}"
            )
        except BaseException:
            self._store.close()
            raise

    @property
    def actor(self) -> str:
        """The operator as the leaves name them."""
        return self._commands.actor.name

    def access_report(self, child_id: str) -> AccessReport:
        """A guardian's access report (LogUnverified, and no leaf, if the log fails)."""
        return self._commands.access_report(child_id)

    def pseudonym(self, child_id: str) -> str:
        """The child's keyed pseudonym in the audit log, hex."""
        return self._commands.pseudonym(child_id)

    def retention_review(self, today: dt.date) -> list[Due]:
        """What the retention rules make due on ``today`` (one review leaf; nothing erased).
        FailedPrecondition if no rule is configured."""
        self._need_rules()
        return self._retention.review(today)

    def retention_apply(
        self, today: dt.date, progress: Callable[[int, int], None] | None = None
    ) -> Outcome:
        """Erase every child due on ``today``, one ``child.erase`` leaf each naming the
        operator. FailedPrecondition if no rule is configured."""
        self._need_rules()
        return self._retention.apply(today, progress)

    def _need_rules(self) -> None:
        if not self._rules.any:
            raise FailedPrecondition(
                "no retention rule is configured: set erase_years_after_closed or "
                "erase_at_age under [retention] in the node's configuration"
            )

    def audit_key(self) -> tuple[str, str]:
        """The log's origin and the verifier key auditors and witnesses pin."""
        return self._audit.origin, self._audit.verifier_key

    def extract_key(self) -> str:
        """The public key that signs this node's extracts (base64)."""
        return base64.b64encode(extract_verify_key(self._keyring)).decode()

    def roster_entry(self) -> dict[str, str]:
        """This department's secure-aggregation roster entry (public keys only)."""
        return roster_entry(self._keyring, federation=self._federation, department=self._department)

    def add_user(
        self, login: str, role: str, language: str = "en", password: str | None = None
    ) -> Enrolment:
        """A new web-console account (one ``console.account`` leaf naming the operator);
        a password is made when none is given."""
        return self._accounts.add(self._commands.actor, login, role, language, password)

    def reset_user(self, login: str, password: str | None = None) -> Enrolment:
        """A new password and TOTP secret for a console account, unlocked and enabled."""
        return self._accounts.reset(self._commands.actor, login, password)

    def disable_user(self, login: str) -> None:
        """A console account can no longer sign in (a serving node ends its sessions at the
        account's next request)."""
        self._accounts.disable(self._commands.actor, login)

    def list_users(self) -> list[AccountView]:
        """Every console account of this node."""
        return self._accounts.list(self._commands.actor)

    def close(self) -> None:
        """Close the store (and its journal)."""
        close_store(self._store)

    def __enter__(self) -> OperatorSession:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def open_operator(config: NodeConfig, login: str | None = None) -> OperatorSession:
    """Open the node with its KEK for an operator's commands; ``login`` defaults to the
    host account's (getpass.getuser()), validated like every actor."""
    return OperatorSession(config, login)


def rotate_kek(
    config: NodeConfig,
    new_kek_file: Path,
    login: str | None = None,
    *,
    progress: Progress | None = None,
    fault: Fault | None = None,
) -> Rotation:
    """Rewrap the node's keyring and every child key under the KEK in ``new_kek_file``
    (node stopped).

    FailedPrecondition while the node serves; one ``keys.rotate`` leaf naming the
    operator (``login`` defaults to the host account's). Afterwards point the node's
    configuration at the new KEK: the old one opens nothing.
    """
    actor = Actor.operator(config.department_id, login or getpass.getuser())
    _need_keyring(config)
    audited = _audited_for(config)
    with DataDirLock(config.data_dir):
        settle_rekey(
            config.keyring_path, config.db_path, kek_source(config), repair=True, audited=audited
        )
        return _rotate_kek(
            config.keyring_path,
            config.db_path,
            kek_source(config),
            KekSource.from_key_file(new_kek_file),
            audited=audited,
            actor=actor,
            progress=progress,
            fault=fault,
        )


def rekey_db(config: NodeConfig, login: str | None = None, *, fault: Fault | None = None) -> Rekey:
    """Give the node's database a new random SQLCipher key (node stopped; node/rekey.py).

    FailedPrecondition while the node serves; one ``keys.rekey_db`` leaf naming the
    operator. Afterwards no earlier ``keyring.json`` (a backup's) opens the database.
    """
    actor = Actor.operator(config.department_id, login or getpass.getuser())
    _need_keyring(config)
    with DataDirLock(config.data_dir):
        return rekey_database(
            config.keyring_path,
            config.db_path,
            kek_source(config),
            audited=_audited_for(config),
            actor=actor,
            fault=fault,
        )


def rotate_key(config: NodeConfig, which: str, login: str | None = None) -> SigningRotation:
    """Replace the node's ``which`` signing key (audit, extract or upload) by its next
    generation, announced by a statement signed by the old and the new key (node stopped;
    node/key_rotation.py). One ``keys.rotate_signing`` leaf naming the operator."""
    actor = Actor.operator(config.department_id, login or getpass.getuser())
    federation = IdentityFiles(config.identity_dir).spiffe_id().federation
    with DataDirLock(config.data_dir):
        store, keyring = open_node_repaired(config)
        try:
            return rotate_signing_key(
                store,
                keyring,
                which,
                federation=federation,
                department=config.department_id,
                actor=actor,
            )
        finally:
            close_store(store)


def open_node_repaired(config: NodeConfig) -> tuple[SqlCipherStore, Keyring]:
    """Like :func:`open_node`, settling an interrupted key operation (caller holds the lock);
    the change journal is caught up and attached (closed by :func:`close_store`)."""
    keyring = open_keyring(config, repair=True)
    store = SqlCipherStore.open(config.db_path, keyring.db_key_hex())
    try:
        attach_journal(config, store, keyring, catch=True)
    except BaseException:
        store.close()
        raise
    return store, keyring


def close_store(store: SqlCipherStore) -> None:
    """Close ``store`` and the change journal attached to it, if any."""
    try:
        store.close()
    finally:
        if isinstance(store.journal, ChangeJournal):
            store.journal.close()


def retention_rules(config: NodeConfig) -> Rules:
    """The retention rules of the node's configuration."""
    return Rules(config.retention.erase_years_after_closed, config.retention.erase_at_age)


def serve(config: NodeConfig, ready_file: Path | None = None) -> None:
    """Run the node until SIGTERM or SIGINT."""
    app = start_node(config)
    address = bound_address(config.listen, app.port)
    console = app.console.address if app.console is not None else None
    log.info("node.serving", department=config.department_id, address=address, console=console)
    if ready_file is not None:
        write_ready_file(ready_file, address, console=console)
    wait_for_signal()
    log.info("node.stopping", department=config.department_id)
    app.stop()


def backup_node(
    config: NodeConfig, out: Path, *, progress: BackupProgress | None = None
) -> BackupSummary:
    """Back up the node into the new directory ``out`` while it serves (node/backup.py)."""
    federation = IdentityFiles(config.identity_dir).spiffe_id().federation
    return make_backup(
        config.data_dir,
        kek_source(config),
        out,
        federation=federation,
        department=config.department_id,
        progress=progress,
    )


def _source(config: NodeConfig, kek_file: Path | None) -> KekSource:
    return kek_source(config) if kek_file is None else KekSource.from_key_file(kek_file)


def verify_backup(
    config: NodeConfig,
    backup: Path,
    *,
    kek_file: Path | None = None,
    progress: BackupProgress | None = None,
) -> BackupSummary:
    """Check a backup with the node's KEK (or ``kek_file``, the KEK it was made with)."""
    return _verify_backup(backup, _source(config, kek_file), progress=progress)


def restore_node(
    config: NodeConfig,
    backup: Path,
    login: str | None = None,
    *,
    kek_file: Path | None = None,
    without_journal: bool = False,
    progress: BackupProgress | None = None,
) -> RestoreReport:
    """Restore the stopped node from ``backup`` and its change journal (node/restore.py):
    FailedPrecondition while it serves or when its data directory holds a node."""
    actor = Actor.operator(config.department_id, login or getpass.getuser())
    federation = IdentityFiles(config.identity_dir).spiffe_id().federation
    config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with DataDirLock(config.data_dir):
        return _restore_node(
            backup,
            config.data_dir,
            _source(config, kek_file),
            federation=federation,
            department=config.department_id,
            actor=actor,
            journal_dir=config.backup.journal_dir,
            without_journal=without_journal,
            witness_client=GrpcWitnesses(IdentityFiles(config.identity_dir)),
            witnesses=config.witnesses,
            replay=dict(REPLAY),
            progress=progress,
        )
