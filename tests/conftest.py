"""The fixtures every test layer shares, defined once: the federation CA and the identities it
issues (real certificates), a node keyring, each store implementation (the two-store fixture),
and the test authority's key.

Nothing here is made at import: the CA, the keyring and the stores are fixtures, the authority's
key is made by a function, so a test module that is only imported (collection) creates no files
and holds no keys. A folder's conftest.py or a test module that needs something else under the
same name (tests/unit/node/store's SQLCipher-only ``store``, tests/unit/witness's witness
``store``) defines its own, which wins below it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from childreg.pki import CertificateAuthority, IdentityFiles
from childreg.rpc import TlsMaterial
from node.crypto.keys import KekSource, Keyring, generate_key_file
from node.store.base import RecordStore
from tests.contract.stores import STORES

FEDERATION = "test.childreg"
#: The seed of the test authority that signs catalogues and rosters (a fixed, public test key).
AUTHORITY_SEED = bytes(range(32))

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


@pytest.fixture(autouse=True)
def _private_data_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every test's XDG_DATA_HOME is a fresh directory: no test writes receipts (or any
    other per-user file) into the real home."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))


def tls(files: IdentityFiles) -> TlsMaterial:
    """The TLS material of an identity."""
    return TlsMaterial.from_dir(files)


def make_keyring(directory: Path) -> Keyring:
    """A fresh keyring in ``directory`` (made if missing), its KEK in a key file beside it."""
    directory.mkdir(parents=True, exist_ok=True)
    generate_key_file(directory / "kek.key")
    return Keyring.create(
        directory / "keyring.json", KekSource.from_key_file(directory / "kek.key")
    )


def authority_key() -> SigningKey:
    """The test authority's signing key (the same on every call: it is made from a fixed seed)."""
    return SigningKey(AUTHORITY_SEED)


@pytest.fixture
def keyring(tmp_path: Path) -> Keyring:
    """A keyring made with a key file."""
    return make_keyring(tmp_path)


@pytest.fixture(params=sorted(STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RecordStore]:
    """Each store implementation (tests/contract/stores.py), empty."""
    made = STORES[request.param](tmp_path)
    yield made
    made.close()


@pytest.fixture
def repo_root() -> Path:
    """The repository's root directory."""
    return Path(__file__).resolve().parent.parent
