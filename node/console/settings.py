"""The ``[console]`` section of a node's configuration: where the web console listens,
which certificate it serves, and its sign-in and session limits.

Example (TOML)::

    [console]
    listen = "0.0.0.0:8443"          # port 0: chosen by the OS (written to the ready file)
    cert_file = "/etc/childreg/console/tls.crt"   # unset: the node's own certificate
    key_file = "/etc/childreg/console/tls.key"
    idle_minutes = 15                 # a session unused this long is signed out
    absolute_hours = 8                # and every session after this long
    lockout_failures = 5              # consecutive failed sign-ins that lock an account
    lockout_minutes = 15              # for this long
    language = "az"                   # the sign-in page's language before a person picks
    time_zone = "Asia/Baku"           # the zone times are shown in

Kept free of the web stack's imports, so reading a configuration stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from childreg.config import resolve_path
from childreg.i18n import LANGUAGES


class ConsoleSettings(BaseModel):
    """Validated ``[console]`` settings (all optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    listen: str = Field(default="127.0.0.1:0", pattern=r"^[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5}$")
    cert_file: Path | None = None
    key_file: Path | None = None
    idle_minutes: float = Field(default=15.0, gt=0, le=24 * 60)
    absolute_hours: float = Field(default=8.0, gt=0, le=24 * 7)
    lockout_failures: int = Field(default=5, ge=1, le=100)
    lockout_minutes: float = Field(default=15.0, gt=0, le=7 * 24 * 60)
    language: str = "en"
    time_zone: str = "UTC"

    @field_validator("cert_file", "key_file")
    @classmethod
    def _relative_to_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else resolve_path(value, info.context)

    @field_validator("language")
    @classmethod
    def _language(cls, value: str) -> str:
        if value not in LANGUAGES:
            raise ValueError(f"unknown language; available: {', '.join(LANGUAGES)}")
        return value

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("not an IANA time zone (e.g. Asia/Baku)") from None
        return value

    @model_validator(mode="after")
    def _both_or_neither(self) -> Self:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("set both cert_file and key_file, or neither (the node's own)")
        return self

    @property
    def host(self) -> str:
        """The address to bind."""
        return self.listen.rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        """The port to bind (0: chosen by the OS)."""
        return int(self.listen.rsplit(":", 1)[1])
