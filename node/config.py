"""A node's configuration file: who the department is, where its data and keys live.

Example (TOML)::

    department_id = "baku"
    name = "Baku City Education Department"
    region = "baku"
    districts = ["nasimi", "yasamal"]
    data_dir = "/var/lib/childreg/baku"
    listen = "0.0.0.0:7443"
    identity_dir = "/etc/childreg/identity"   # ca.crt, tls.crt, tls.key
    kek_file = "/run/secrets/childreg-kek"    # or: kek_passphrase_env = "CHILDREG_KEK_PASSPHRASE"
    denylist_file = "/etc/childreg/denylist.json"
    statistics_authority_key = "/etc/childreg/authority.pub"
    profile_file = "/etc/childreg/profile.signed.json"   # the signed country profile
    max_snapshot_rho = "1/4"
    aggregation = "secure"                    # or "per-department" (stage 1)
    import_workers = 2                        # processes sealing bulk imports (0: none)

    [retention]                               # optional; each rule is off when unset
    erase_years_after_closed = 5              # erase a closed record 5 years after closing
    erase_at_age = 23                         # erase any record once the child is 18 + 5
    run_every_hours = 24                      # the serving node's scheduled run
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

from childreg.audit.note import NoteVerifier
from childreg.config import ServiceSettings, resolve_path
from childreg.dp import zcdp
from childreg.errors import InvalidInput, Violation
from childreg.models import PartyId
from childreg.profile import Profile, UnitCode


class WitnessEndpoint(BaseModel):
    """A witness the node gives its audit checkpoints to (witness/cosigning.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100)
    address: str = Field(pattern=r"^[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5}$")
    server_name: str | None = Field(default=None, pattern=r"^[a-z0-9.\-]{1,253}$")
    #: The witness's note verifier key string (its cosignature is checked with it).
    verifier_key: str = Field(min_length=10, max_length=300)

    def verifier(self) -> NoteVerifier:
        """The witness's pinned verifier."""
        return NoteVerifier.from_key_string(self.verifier_key)

    @field_validator("verifier_key")
    @classmethod
    def _key(cls, value: str) -> str:
        NoteVerifier.from_key_string(value)  # MalformedKey (InvalidInput) if it is not one
        return value


class RetentionConfig(BaseModel):
    """The node's retention rules (node/records/retention.py); each is off when unset.

    ``erase_years_after_closed``: erase a closed record this many full years after its
    closing date. ``erase_at_age``: erase any record, open or closed, once the child is
    this old (18 plus the years the law allows). With a rule set, ``childreg node serve``
    applies them every ``run_every_hours`` unless ``scheduled`` is false.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    erase_years_after_closed: int | None = Field(default=None, ge=1, le=100)
    erase_at_age: int | None = Field(default=None, ge=18, le=120)
    scheduled: bool = True
    run_every_hours: float = Field(default=24.0, gt=0, le=24 * 31)

    @property
    def any_rule(self) -> bool:
        """Whether a rule is set."""
        return self.erase_years_after_closed is not None or self.erase_at_age is not None

    @property
    def scheduled_run(self) -> bool:
        """Whether the serving node runs the rules by itself."""
        return self.scheduled and self.any_rule


class NodeConfig(ServiceSettings):
    """Validated node configuration."""

    department_id: PartyId
    name: str = Field(min_length=1, max_length=200)
    #: The department's region and districts: codes of the country profile (profile_file),
    #: checked against it at start-up (:meth:`check_units`).
    region: UnitCode
    districts: tuple[UnitCode, ...] = Field(min_length=1)
    data_dir: Path
    kek_file: Path | None = None
    kek_passphrase_env: str | None = None
    #: This node's own ceiling on a snapshot's privacy budget (zCDP ρ, exact fraction); the
    #: node enforces the smaller of it and the signed catalogue's cap.
    max_snapshot_rho: Fraction = Fraction(1, 4)
    #: How often the audit log is checkpointed and given to the witnesses (seconds).
    audit_checkpoint_seconds: float = Field(default=60.0, gt=0, le=86_400)
    witnesses: tuple[WitnessEndpoint, ...] = ()
    #: Disclosures (school extracts) are refused when no witness has cosigned a checkpoint
    #: for this long (fail closed; Checkpointer.require_recent_witness).
    witness_max_age_seconds: float = Field(default=3600.0, gt=0, le=30 * 86_400)
    #: Each school's own limit on extract requests (on top of the per-caller RPC limit).
    extract_rate_per_second: float = Field(default=1.0, gt=0, le=1000)
    extract_rate_burst: int = Field(default=20, ge=1, le=10_000)
    #: How this node takes part in national statistics. "secure" (stage 2): only masked
    #: noise shares of secure-aggregation rounds (StatisticsService Ready and Share), so
    #: the coordinator never sees this department's table; NoisyTable is refused.
    #: "per-department" (stage 1): each table answered with the full noise (NoisyTable);
    #: Ready and Share are refused. Every node of a federation uses the same mode.
    aggregation: Literal["secure", "per-department"] = "secure"
    #: Processes forked at start-up to validate and seal bulk imports beside the thread
    #: that writes them (node.rpc.import_workers); 0 seals in the node's own thread. Unset:
    #: 2 on a machine with 2 or more cores, else 0.
    import_workers: int | None = Field(default=None, ge=0, le=16)
    #: Retention rules: when records are erased by themselves (off unless set).
    retention: RetentionConfig = RetentionConfig()

    @field_validator("max_snapshot_rho", mode="before")
    @classmethod
    def _rho(cls, value: object) -> Fraction:
        return zcdp.parse_rho(value if isinstance(value, Fraction) else str(value))

    @field_validator("data_dir", "kek_file")
    @classmethod
    def _relative_to_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else resolve_path(value, info.context)

    @model_validator(mode="after")
    def _node_does_not_publish(self) -> Self:
        if self.revocation.publish:  # every RPC a node serves is an audited action
            raise ValueError(
                "revocation.publish: a node does not publish the deny-list; the coordinator "
                "(or a witness) does, and the node fetches it (revocation.publisher)"
            )
        return self

    @model_validator(mode="after")
    def _one_kek_source(self) -> Self:
        if (self.kek_file is None) == (self.kek_passphrase_env is None):
            raise ValueError("set exactly one of kek_file or kek_passphrase_env")
        return self

    def check_units(self, profile: Profile) -> None:
        """InvalidInput unless ``region`` and every one of ``districts`` are in ``profile``."""
        found = [
            Violation("districts", f"{d} is not a district of the {profile.country} profile")
            for d in self.districts
            if not profile.has_district(d)
        ]
        if self.region not in profile.region_codes():
            found.insert(0, Violation("region", f"not a region of the {profile.country} profile"))
        if found:
            raise InvalidInput("the node's region and districts must be the profile's", found)

    @property
    def db_path(self) -> Path:
        """The SQLCipher database file."""
        return self.data_dir / "records.db"

    @property
    def keyring_path(self) -> Path:
        """The wrapped keys (never a clear key)."""
        return self.data_dir / "keyring.json"
