"""The coordinator's configuration: the federation's departments and how to reach them.

Example (TOML)::

    federation = "az.childreg"
    listen = "0.0.0.0:7443"
    identity_dir = "identity"          # ca.crt, tls.crt, tls.key
    department_deadline_seconds = 10

    [[departments]]
    id = "baku"
    name = "Baku City Education Department"
    address = "baku-node.example.org:7443"
    server_name = "baku.node.az.childreg"   # the DNS name the node's certificate must carry
    region = "baku"
    districts = ["nasimi", "yasamal"]
"""

from __future__ import annotations

from typing import Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)

from childreg.config import ServiceSettings
from childreg.models import District, PartyId, Region


class Department(BaseModel):
    """One department's node as the coordinator knows it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: PartyId
    name: str = Field(default="", max_length=200)
    address: str = Field(pattern=r"^[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5}$")
    server_name: str | None = Field(default=None, pattern=r"^[a-z0-9.\-]{1,253}$")
    region: Region
    districts: tuple[District, ...] = ()


class CoordinatorConfig(ServiceSettings):
    """Validated coordinator configuration."""

    federation: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")
    department_deadline_seconds: float = Field(default=10.0, gt=0, le=300)
    departments: tuple[Department, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_departments(self) -> Self:
        ids = [d.id for d in self.departments]
        if len(set(ids)) != len(ids):
            raise ValueError("department ids must be unique")
        addresses = [d.address for d in self.departments]
        if len(set(addresses)) != len(addresses):
            raise ValueError("department addresses must be unique (one node per department)")
        return self
