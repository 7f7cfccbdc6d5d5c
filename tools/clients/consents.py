"""Department staff's side of a guardian's consent: grant, withdraw, list, show, break-glass.

Granting returns the grant the school will hold: it is shown once, never stored in the
clear, so staff must hand it to the school over a secure channel. Grant and withdrawal
both give the guardian a receipt, which the node renders from its templates in the
guardian's language (node/consent/receipts.py); it is written here as printable HTML, as
PDF and as JSON, owner-readable only (it names the guardian), by default under
:func:`tools.clients.receipts.default_receipt_dir`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from google.protobuf.json_format import MessageToJson

from childreg.v1 import consent_pb2 as cpb
from childreg.v1 import consent_pb2_grpc as cpb_grpc
from tools.clients.client import Endpoint, call
from tools.clients.receipts import write_receipt

GRANT_NOTICE = (
    "Give this grant to the school over a secure channel (in person or encrypted); it is "
    "shown only now and the node cannot show it again."
)


@dataclass(frozen=True)
class Consent:
    """What the guardian agreed to, as staff record it (``ConsentRequest``)."""

    child: str
    guardian: str
    purpose: str
    school: str
    valid_from: str
    valid_until: str
    evidence: str
    #: The guardian's language for the receipts ("" = the country profile's first).
    language: str = ""


@dataclass(frozen=True)
class Receipted:
    """A consent as the node holds it after a grant or withdrawal, the grant (only when
    granted) and the receipt files written."""

    consent: dict[str, str]
    grant: str
    files: list[str]


def consent_dict(consent: cpb.Consent) -> dict[str, str]:
    """A consent's fields, in the order shown and in the JSON shape (never a grant)."""
    return {
        "consent_id": consent.consent_id,
        "child_id": consent.child_id,
        "purpose": consent.purpose,
        "school": consent.school,
        "valid_from": consent.valid_from,
        "valid_until": consent.valid_until,
        "evidence_ref": consent.evidence_ref,
        "granted_at": consent.granted_at,
        "granted_by": consent.granted_by,
        "withdrawn_at": consent.withdrawn_at,
    }


def _write_receipt(directory: Path | None, receipt: cpb.ConsentReceipt, kind: str) -> list[str]:
    stem = f"{receipt.consent.consent_id}-{kind}"
    html, pdf, data = receipt.receipt_html, receipt.receipt_pdf, receipt.receipt_json
    return write_receipt(directory, stem, html, pdf, data)


def grant(endpoint: Endpoint, consent: Consent, receipt_dir: Path | None) -> Receipted:
    """Record a guardian's consent; the grant to hand to the school, the receipt written."""
    request = cpb.ConsentRequest(
        child_id=consent.child,
        guardian_name=consent.guardian,
        purpose=consent.purpose,
        school=consent.school,
        valid_from=consent.valid_from,
        valid_until=consent.valid_until,
        evidence_ref=consent.evidence,
        language=consent.language,
    )
    with endpoint.channel() as channel:
        stub = cpb_grpc.ConsentServiceStub(channel)
        receipt = call(endpoint, "consent grant", stub.GrantConsent, request)
    files = _write_receipt(receipt_dir, receipt, "grant")
    return Receipted(consent_dict(receipt.consent), receipt.grant, files)


def withdraw(endpoint: Endpoint, consent_id: str, receipt_dir: Path | None) -> Receipted:
    """Withdraw a consent now (its grant stops working); the receipt written."""
    with endpoint.channel() as channel:
        stub = cpb_grpc.ConsentServiceStub(channel)
        request = cpb.WithdrawRequest(consent_id=consent_id)
        receipt = call(endpoint, "consent withdraw", stub.WithdrawConsent, request)
    files = _write_receipt(receipt_dir, receipt, "withdrawal")
    return Receipted(consent_dict(receipt.consent), "", files)


def list_consents(endpoint: Endpoint, child: str) -> list[dict[str, str]]:
    """A child's consents, oldest first."""
    with endpoint.channel() as channel:
        stub = cpb_grpc.ConsentServiceStub(channel)
        request = cpb.ChildConsentsRequest(child_id=child)
        reply = call(endpoint, "consent list", stub.ListConsents, request)
    return [consent_dict(c) for c in reply.consents]


def consent_line(row: dict[str, str]) -> str:
    """One consent on one line: id, purpose, school, validity, standing or withdrawn."""
    state = f"withdrawn {row['withdrawn_at']}" if row["withdrawn_at"] else "standing"
    return (
        f"{row['consent_id']}  {row['purpose']}  {row['school']}  "
        f"{row['valid_from']}..{row['valid_until']}  {state}"
    )


def show(endpoint: Endpoint, consent_id: str) -> dict[str, str]:
    """One consent (never its grant: the node does not keep it)."""
    with endpoint.channel() as channel:
        stub = cpb_grpc.ConsentServiceStub(channel)
        request = cpb.ConsentRef(consent_id=consent_id)
        return consent_dict(call(endpoint, "consent show", stub.GetConsent, request))


def break_glass(endpoint: Endpoint, child_id: str, reason: str) -> str:
    """Emergency access to a child's whole record, as JSON (the reason is kept sealed at
    the node and the access is logged as break-glass)."""
    with endpoint.channel() as channel:
        stub = cpb_grpc.ConsentServiceStub(channel)
        request = cpb.BreakGlassRequest(child_id=child_id, reason=reason)
        record = call(endpoint, "break-glass access", stub.BreakGlassRead, request)
    return MessageToJson(record, preserving_proto_field_name=True)
