"""The guardian's receipt for a consent granted or withdrawn (JSON and printable HTML).

A guardian must be able to see, on paper, what they agreed to: which data is shared, with
which school, why, from when until when, and how to take it back. Staff print or send
this document at the desk; the JSON carries the same content for other programs.

The field list here is the human-readable description of each purpose, written for
guardians; it deliberately imports nothing from the extract side (the machine policy
lives there). Every value placed in the HTML is escaped.
"""

from __future__ import annotations

import html
import json
from typing import Final, Literal

from node.store.base import StoredConsent

Kind = Literal["grant", "withdrawal"]
KINDS: Final = ("grant", "withdrawal")

#: What each purpose shares, in words a guardian understands.
SHARED_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "iep_preparation": (
        "the child's functioning profile (areas of functioning and the difficulty observed)",
        "relevant ICF-CY activity/participation and environmental codes",
        "recommended supports",
        "recommended accommodations and form of education",
        "the date of the assessment and of the next review",
        "the child's given name and birth year (so the school can match the record)",
    ),
}
PURPOSE_TEXT: Final[dict[str, str]] = {
    "iep_preparation": "preparing the child's individual education plan (IEP)",
}
NEVER_SHARED: Final = (
    "health-condition diagnoses, national id number, family, care-setting or benefit data"
)


def _withdraw_text(consent_id: str) -> str:
    return (
        "Contact the department that recorded this consent and quote the consent id "
        f"{consent_id}. Withdrawal takes effect immediately: the school can no longer "
        "receive data under it."
    )


def receipt_data(consent: StoredConsent, guardian: str, kind: Kind) -> dict[str, object]:
    """The receipt's content as a JSON-ready mapping."""
    if kind not in KINDS:
        raise ValueError("kind must be 'grant' or 'withdrawal'")
    return {
        "receipt": f"consent-{kind}",
        "consent_id": consent.consent_id,
        "guardian": guardian,
        "child_id": consent.child_id,
        "purpose": consent.purpose,
        "purpose_text": PURPOSE_TEXT.get(consent.purpose, consent.purpose),
        "shared_with": consent.school,
        "shared_fields": list(SHARED_FIELDS.get(consent.purpose, ())),
        "never_shared": NEVER_SHARED,
        "valid_from": consent.valid_from.isoformat(),
        "valid_until": consent.valid_until.isoformat(),
        "granted_at": consent.granted_at.isoformat(),
        "withdrawn_at": consent.withdrawn_at.isoformat() if consent.withdrawn_at else None,
        "evidence_ref": consent.evidence_ref,
        "how_to_withdraw": _withdraw_text(consent.consent_id),
    }


def receipt_json(consent: StoredConsent, guardian: str, kind: Kind) -> str:
    """The receipt as JSON (sorted keys, UTF-8 text)."""
    return json.dumps(receipt_data(consent, guardian, kind), ensure_ascii=False, sort_keys=True)


_STYLE: Final = (
    "body{font-family:sans-serif;max-width:42em;margin:2em auto;line-height:1.4}"
    "th{text-align:left;vertical-align:top;padding-right:1em}"
    "@media print{body{margin:0}}"
)


def receipt_html(consent: StoredConsent, guardian: str, kind: Kind) -> str:
    """The receipt as one self-contained printable HTML page (no external resources)."""
    data = receipt_data(consent, guardian, kind)

    def e(value: object) -> str:
        return html.escape(str(value), quote=True)

    title = "Consent granted" if kind == "grant" else "Consent withdrawn"
    rows = [
        ("Consent id", data["consent_id"]),
        ("Guardian", data["guardian"]),
        ("Child (department id)", data["child_id"]),
        ("Shared with", data["shared_with"]),
        ("Why", f"{data['purpose_text']} ({data['purpose']})"),
        ("Valid from", data["valid_from"]),
        ("Valid until (inclusive)", data["valid_until"]),
        ("Recorded at", data["granted_at"]),
        ("Consent form filed as", data["evidence_ref"]),
    ]
    if data["withdrawn_at"]:
        rows.append(("Withdrawn at", data["withdrawn_at"]))
    table = "\n".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows)
    fields = "\n".join(f"<li>{e(f)}</li>" for f in SHARED_FIELDS.get(consent.purpose, ()))
    status = (
        "<p>The school named below may receive the data listed, for this purpose only, "
        "until the date shown or until you withdraw.</p>"
        if kind == "grant"
        else "<p><strong>This consent is withdrawn.</strong> The school can no longer "
        "receive data under it.</p>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{e(title)} — {e(data['consent_id'])}</title>"
        f"<style>{_STYLE}</style></head><body>\n"
        f"<h1>{e(title)}</h1>\n{status}\n<table>\n{table}\n</table>\n"
        f"<h2>What is shared</h2>\n<ul>\n{fields}\n</ul>\n"
        f"<p>Never shared: {e(NEVER_SHARED)}.</p>\n"
        f"<h2>How to withdraw</h2>\n<p>{e(data['how_to_withdraw'])}</p>\n"
        "</body></html>\n"
    )
