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
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from childreg.config import resolve_path
from childreg.models import District, PartyId, Region


class NodeConfig(BaseModel):
    """Validated node configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    department_id: PartyId
    name: str = Field(min_length=1, max_length=200)
    region: Region
    districts: tuple[District, ...] = Field(min_length=1)
    data_dir: Path
    listen: str = "127.0.0.1:0"
    identity_dir: Path
    kek_file: Path | None = None
    kek_passphrase_env: str | None = None
    log_level: str = "info"
    max_workers: int = Field(default=8, ge=1, le=64)
    #: Per-caller rate limit (token bucket): calls per second, and how many at once.
    rate_per_second: float = Field(default=100.0, gt=0, le=100_000)
    rate_burst: int = Field(default=300, ge=1, le=1_000_000)
    #: The federation's signed deny-list of revoked certificates (reloaded when it changes).
    denylist_file: Path

    @field_validator("data_dir", "identity_dir", "kek_file", "denylist_file")
    @classmethod
    def _relative_to_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else resolve_path(value, info.context)

    @model_validator(mode="after")
    def _one_kek_source(self) -> Self:
        if (self.kek_file is None) == (self.kek_passphrase_env is None):
            raise ValueError("set exactly one of kek_file or kek_passphrase_env")
        return self

    @property
    def db_path(self) -> Path:
        """The SQLCipher database file."""
        return self.data_dir / "records.db"

    @property
    def keyring_path(self) -> Path:
        """The wrapped keys (never a clear key)."""
        return self.data_dir / "keyring.json"
