"""The federation operator's CA, as `childreg pki …` uses it: issue, revoke, list.

The CA itself is :mod:`childreg.pki` and its signed deny-list :mod:`childreg.revocation`;
this module turns the operator's arguments into their calls (serials as `pki list` shows
them, certificates by file) and says what the CA has issued and what is revoked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from rich.table import Table

from childreg.pki import CertificateAuthority, IdentityFiles
from childreg.revocation import DENYLIST_FILE, DenyList, issued, verify
from tools.clients.client import EXIT_USAGE, CliError


def issue(
    ca_dir: Path, role: str, ident: str, out: Path, *, dns: Sequence[str] = (),
    ip: Sequence[str] = (), hours: float | None = None,
) -> IdentityFiles:  # fmt: skip
    """Issue an identity spiffe://<federation>/<role>/<id> into ``out``, signed by the CA;
    valid ``hours``, or the role's default (a year for services, 90 days for people)."""
    ca = CertificateAuthority.load(ca_dir)
    return ca.issue(
        role,
        ident,
        out,
        dns_names=tuple(dns),
        ip_addresses=tuple(ip),
        validity=None if hours is None else dt.timedelta(hours=hours),
    )


def _hex_serial(text: str) -> int:
    try:
        return int(text.replace(":", ""), 16)
    except ValueError:
        raise CliError(f"not a hexadecimal serial number: {text!r}", code=EXIT_USAGE) from None


def revoke(ca_dir: Path, serials: Sequence[str], certs: Sequence[Path]) -> DenyList:
    """Add serials (hex) and the certificates in ``certs`` to the CA's signed deny-list."""
    numbers = [_hex_serial(s) for s in serials]
    numbers += [x509.load_pem_x509_certificate(p.read_bytes()).serial_number for p in certs]
    if not numbers:
        raise CliError("name at least one serial or --cert", code=EXIT_USAGE)
    return CertificateAuthority.load(ca_dir).revoke(numbers)


def certificates(ca_dir: Path) -> tuple[str, list[dict[str, object]]]:
    """The CA's federation and every certificate it issued, each with ``revoked``."""
    ca = CertificateAuthority.load(ca_dir)
    path = ca_dir / DENYLIST_FILE
    revoked = verify(path.read_bytes(), ca.cert).serials if path.exists() else frozenset()
    rows: list[dict[str, object]] = [
        {**row, "revoked": int(row["serial"], 16) in revoked} for row in issued(ca_dir)
    ]
    return ca.federation, rows


def certificate_table(federation: str, rows: list[dict[str, object]]) -> Table:
    """The certificates of :func:`certificates` as a table for a person."""
    table = Table(title=f"certificates issued by the {federation} CA")
    for col in ("serial", "identity", "valid until", "revoked"):
        table.add_column(col)
    for row in rows:
        table.add_row(
            str(row["serial"]),
            str(row["spiffe_id"]),
            str(row["not_after"]),
            "yes" if row["revoked"] else "",
        )
    return table
