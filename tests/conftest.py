"""Shared fixtures: a test federation CA and identities issued from it (real certificates)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from childreg.pki import CertificateAuthority, IdentityFiles
from childreg.rpc import TlsMaterial

FEDERATION = "test.childreg"

IssueFn = Callable[..., IdentityFiles]


@pytest.fixture(scope="session")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    """A private CA for the whole test session."""
    return CertificateAuthority.create(FEDERATION, tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="session")
def issue(ca: CertificateAuthority, tmp_path_factory: pytest.TempPathFactory) -> IssueFn:
    """Issue an identity: issue(role, ident, **kwargs) -> IdentityFiles (servers get loopback)."""
    made: dict[tuple[str, str], IdentityFiles] = {}

    def _issue(role: str, ident: str, **kwargs: object) -> IdentityFiles:
        key = (role, ident)
        if key not in made or kwargs:
            out = tmp_path_factory.mktemp(f"id-{role}-{ident}")
            if role in ("node", "coordinator"):
                kwargs.setdefault("dns_names", (f"{ident}.{role}.{FEDERATION}", "localhost"))
                kwargs.setdefault("ip_addresses", ("127.0.0.1",))
            made[key] = ca.issue(role, ident, out, **kwargs)  # type: ignore[arg-type]
        return made[key]

    return _issue


def tls(files: IdentityFiles) -> TlsMaterial:
    """The TLS material of an identity."""
    return TlsMaterial.from_dir(files)


@pytest.fixture
def repo_root() -> Path:
    """The repository's root directory."""
    return Path(__file__).resolve().parent.parent
