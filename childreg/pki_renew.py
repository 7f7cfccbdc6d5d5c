"""Renewing an identity's certificate before it expires, keeping the identity.

Why: a service's certificate lasts a year and a person's 90 days (childreg/pki.py), and
expiry warnings (childreg/cert_watch.py) say when one is due; renewing must not change who
the party is. A renewal issues a new certificate (new serial, new validity) for the same
SPIFFE id, the same DNS names and addresses and the same usages, and by default for the
same key: only the public certificate travels to the CA's offline host and back, the
private key never leaves its owner. The certificate file is replaced atomically, so a
running server (childreg.rpc.RotatingCredentials) serves the new one on its next handshake
without a restart. A revoked certificate, or one another CA issued, is not renewed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from childreg import revocation
from childreg.errors import InvalidInput, PermissionDenied, Violation
from childreg.pki import CertificateAuthority, IdentityFiles, SpiffeId, _key_pem, spiffe_id_of
from childreg.secretfile import write_private

__all__ = ["Renewal", "renew_identity"]


@dataclass(frozen=True)
class Renewal:
    """What a renewal did (public facts only)."""

    spiffe_id: str
    old_serial: int
    new_serial: int
    not_after: dt.datetime
    new_key: bool

    def to_json(self) -> dict[str, object]:
        """JSON-ready values; serials in hex as `pki list` shows them."""
        return {
            "spiffe_id": self.spiffe_id,
            "old_serial": f"{self.old_serial:x}",
            "new_serial": f"{self.new_serial:x}",
            "not_after": self.not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "new_key": self.new_key,
        }


def _current(ca: CertificateAuthority, files: IdentityFiles) -> tuple[x509.Certificate, SpiffeId]:
    """The certificate to renew, checked: this CA's, of this federation, not revoked."""
    try:
        old = x509.load_pem_x509_certificate(files.cert.read_bytes())
    except (OSError, ValueError):
        raise InvalidInput(
            f"no readable certificate at {files.cert}",
            [Violation("identity", "tls.crt is missing or not a PEM certificate")],
        ) from None
    try:
        old.verify_directly_issued_by(ca.cert)
    except (ValueError, TypeError, InvalidSignature):
        raise PermissionDenied(
            f"the certificate in {files.directory} was not issued by this CA; renew it with "
            "the CA that issued it"
        ) from None
    spiffe = spiffe_id_of(old)
    if spiffe.federation != ca.federation:
        raise PermissionDenied("the certificate names another federation than this CA's")
    if ca.directory is not None:
        path = ca.directory / revocation.DENYLIST_FILE
        if (
            path.exists()
            and old.serial_number in revocation.verify(path.read_bytes(), ca.cert).serials
        ):
            raise PermissionDenied(
                f"the certificate of {spiffe} (serial {old.serial_number:x}) is revoked; a "
                "revoked identity is not renewed: issue a new one with `childreg pki issue` "
                "if it is to return"
            )
    return old, spiffe


def renew_identity(
    ca: CertificateAuthority,
    files: IdentityFiles,
    *,
    validity: dt.timedelta | None = None,
    new_key: bool = False,
) -> Renewal:
    """Issue a new certificate for the identity in ``files`` and write it there (see the
    module). ``validity`` defaults to the role's; with ``new_key`` a new key pair is made
    and ``tls.key`` replaced too (then the key must travel back to its owner securely)."""
    old, spiffe = _current(ca, files)
    san = old.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns = tuple(san.get_values_for_type(x509.DNSName))
    ips = tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    usages = old.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    key: ec.EllipticCurvePrivateKey | None = None
    if new_key:
        key = ec.generate_private_key(ec.SECP256R1())
        public = key.public_key()
    else:
        existing = old.public_key()
        if not isinstance(existing, ec.EllipticCurvePublicKey):
            raise InvalidInput(
                "the certificate's key is not an EC key", [Violation("identity", "key type")]
            )
        public = existing
    cert = ca._certificate(
        spiffe.role,
        spiffe.ident,
        public,
        dns_names=dns,
        ip_addresses=ips,
        validity=validity,
        is_server=ExtendedKeyUsageOID.SERVER_AUTH in usages,
    )
    if key is not None:
        write_private(files.key, _key_pem(key))
    write_private(files.cert, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    if not files.ca.exists() or files.ca.read_bytes() != ca.cert_pem:
        write_private(files.ca, ca.cert_pem, mode=0o644)
    ca._hand_denylist(spiffe.role, files)
    return Renewal(
        str(spiffe), old.serial_number, cert.serial_number, cert.not_valid_after_utc, new_key
    )
