"""The coordinator's configuration: the federation's departments, how to reach them, and
how their tables are aggregated (docs/design/privacy.md, "Two stages").

Example (TOML)::

    federation = "az.childreg"
    listen = "0.0.0.0:7443"
    identity_dir = "identity"          # ca.crt, tls.crt, tls.key
    department_deadline_seconds = 10
    denylist_file = "denylist.json"
    statistics_authority_key = "authority.pub"   # pinned statistics-authority key
    catalogue_file = "catalogue.signed.json"     # signed by that authority
    state_dir = "state"                          # release store and ledger
    # Secure aggregation (the default): nodes upload masked noise shares and only the
    # noisy national sum is unmasked. The roster is the federation's signed list of
    # participating departments and their keys (`childreg stats roster sign`).
    aggregation = "secure"                       # or "per-department" (stage 1)
    roster_file = "roster.signed.json"
    settle_seconds = 30      # how long to wait for departments to be ready, per snapshot
    round_attempts = 3       # attempts of a round whose uploads were lost in transit

    [[statisticians]]
    id = "alice"          # spiffe://az.childreg/statistician/alice
    rho = "1/8"           # her share of each snapshot's privacy budget

    [[departments]]
    id = "baku"
    name = "Baku City Education Department"
    address = "baku-node.example.org:7443"
    server_name = "baku.node.az.childreg"   # the DNS name the node's certificate must carry
    region = "baku"
    districts = ["nasimi", "yasamal"]
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from childreg.audit.checkpoint import childreg_origin
from childreg.config import ServiceSettings, resolve_path
from childreg.dp import zcdp
from childreg.errors import InvalidInput, Violation
from childreg.models import PartyId
from childreg.profile import Profile, UnitCode


class Department(BaseModel):
    """One department's node as the coordinator knows it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: PartyId
    name: str = Field(default="", max_length=200)
    address: str = Field(pattern=r"^[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5}$")
    server_name: str | None = Field(default=None, pattern=r"^[a-z0-9.\-]{1,253}$")
    #: Codes of the country profile (profile_file), checked by
    #: :meth:`CoordinatorConfig.check_units` once the profile is read.
    region: UnitCode
    districts: tuple[UnitCode, ...] = ()
    #: The node's audit-log verifier key (`childreg node audit-key`): with it, the
    #: coordinator witnesses this department's log.
    audit_key: str | None = Field(default=None, max_length=400)


class CoordinatorWitness(BaseModel):
    """The coordinator's own witness of the departments' access logs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100)  # its cosignature's key name
    signing_key_file: Path  # from `childreg audit witness keygen`
    interval_seconds: float = Field(default=60.0, gt=0, le=86_400)


class Statistician(BaseModel):
    """A national statistician and the share of every snapshot's budget they may spend."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: PartyId  # the id in their certificate: spiffe://<federation>/statistician/<id>
    rho: Fraction  # zCDP sub-budget per snapshot, exact fraction such as "1/8"

    @field_validator("rho", mode="before")
    @classmethod
    def _rho(cls, value: object) -> Fraction:
        return zcdp.parse_rho(value if isinstance(value, Fraction) else str(value))


class CoordinatorConfig(ServiceSettings):
    """Validated coordinator configuration."""

    federation: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")
    department_deadline_seconds: float = Field(default=10.0, gt=0, le=300)
    departments: tuple[Department, ...] = Field(min_length=1)
    #: The table catalogue as signed by the statistics authority (childreg.catalogue).
    catalogue_file: Path
    #: Where the release store lives (published tables, charges; no department's table).
    state_dir: Path
    #: Who may ask for tables, and each one's sub-budget per snapshot; nobody else may.
    statisticians: tuple[Statistician, ...] = Field(min_length=1)
    #: Witness every department whose `audit_key` is set (docs/witness.md). The
    #: coordinator is then started with a witness, which `childreg coordinator serve`
    #: builds from this section; without one it refuses to start.
    witness: CoordinatorWitness | None = None
    #: Seconds the consistent-publication solver may take per region; at the limit it
    #: keeps its best integer solution so far (the fallback only when it has none).
    solver_time_limit_seconds: float = Field(default=30.0, gt=0, le=600)
    #: Branch-and-bound nodes per region, if set: a limit of work rather than time, so
    #: the published tables do not depend on how busy the coordinator's machine is.
    solver_node_limit: int | None = Field(default=None, gt=0)
    #: "secure": stage 2, secure aggregation of noise shares over a signed roster, only
    #: the national table is published; "per-department": stage 1, every department adds
    #: the full noise and tables are published per region too.
    aggregation: Literal["secure", "per-department"] = "secure"
    #: The federation roster signed by the statistics authority (required for "secure").
    roster_file: Path | None = None
    #: How long the first round of a snapshot waits for departments to be ready; those
    #: still down then are left out of the whole snapshot (and named in every table).
    settle_seconds: float = Field(default=30.0, gt=0, le=3600)
    #: Attempts of a secure round when uploads are lost in transit (fresh masks each time).
    round_attempts: int = Field(default=3, ge=1, le=10)

    def check_units(self, profile: Profile) -> None:
        """InvalidInput unless every department's region and districts are in ``profile``."""
        found: list[Violation] = []
        for n, d in enumerate(self.departments):
            if d.region not in profile.region_codes():
                found.append(Violation(f"departments.{n}.region", "not a region of the profile"))
            found += [
                Violation(f"departments.{n}.districts", f"{x} is not a district of the profile")
                for x in d.districts
                if not profile.has_district(x)
            ]
        if found:
            raise InvalidInput("the departments' units must be the country profile's", found)

    @field_validator("catalogue_file", "state_dir")
    @classmethod
    def _relative_to_file(cls, value: Path, info: ValidationInfo) -> Path:
        return resolve_path(value, info.context)

    @field_validator("roster_file")
    @classmethod
    def _roster_relative_to_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else resolve_path(value, info.context)

    @model_validator(mode="after")
    def _secure_needs_roster(self) -> Self:
        if self.aggregation == "secure" and self.roster_file is None:
            raise ValueError(
                'aggregation "secure" needs roster_file: the federation roster signed by the '
                "statistics authority (make one with `childreg stats roster sign`), or set "
                'aggregation = "per-department"'
            )
        return self

    @field_validator("witness")
    @classmethod
    def _witness_key_path(
        cls, value: CoordinatorWitness | None, info: ValidationInfo
    ) -> CoordinatorWitness | None:
        if value is None:
            return None
        path = resolve_path(value.signing_key_file, info.context)
        return value.model_copy(update={"signing_key_file": path})

    @model_validator(mode="after")
    def _unique_statisticians(self) -> Self:
        ids = [s.id for s in self.statisticians]
        if len(set(ids)) != len(ids):
            raise ValueError("statistician ids must be unique")
        return self

    @property
    def releases_path(self) -> Path:
        """The release store's database file."""
        return self.state_dir / "releases.db"

    @property
    def witness_db_path(self) -> Path:
        """The database of the coordinator's witness (held checkpoints, evidence)."""
        return self.state_dir / "witness.db"

    def audit_origins(self) -> dict[str, str]:
        """department id -> its audit log's origin, for every department whose
        ``audit_key`` is set (the logs the coordinator's witness pulls)."""
        return {
            d.id: childreg_origin(self.federation, d.id)
            for d in self.departments
            if d.audit_key is not None
        }

    def witnessed_logs(self) -> dict[str, str]:
        """origin -> the node's pinned audit-log verifier key, for the same departments."""
        return {
            childreg_origin(self.federation, d.id): d.audit_key
            for d in self.departments
            if d.audit_key is not None
        }

    @model_validator(mode="after")
    def _unique_departments(self) -> Self:
        ids = [d.id for d in self.departments]
        if len(set(ids)) != len(ids):
            raise ValueError("department ids must be unique")
        addresses = [d.address for d in self.departments]
        if len(set(addresses)) != len(addresses):
            raise ValueError("department addresses must be unique (one node per department)")
        return self
