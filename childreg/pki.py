"""The federation's private certificate authority and the parties' identities.

Every party holds one X.509 certificate with exactly one URI SAN
``spiffe://<federation>/<role>/<id>``, issued by a small EC P-256 CA made with
``cryptography``. An issued identity is a directory holding ``ca.crt`` (the federation
root), ``tls.crt`` and ``tls.key`` (mode 0600) — the shape of a Kubernetes TLS secret, so
configurations point at one folder. Private keys are written only to files, never printed.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from childreg import revocation
from childreg.errors import InvalidInput, KeyProblem, Violation
from childreg.secretfile import write_private

ROLES = (
    "node", "coordinator", "statistician", "school", "auditor", "department-staff", "witness",
)  # fmt: skip
#: Roles that run servers and so need serverAuth (all roles act as clients too).
SERVER_ROLES = frozenset({"node", "coordinator", "witness"})
#: Default lifetimes (docs/operations.md, "Certificate lifetimes"). The CA key stays
#: offline, so every renewal is a trip to the offline machine: a service's certificate
#: lasts a year (renewed at a planned yearly visit; revocation covers a stolen key
#: meanwhile), a person's 90 days (held on laptops and tokens that get lost, and people
#: change jobs, so it lapses by itself within a quarter if nobody revokes it).
SERVICE_VALIDITY = dt.timedelta(days=365)
PERSON_VALIDITY = dt.timedelta(days=90)
_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$")
SPIFFE_RE = re.compile(
    r"^spiffe://(?P<federation>[a-z0-9._-]+)/(?P<role>[a-z-]+)/(?P<id>[a-z0-9._-]+)$"
)

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
CERT = "tls.crt"
KEY = "tls.key"


@dataclass(frozen=True)
class SpiffeId:
    """A parsed ``spiffe://federation/role/id`` identity."""

    federation: str
    role: str
    ident: str

    def __str__(self) -> str:
        return f"spiffe://{self.federation}/{self.role}/{self.ident}"

    @classmethod
    def parse(cls, uri: str) -> SpiffeId:
        """Parse and check an identity URI; InvalidInput if malformed or of an unknown role."""
        m = SPIFFE_RE.fullmatch(uri)
        if not m or m.group("role") not in ROLES:
            raise InvalidInput("not a childreg identity", [Violation("spiffe_id", "malformed")])
        return cls(m.group("federation"), m.group("role"), m.group("id"))


@dataclass(frozen=True)
class IdentityFiles:
    """Where one party's identity lives on disk."""

    directory: Path

    @property
    def ca(self) -> Path:
        return self.directory / CA_CERT

    @property
    def cert(self) -> Path:
        return self.directory / CERT

    @property
    def key(self) -> Path:
        return self.directory / KEY

    def read(self) -> tuple[bytes, bytes, bytes]:
        """(CA certificate, certificate chain, private key) as PEM bytes; KeyProblem if absent."""
        try:
            return self.ca.read_bytes(), self.cert.read_bytes(), self.key.read_bytes()
        except OSError as exc:
            raise KeyProblem(
                f"identity files missing in {self.directory} ({exc.strerror})",
                hint="issue an identity with the federation CA (ca.crt, tls.crt, tls.key)",
            ) from None

    def stamp(self) -> tuple[int, ...]:
        """Modification times of the three files: changes when the identity is renewed."""
        return tuple(p.stat().st_mtime_ns for p in (self.ca, self.cert, self.key))

    def spiffe_id(self) -> SpiffeId:
        """The identity named by this directory's certificate."""
        _, cert, _ = self.read()
        return spiffe_id_of(x509.load_pem_x509_certificate(cert))


def default_validity(role: str) -> dt.timedelta:
    """How long a certificate of ``role`` lasts unless the issuer says otherwise."""
    return SERVICE_VALIDITY if role in SERVER_ROLES else PERSON_VALIDITY


def _check_name(field: str, value: str) -> None:
    if not _NAME_RE.fullmatch(value):
        raise InvalidInput(
            f"invalid {field}",
            [Violation(field, "use lowercase letters, digits, '.', '_' or '-' (1-64 characters)")],
        )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def spiffe_id_of(cert: x509.Certificate) -> SpiffeId:
    """The single SPIFFE URI SAN of a certificate; InvalidInput unless there is exactly one."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise InvalidInput("certificate has no identity", [Violation("san", "missing")]) from None
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    if len(uris) != 1:
        raise InvalidInput(
            "certificate must carry exactly one URI SAN", [Violation("san", "count")]
        )
    return SpiffeId.parse(uris[0])


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=not ca,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


class CertificateAuthority:
    """A federation's private CA: its certificate, its key, and issuance of identities."""

    def __init__(
        self,
        federation: str,
        cert: x509.Certificate,
        key: ec.EllipticCurvePrivateKey,
        directory: Path | None = None,
    ) -> None:
        self.federation = federation
        self.cert = cert
        self._key = key
        self.directory = directory

    @property
    def cert_pem(self) -> bytes:
        """The CA certificate (public) as PEM."""
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @classmethod
    def create(
        cls, federation: str, directory: Path, *, validity: dt.timedelta = dt.timedelta(days=3650)
    ) -> CertificateAuthority:
        """Make a new CA in ``directory`` (ca.crt, ca.key 0600); refuses to overwrite one."""
        _check_name("federation", federation)
        if (directory / CA_KEY).exists():
            raise InvalidInput(
                "a CA exists already", [Violation("directory", "holds ca.key; refusing to replace")]
            )
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "childreg"),
                x509.NameAttribute(NameOID.COMMON_NAME, f"{federation} federation CA"),
            ]
        )
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + validity)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(ca=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        directory.mkdir(parents=True, exist_ok=True)
        write_private(directory / CA_KEY, _key_pem(key))
        (directory / CA_CERT).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        ca = cls(federation, cert, key, directory)
        ca.revoke([])  # an empty signed deny-list (version 1) for servers to start from
        return ca

    @classmethod
    def load(cls, directory: Path) -> CertificateAuthority:
        """Open an existing CA directory; KeyProblem if its files are missing or unreadable."""
        try:
            cert = x509.load_pem_x509_certificate((directory / CA_CERT).read_bytes())
            key = serialization.load_pem_private_key((directory / CA_KEY).read_bytes(), None)
        except (OSError, ValueError):
            raise KeyProblem(
                f"no usable CA in {directory}",
                hint="create one with `childreg pki init` or point at the right directory",
            ) from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise KeyProblem(f"the CA key in {directory} is not an EC key")
        cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        federation = str(cn).removesuffix(" federation CA")
        return cls(federation, cert, key, directory)

    def issue(
        self,
        role: str,
        ident: str,
        out_dir: Path,
        *,
        dns_names: tuple[str, ...] = (),
        ip_addresses: tuple[str, ...] = (),
        validity: dt.timedelta | None = None,
        server: bool | None = None,
    ) -> IdentityFiles:
        """Issue ``spiffe://<federation>/<role>/<ident>`` into ``out_dir`` and return its files.

        Every identity gets clientAuth; server roles (or ``server=True``) also get serverAuth
        and should be given the DNS names / addresses clients will pin. ``validity``
        defaults to the role's (:func:`default_validity`); a certificate never outlives the CA.
        """
        if role not in ROLES:
            raise InvalidInput("unknown role", [Violation("role", f"one of {', '.join(ROLES)}")])
        _check_name("id", ident)
        is_server = role in SERVER_ROLES if server is None else server
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self._certificate(
            role,
            ident,
            key.public_key(),
            dns_names=dns_names,
            ip_addresses=ip_addresses,
            validity=validity,
            is_server=is_server,
        )
        files = IdentityFiles(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        write_private(files.key, _key_pem(key))
        files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        files.ca.write_bytes(self.cert_pem)
        self._hand_denylist(role, files)
        return files

    def _hand_denylist(self, role: str, files: IdentityFiles) -> None:
        """Give a person's identity the CA's current deny-list, against which their
        commands check the servers they call (childreg/server_check.py)."""
        source = None if self.directory is None else self.directory / revocation.DENYLIST_FILE
        if role not in SERVER_ROLES and source is not None and source.exists():
            (files.directory / revocation.DENYLIST_FILE).write_bytes(source.read_bytes())

    def _certificate(
        self,
        role: str,
        ident: str,
        public_key: ec.EllipticCurvePublicKey,
        *,
        dns_names: Iterable[str],
        ip_addresses: Iterable[str],
        validity: dt.timedelta | None,
        is_server: bool,
    ) -> x509.Certificate:
        """A new certificate of ``spiffe://<federation>/<role>/<ident>`` for ``public_key``,
        recorded as issued (:func:`revocation.record_issued`)."""
        spiffe = SpiffeId(self.federation, role, ident)
        san: list[x509.GeneralName] = [x509.UniformResourceIdentifier(str(spiffe))]
        san += [x509.DNSName(d) for d in dns_names]
        san += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
        if is_server:
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
        now = dt.datetime.now(dt.UTC)
        lifetime = default_validity(role) if validity is None else validity
        not_after = min(now + lifetime, self.cert.not_valid_after_utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name(
                    [
                        x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.federation),
                        x509.NameAttribute(NameOID.COMMON_NAME, f"{role}/{ident}"),
                    ]
                )
            )
            .issuer_name(self.cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        if self.directory is not None:
            revocation.record_issued(
                self.directory, cert.serial_number, str(spiffe), cert.not_valid_after_utc
            )
        return cert

    def revoke(self, serials: Iterable[int]) -> revocation.DenyList:
        """Add serials to the CA's signed deny-list (``denylist.json`` in its directory).

        Each call signs a new version stamped with the time; with no serials it re-signs the
        same revocations, which is how the CA keeps its list younger than servers' maximum age.
        """
        if self.directory is None:
            raise KeyProblem("this CA was not loaded from a directory; cannot keep a deny-list")
        path = self.directory / revocation.DENYLIST_FILE
        current = revocation.DenyList(self.federation, 0, frozenset())
        if path.exists():
            current = revocation.verify(path.read_bytes(), self.cert)
        updated = revocation.DenyList(
            self.federation,
            current.version + 1,
            current.serials | frozenset(serials),
            issued_at=int(time.time()),
        )
        revocation.write(path, updated, self._key)
        return updated
