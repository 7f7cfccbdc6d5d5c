"""Loading service configuration files (TOML or YAML) into validated models.

Relative paths inside a file are resolved against the file's own directory, so a
configuration folder can be moved as a whole. Errors name the file, the field and the
problem, and say what to do next.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, TypeVar

import yaml
from nacl.signing import VerifyKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from childreg import profile
from childreg.errors import InvalidInput, Violation
from childreg.models import violations_of
from childreg.profile import Profile

C = TypeVar("C", bound=BaseModel)


def read_mapping(path: Path) -> dict[str, Any]:
    """Parse a .toml, .yaml or .yml file into a mapping; InvalidInput if unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"cannot read configuration {path}", [Violation("file", type(exc).__name__)]
        ) from None
    try:
        if path.suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        else:
            raise InvalidInput(
                f"unknown configuration format for {path}",
                [Violation("file", "use a .toml, .yaml or .yml file")],
            )
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise InvalidInput(
            f"configuration {path} is not valid {path.suffix[1:].upper()}",
            [Violation("file", str(exc).splitlines()[0])],
        ) from None
    if not isinstance(data, dict):
        raise InvalidInput(f"configuration {path} must be a mapping", [Violation("file", "shape")])
    return data


def load_config(model: type[C], path: Path) -> C:
    """Read and validate a configuration file; paths in it are relative to its directory."""
    data = read_mapping(path)
    try:
        return model.model_validate(data, context={"base_dir": path.resolve().parent})
    except ValidationError as exc:
        raise InvalidInput(f"invalid configuration {path}", violations_of(exc)) from None


def resolve_path(value: Path, info_context: Any) -> Path:
    """Resolve a path from a config file against the file's directory (see load_config)."""
    base = (info_context or {}).get("base_dir") if isinstance(info_context, dict) else None
    if base is not None and not value.is_absolute():
        return (Path(base) / value).resolve()
    return value


class RevocationSettings(BaseModel):
    """How a server keeps its deny-list current (``[revocation]``; childreg.denylist_sync).

    Example (TOML), on every node and witness; the coordinator sets ``publish = true``::

        [revocation]
        publisher = "coordinator.example.org:7443"   # who serves the signed list
        publisher_server_name = "coordinator.az.childreg"
        fetch_seconds = 300           # how often the list is fetched (and the file re-read)
        max_age_seconds = 691200      # older than this since the CA signed it: "stale"
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Serve the list in force to the federation's servers (RevocationService).
    publish: bool = False
    #: The publishing party's address; unset: only ``denylist_file`` is read.
    publisher: str | None = Field(default=None, pattern=r"^[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5}$")
    #: The DNS name the publisher's certificate must carry.
    publisher_server_name: str | None = Field(default=None, pattern=r"^[a-z0-9.\-]{1,253}$")
    fetch_seconds: float = Field(default=300.0, gt=0, le=86_400)
    #: 8 days: a CA that re-signs weekly (`childreg pki revoke` with no serial) stays fresh.
    max_age_seconds: float = Field(default=8 * 86_400.0, gt=0, le=366 * 86_400)


class ServiceSettings(BaseModel):
    """What every childreg service's configuration holds: where it listens, who it is, limits.

    Node and coordinator configurations extend this; paths are relative to the file.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    listen: str = "127.0.0.1:0"
    identity_dir: Path
    #: The federation's signed deny-list of revoked certificates (reloaded when it changes).
    denylist_file: Path
    #: Where newer lists come from, and how old the list in force may be.
    revocation: RevocationSettings = RevocationSettings()
    #: The statistics authority's Ed25519 public key (`authority.pub`): pinned, it is the
    #: only key whose signed table catalogue this service accepts.
    statistics_authority_key: Path
    #: The federation's country profile (administrative units, calendar, languages) as
    #: signed by that same authority (childreg.profile); unset: the embedded Azerbaijan one.
    profile_file: Path | None = None
    log_level: str = "info"
    max_workers: int = Field(default=8, ge=1, le=64)
    #: Per-caller rate limit (token bucket): calls per second, and how many at once.
    rate_per_second: float = Field(default=100.0, gt=0, le=100_000)
    rate_burst: int = Field(default=300, ge=1, le=1_000_000)
    #: Warn (log, health entry childreg.certificate) this many days before the service's
    #: own certificate or the CA's expires (childreg/cert_watch.py).
    certificate_warn_days: int = Field(default=30, ge=1, le=365)

    @field_validator("identity_dir", "denylist_file", "statistics_authority_key", "profile_file")
    @classmethod
    def _service_paths(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else resolve_path(value, info.context)

    def country_profile(self, authority: VerifyKey, federation: str) -> Profile:
        """The signed profile of ``profile_file``, verified with the pinned ``authority`` key
        and for ``federation`` (PermissionDenied otherwise), or the embedded default."""
        if self.profile_file is None:
            return profile.embedded()
        return profile.read_signed_profile(self.profile_file, authority, federation=federation)
