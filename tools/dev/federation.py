"""A whole federation on loopback: a private CA, node processes, a coordinator process.

Used by ``childreg demo``, ``childreg bench`` and the end-to-end tests, so all three run
the real thing: each party is a separate ``serve`` process with its own configuration,
data directory, key-encryption key and certificate, on a port the OS chose, speaking
mutual TLS. Nothing here is a mock.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import tomli_w

from childreg.audit.checkpoint import childreg_origin
from childreg.catalogue import (
    Catalogue,
    generate_authority_key,
    load_signing_key,
    parse_catalogue,
    sign_catalogue,
)
from childreg.errors import Unavailable
from childreg.pki import CertificateAuthority
from childreg.profile import Profile, active, sign_profile
from childreg.revocation import DENYLIST_FILE
from childreg.secagg.roster import MIN_PARTICIPANTS, parse_roster, sign_roster
from childreg.v1 import audit_pb2 as apb
from childreg.v1 import audit_pb2_grpc as apb_grpc
from node.audit.log import node_signer
from node.config import NodeConfig
from node.crypto.keys import KekSource, Keyring, generate_key_file
from node.server import init_node
from node.statistics.aggregation import roster_entry
from tools.clients.client import Endpoint
from tools.dev.directory import with_directory
from tools.dev.synth import DepartmentPlan
from witness.config import generate_witness_key

Say = Callable[[str], None]

FEDERATION = "demo.childreg"
STARTUP_SECONDS = 90.0
STATISTICIAN = "demo-statistician"
WITNESS_NAME = "witness.demo"
COORDINATOR_WITNESS = "witness.coordinator"
#: How often the coordinator witnesses the logs in a local federation (seconds).
WITNESS_INTERVAL = 0.5

#: The starting catalogue (docs/design/privacy.md "Starting parameters"): 8 tables of ρ = 1/32 each,
#: σ = 4 per department and cell, a snapshot cap of ρ = 1/4 (ε ≈ 4.4 at δ = 1e-9).
#: deploy/config/catalogue.toml is the same catalogue as a file (a test keeps them equal).
DEFAULT_TABLES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("education_form", "Children by form of education", ("education_form",)),
    ("education_form_by_sex", "Children by form of education and sex", ("education_form", "sex")),
    (
        "education_form_by_age_band",
        "Children by form of education and age band",
        ("education_form", "age_band"),
    ),
    (
        "education_form_by_care_setting",
        "Children by form of education and care setting",
        ("education_form", "care_setting"),
    ),
    (
        "education_form_by_impairment_band",
        "Children by form of education and degree of health impairment",
        ("education_form", "impairment_band"),
    ),
    ("sex_by_age_band", "Children by sex and age band", ("sex", "age_band")),
    (
        "care_setting_by_age_band",
        "Children by care setting and age band",
        ("care_setting", "age_band"),
    ),
    (
        "impairment_band_by_sex",
        "Children by degree of health impairment and sex",
        ("impairment_band", "sex"),
    ),
)


def default_catalogue(
    federation: str = FEDERATION, version: int = 1, snapshot_rho: str = "1/4"
) -> Catalogue:
    """The starting catalogue for ``federation`` (``snapshot_rho`` other than 1/4: benches)."""
    return parse_catalogue(
        {
            "federation": federation,
            "version": version,
            "snapshot_rho": snapshot_rho,
            "delta": 1e-9,
            "display_threshold": 10,
            "tables": [
                {"id": i, "title": t, "dimensions": list(d), "rho": "1/32"}
                for i, t, d in DEFAULT_TABLES
            ],
        }
    )


def dns_label(ident: str) -> str:
    """A department id as a DNS label (DNS names may not hold underscores)."""
    return ident.replace("_", "-")


@dataclass
class Party:
    """One running service process and how to reach it."""

    name: str
    config: Path
    log: Path
    server_name: str
    ready_file: Path
    proc: subprocess.Popen[bytes] | None = None
    address: str = ""


@dataclass
class LocalFederation:
    """Lay out, start and stop a federation under ``root``."""

    root: Path
    departments: list[DepartmentPlan]
    federation: str = FEDERATION
    say: Say = field(default=lambda _msg: None)
    #: Extra environment for every service process (e.g. TMPDIR in tests).
    env: dict[str, str] = field(default_factory=dict)
    nodes: dict[str, Party] = field(default_factory=dict)
    coordinator: Party | None = None
    #: The catalogue to sign at set-up (the default one when None).
    catalogue: Catalogue | None = None
    #: The country profile to sign at set-up (the process's active one when None).
    profile: Profile | None = None
    #: Every node's own ceiling on a snapshot's budget (benchmarks raise it to re-measure).
    max_snapshot_rho: str = "1/4"
    #: Extra settings for every node's configuration (e.g. audit_checkpoint_seconds).
    node_settings: dict[str, Any] = field(default_factory=dict)
    #: Run an independent audit witness that every node gives its checkpoints to.
    witness: bool = False
    witness_party: Party | None = None
    witness_key: str = ""  # the witness's note verifier key string, once made
    #: "secure" (stage 2: masked shares, docs/secure-aggregation.md) or "per-department"
    #: (stage 1). None: secure when there are at least 3 departments (a secure round needs
    #: 3), per-department otherwise.
    aggregation: str | None = None
    #: The roster's c: departments each secure round assumes may collude.
    colluders: int = 1
    #: Schools the signed profile's directory names (each after the first department's
    #: first district), so their receipts name them; other schools show their id.
    schools: tuple[str, ...] = ("demo-school",)

    # ----- layout ---------------------------------------------------------------------
    def identity(self, name: str) -> Path:
        """The identity directory of a party ('coordinator', 'statistician', 'node-<id>', …)."""
        return self.root / "identities" / name

    @property
    def authority_dir(self) -> Path:
        """The statistics authority's key pair (kept apart from every service)."""
        return self.root / "authority"

    @property
    def catalogue_file(self) -> Path:
        """The signed catalogue every party uses."""
        return self.root / "catalogue.signed.json"

    @property
    def profile_file(self) -> Path:
        """The signed country profile every node and the coordinator use."""
        return self.root / "profile.signed.json"

    @property
    def mechanism(self) -> str:
        """The aggregation every party of this federation is configured with."""
        if self.aggregation is not None:
            return self.aggregation
        return "secure" if len(self.departments) >= MIN_PARTICIPANTS else "per-department"

    @property
    def roster_file(self) -> Path:
        """The signed secure-aggregation roster the coordinator sends with every round."""
        return self.root / "roster.signed.json"

    def node_keyring(self, dept: str) -> tuple[NodeConfig, Keyring]:
        """A node's configuration and unlocked keyring (for keys derived from it)."""
        config = NodeConfig.model_validate(tomllib.loads(self.nodes[dept].config.read_text()))
        assert config.kek_file is not None
        return config, Keyring.open(config.keyring_path, KekSource.from_key_file(config.kek_file))

    def sign_roster(self, departments: Sequence[str] | None = None, version: int = 1) -> None:
        """Sign the roster of ``departments`` (default: all) with the authority's key."""
        members = [
            roster_entry(self.node_keyring(d)[1], federation=self.federation, department=d)
            for d in (departments or list(self.nodes))
        ]
        roster = parse_roster(
            {
                "federation": self.federation,
                "version": version,
                # A local federation's one membership for every snapshot it may be asked.
                "first_snapshot": "2000/01",
                "last_snapshot": "2049/50",
                "colluders": self.colluders,
                "members": members,
            }
        )
        key = load_signing_key(self.authority_dir / "authority.key")
        self.roster_file.write_bytes(sign_roster(roster, key))

    def sign_catalogue(self, catalogue: Catalogue) -> None:
        """Sign ``catalogue`` with the authority's key and install it for the coordinator."""
        key = load_signing_key(self.authority_dir / "authority.key")
        self.catalogue_file.write_bytes(sign_catalogue(catalogue, key))

    def issue_statistician(self, ident: str) -> Path:
        """Issue another statistician's identity; returns its directory."""
        return self.issue_identity("statistician", ident)

    def issue_identity(self, role: str, ident: str) -> Path:
        """Issue an identity of ``role`` (a school, another statistician…); its directory."""
        ca = CertificateAuthority.load(self.root / "ca")
        ca.issue(role, ident, self.identity(f"{role}-{ident}"))
        return self.identity(f"{role}-{ident}")

    def setup(self) -> None:
        """Make the CA, the statistics authority and catalogue, identities, keys, nodes."""
        self.say(f"making a private CA for {self.federation}")
        ca = CertificateAuthority.create(self.federation, self.root / "ca")
        generate_authority_key(self.authority_dir)
        self.sign_catalogue(self.catalogue or default_catalogue(self.federation))
        self.say("signed the table catalogue with a new statistics-authority key")
        country = (self.profile or active()).for_federation(self.federation)
        if not country.directory.departments and self.departments:
            home = self.departments[0].districts[0]
            country = with_directory(
                country,
                [(plan.id, plan.region) for plan in self.departments],
                [(school, home) for school in self.schools],
            )
        key = load_signing_key(self.authority_dir / "authority.key")
        self.profile_file.write_bytes(sign_profile(country, key))
        self.say(f"signed the country profile ({country.country}) with the same key")
        loopback = {"dns_names": ("localhost",), "ip_addresses": ("127.0.0.1",)}
        coord_name = f"coordinator.{self.federation}"
        ca.issue(
            "coordinator",
            "national",
            self.identity("coordinator"),
            dns_names=(coord_name, "localhost"),
            ip_addresses=("127.0.0.1",),
        )
        ca.issue("statistician", STATISTICIAN, self.identity("statistician"))
        ca.issue("auditor", "demo-auditor", self.identity("auditor"))
        for plan in self.departments:
            server_name = f"{dns_label(plan.id)}.node.{self.federation}"
            ca.issue(
                "node",
                plan.id,
                self.identity(f"node-{plan.id}"),
                dns_names=(server_name, *loopback["dns_names"]),
                ip_addresses=loopback["ip_addresses"],
            )
            ca.issue("department-staff", f"{plan.id}.registrar", self.identity(f"staff-{plan.id}"))
            self.nodes[plan.id] = self._layout_node(plan, server_name)
        self.say(f"initialised {len(self.departments)} encrypted node stores")
        if self.mechanism == "secure":
            self.sign_roster()
            self.say(
                f"signed the secure-aggregation roster: {len(self.nodes)} departments, "
                f"{self.colluders} assumed colluding"
            )
        elif self.aggregation is None:
            self.say(
                f"{len(self.nodes)} department(s): per-department aggregation (stage 1), "
                f"since a secure-aggregation round needs at least {MIN_PARTICIPANTS}"
            )
        if self.witness:
            self._layout_witness(ca)

    def _layout_node(self, plan: DepartmentPlan, server_name: str) -> Party:
        home = self.root / "nodes" / plan.id
        home.mkdir(parents=True, exist_ok=True)
        kek = self.root / "secrets" / f"{plan.id}.kek"  # off the node's data directory
        kek.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        generate_key_file(kek)
        config = home / "node.toml"
        data = {
            "department_id": plan.id,
            "name": plan.name,
            "region": plan.region,
            "districts": list(plan.districts),
            "data_dir": str(home / "data"),
            "listen": "127.0.0.1:0",
            "identity_dir": str(self.identity(f"node-{plan.id}")),
            "denylist_file": str(self.root / "ca" / DENYLIST_FILE),
            "kek_file": str(kek),
            "statistics_authority_key": str(self.authority_dir / "authority.pub"),
            "profile_file": str(self.profile_file),
            "max_snapshot_rho": self.max_snapshot_rho,
            "aggregation": self.mechanism,
            "max_workers": 4,
            **self.node_settings,
        }
        config.write_bytes(tomli_w.dumps(data).encode())
        init_node(NodeConfig.model_validate(data))
        return Party(plan.id, config, home / "node.log", server_name, home / "ready.json")

    def audit_verifier_key(self, dept: str) -> str:
        """A node's audit-log verifier key string (derived from its keyring)."""
        _, keyring = self.node_keyring(dept)
        signer = node_signer(
            keyring.audit_signing_seed(), federation=self.federation, department=dept
        )
        return signer.verifier().key_string()

    def _layout_witness(self, ca: CertificateAuthority) -> None:
        home = self.root / "witness"
        home.mkdir(parents=True, exist_ok=True)
        server_name = f"witness.{self.federation}"
        ca.issue("witness", "demo-witness", self.identity("witness"),
                 dns_names=(server_name, "localhost"), ip_addresses=("127.0.0.1",))  # fmt: skip
        self.witness_key = generate_witness_key(home / "witness.key", WITNESS_NAME)
        data = {
            "name": WITNESS_NAME,
            "signing_key_file": str(home / "witness.key"),
            "state_dir": str(home / "state"),
            "listen": "127.0.0.1:0",
            "identity_dir": str(self.identity("witness")),
            "denylist_file": str(self.root / "ca" / DENYLIST_FILE),
            "statistics_authority_key": str(self.authority_dir / "authority.pub"),
            "nodes": [
                {
                    "origin": childreg_origin(self.federation, p.id),
                    "verifier_key": self.audit_verifier_key(p.id),
                }
                for p in self.departments
            ],
        }
        config = home / "witness.toml"
        config.write_bytes(tomli_w.dumps(data).encode())
        self.witness_party = Party("witness", config, home / "witness.log", server_name,
                                   home / "ready.json")  # fmt: skip

    def _start_witness(self) -> None:
        """Start the witness and point every node's configuration at it."""
        party = self.witness_party
        assert party is not None
        if party.proc is None or party.proc.poll() is not None:
            self.say("starting the audit witness")
            self._launch(party, "audit", "witness")
            self._await_ready(party)
        entry = {"name": WITNESS_NAME, "address": party.address,
                 "server_name": party.server_name, "verifier_key": self.witness_key}  # fmt: skip
        for node in self.nodes.values():
            data = tomllib.loads(node.config.read_text())
            data["witnesses"] = [entry]
            node.config.write_bytes(tomli_w.dumps(data).encode())

    def wait_witnessed(self, dept: str, timeout: float = 60.0) -> None:
        """Wait until the witness holds a checkpoint of ``dept``'s log (extracts need one)."""
        party = self.witness_party
        assert party is not None, "this federation runs no witness"
        origin = childreg_origin(self.federation, dept)
        endpoint = Endpoint(party.address, self.identity("auditor"), party.server_name, 10)
        deadline = time.monotonic() + timeout
        with endpoint.channel() as channel:
            stub = apb_grpc.WitnessServiceStub(channel)
            while time.monotonic() < deadline:
                state = stub.GetState(apb.WitnessStateRequest(origin=origin), timeout=10)
                if state.note:
                    time.sleep(0.5)  # the node hears the cosignature just after the witness
                    return
                time.sleep(0.1)
        raise Unavailable(f"the witness holds no checkpoint of {dept} after {timeout:.0f} s")

    # ----- processes ------------------------------------------------------------------
    def start_nodes(self) -> None:
        """Start every node's serve process (after the witness, if any) and wait for each."""
        if self.witness_party is not None:
            self._start_witness()
        self.say(f"starting {len(self.nodes)} node processes")
        for party in self.nodes.values():
            self._launch(party, "node")
        for party in self.nodes.values():
            self._await_ready(party)

    def start_coordinator(
        self,
        deadline_seconds: float = 10.0,
        only: Sequence[str] | None = None,
        statisticians: dict[str, str] | None = None,
        state: str = "state",
        settings: dict[str, Any] | None = None,
    ) -> None:
        """Write the coordinator's configuration from the running nodes, start it, wait.

        ``only`` limits the federation the coordinator knows to those department ids;
        ``statisticians`` maps ids to sub-budgets (default: the demo statistician, 1/4);
        ``state`` names the release store's directory under the coordinator's home;
        ``settings`` adds or overrides configuration keys (e.g. settle_seconds).
        """
        plans = [p for p in self.departments if only is None or p.id in only]
        home = self.root / "coordinator"
        home.mkdir(parents=True, exist_ok=True)
        config = home / "coordinator.toml"
        data = {
            "federation": self.federation,
            "listen": "127.0.0.1:0",
            "identity_dir": str(self.identity("coordinator")),
            "denylist_file": str(self.root / "ca" / DENYLIST_FILE),
            "department_deadline_seconds": deadline_seconds,
            "statistics_authority_key": str(self.authority_dir / "authority.pub"),
            "profile_file": str(self.profile_file),
            "catalogue_file": str(self.catalogue_file),
            "aggregation": self.mechanism,
            **({"roster_file": str(self.roster_file)} if self.mechanism == "secure" else {}),
            "state_dir": str(home / state),
            "statisticians": [
                {"id": ident, "rho": rho}
                for ident, rho in (statisticians or {STATISTICIAN: "1/4"}).items()
            ],
            "departments": [
                {
                    "id": plan.id,
                    "name": plan.name,
                    "address": self.nodes[plan.id].address,
                    "server_name": self.nodes[plan.id].server_name,
                    "region": plan.region,
                    "districts": list(plan.districts),
                    **({"audit_key": self.audit_verifier_key(plan.id)} if self.witness else {}),
                }
                for plan in plans
            ],
        }
        data.update(settings or {})
        if self.witness:  # the coordinator witnesses every department's log too
            key = home / "witness.key"
            if not key.exists():
                generate_witness_key(key, COORDINATOR_WITNESS)
            data["witness"] = {"name": COORDINATOR_WITNESS, "signing_key_file": str(key),
                               "interval_seconds": WITNESS_INTERVAL}  # fmt: skip
        config.write_bytes(tomli_w.dumps(data).encode())
        self.coordinator = Party(
            "coordinator",
            config,
            home / "coordinator.log",
            f"coordinator.{self.federation}",
            home / "ready.json",
        )
        self.say("starting the coordinator")
        self._launch(self.coordinator, "coordinator")
        self._await_ready(self.coordinator)

    def restart_coordinator(
        self,
        only: Sequence[str] | None = None,
        statisticians: dict[str, str] | None = None,
        state: str = "state",
        settings: dict[str, Any] | None = None,
    ) -> None:
        """Stop the coordinator if it runs and start it again over ``only`` departments."""
        if self.coordinator is not None:
            self.stop_party(self.coordinator)
        self.start_coordinator(
            only=only, statisticians=statisticians, state=state, settings=settings
        )

    def _launch(self, party: Party, *command: str) -> None:
        party.ready_file.unlink(missing_ok=True)
        argv = [
            sys.executable, "-m", "tools.cli.main", *command, "serve",
            "--config", str(party.config), "--ready-file", str(party.ready_file),
        ]  # fmt: skip
        env = {**os.environ, **self.env}
        with party.log.open("ab") as log:
            party.proc = subprocess.Popen(
                argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env
            )

    def _await_ready(self, party: Party) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        assert party.proc is not None
        while time.monotonic() < deadline:
            if party.ready_file.exists():
                party.address = json.loads(party.ready_file.read_text())["address"]
                return
            if party.proc.poll() is not None:
                raise Unavailable(
                    f"{party.name} exited with code {party.proc.returncode} while starting; "
                    f"see {party.log}"
                )
            time.sleep(0.05)
        raise Unavailable(
            f"{party.name} did not start within {STARTUP_SECONDS:.0f} s; see {party.log}"
        )

    def restart_node(self, dept: str) -> None:
        """Start a department's node again (after :meth:`stop_party`) and wait for it."""
        party = self.nodes[dept]
        self.stop_party(party)
        self._launch(party, "node")
        self._await_ready(party)

    def switch_aggregation(self, mechanism: str) -> None:
        """Stop every node, configure it for ``mechanism`` and start it again.

        The coordinator (if running) is stopped too: start it again for the new mechanism.
        A switch to "secure" signs the roster first if there is none yet.
        """
        if self.coordinator is not None:
            self.stop_party(self.coordinator)
        for party in self.nodes.values():
            self.stop_party(party)
        self.aggregation = mechanism
        if mechanism == "secure" and not self.roster_file.exists():
            self.sign_roster()
        for party in self.nodes.values():
            settings = tomllib.loads(party.config.read_text(encoding="utf-8"))
            settings["aggregation"] = mechanism
            party.config.write_bytes(tomli_w.dumps(settings).encode())
        for party in self.nodes.values():
            self._launch(party, "node")
        for party in self.nodes.values():
            self._await_ready(party)

    def stop_party(self, party: Party, timeout: float = 15.0) -> None:
        """SIGTERM a process, wait for a clean exit, kill it if it hangs."""
        if party.proc is None or party.proc.poll() is not None:
            return
        party.proc.send_signal(signal.SIGTERM)
        try:
            party.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            party.proc.kill()
            party.proc.wait()

    def shutdown(self) -> None:
        """Stop the coordinator, then every node, then the witness."""
        parties = ([self.coordinator] if self.coordinator else []) + list(self.nodes.values())
        parties += [self.witness_party] if self.witness_party else []
        for party in parties:
            if party.proc is not None and party.proc.poll() is None:
                party.proc.send_signal(signal.SIGTERM)
        for party in parties:
            self.stop_party(party)

    # ----- clients --------------------------------------------------------------------
    def staff_endpoint(self, dept: str, timeout: float = 30.0) -> Endpoint:
        """How the department's staff reach their node."""
        node = self.nodes[dept]
        return Endpoint(node.address, self.identity(f"staff-{dept}"), node.server_name, timeout)

    def node_endpoint_as(self, dept: str, identity: str, timeout: float = 30.0) -> Endpoint:
        """A department's node reached with another party's identity (e.g. 'coordinator')."""
        node = self.nodes[dept]
        return Endpoint(node.address, self.identity(identity), node.server_name, timeout)

    def statistician_endpoint(self, timeout: float = 120.0, ident: str | None = None) -> Endpoint:
        """How a national statistician (the demo one, or ``ident``) reaches the coordinator."""
        assert self.coordinator is not None
        name = "statistician" if ident is None else f"statistician-{ident}"
        return Endpoint(
            self.coordinator.address, self.identity(name), self.coordinator.server_name, timeout
        )

    def __enter__(self) -> LocalFederation:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()
