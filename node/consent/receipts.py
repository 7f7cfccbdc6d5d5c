"""The guardian's receipts: a consent granted or withdrawn, a record erased (JSON and HTML).

A guardian must be able to see, on paper, what they agreed to: which data is shared, with
which school, why, from when until when, and how to take it back. Staff print or send
this document at the desk; the JSON carries the same content for other programs.

The field list here is the human-readable description of each purpose, written for
guardians; it deliberately imports nothing from the extract side (the machine policy
lives there). Every value placed in the HTML is escaped. The erasure receipt says what was
erased and what stays (the pseudonym and the audit leaves naming it, tables already
published); it is made from what the erasure read before the child's key was destroyed
(node/records/erasure.py) and is not kept at the node.
"""

from __future__ import annotations

import html
import json
from typing import Final, Literal

from node.records.erasure import Erasure
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


#: Each reason code of an erasure, in words a guardian understands.
ERASE_REASON_TEXT: Final[dict[str, str]] = {
    "guardian_request": "at the guardian's request",
    "registered_in_error": "the record was registered in error",
    "legal_order": "by a legal order",
    "retention_after_closed": "the retention period after the record was closed ended",
    "retention_after_age": "the retention period after the child came of age ended",
}
#: What each count of :attr:`Erasure.erased` is, in words.
ERASED_TEXT: Final[dict[str, str]] = {
    "identity": "the child's identity (names, national id, guardian's name and phone, "
    "date of birth, sex, district)",
    "placements": "placements (where the child was educated)",
    "care_settings": "care settings",
    "assessments": "assessments (functioning, diagnoses, supports, accommodations)",
    "history_steps": "steps of the record's history",
    "consents": "consents to share data with schools (schools can no longer receive data)",
    "emergency_accesses": "emergency (break-glass) accesses and their reasons",
}
KEPT: Final = (
    "the pseudonym below, a code that only this department can link to a child id, "
    "recorded as erased with the time, who erased it and the reason code",
    "the entries of the department's tamper-evident access log that name the pseudonym "
    "(who accessed or changed the record, and when; never its content)",
    "statistics tables already published, which stay as published; tables computed from "
    "now on do not count the child",
)


def erasure_receipt_data(erasure: Erasure) -> dict[str, object]:
    """The erasure receipt's content as a JSON-ready mapping."""
    return {
        "receipt": "erasure",
        "child_id": erasure.child_id,
        "guardian": erasure.guardian,
        "pseudonym": erasure.pseudonym,
        "erased_at": erasure.erased_at,
        "erased_by": erasure.actor,
        "reason": erasure.reason,
        "reason_text": ERASE_REASON_TEXT.get(erasure.reason, erasure.reason),
        "erased": [
            {"what": ERASED_TEXT.get(kind, kind), "kind": kind, "count": count}
            for kind, count in erasure.erased.items()
            if count
        ],
        "kept": list(KEPT),
        "how": "the record's data key was destroyed and its rows overwritten, so no copy "
        "of its protected fields can be opened again, even from a backup",
    }


def erasure_receipt_json(erasure: Erasure) -> str:
    """The erasure receipt as JSON (sorted keys, UTF-8 text)."""
    return json.dumps(erasure_receipt_data(erasure), ensure_ascii=False, sort_keys=True)


def erasure_receipt_html(erasure: Erasure) -> str:
    """The erasure receipt as one self-contained printable HTML page (no external resources)."""
    data = erasure_receipt_data(erasure)

    def e(value: object) -> str:
        return html.escape(str(value), quote=True)

    title = "Record erased"
    rows = [
        ("Child (department id)", data["child_id"]),
        ("Guardian", data["guardian"] or "not recorded"),
        ("Erased at", data["erased_at"]),
        ("Why", f"{data['reason_text']} ({data['reason']})"),
        ("Pseudonym in the access log", data["pseudonym"]),
    ]
    table = "\n".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows)
    erased = "\n".join(
        f"<li>{e(ERASED_TEXT.get(kind, kind))}: {e(count)}</li>"
        for kind, count in erasure.erased.items()
        if count
    )
    kept = "\n".join(f"<li>{e(k)}</li>" for k in KEPT)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{e(title)} — {e(data['pseudonym'])}</title>"
        f"<style>{_STYLE}</style></head><body>\n"
        f"<h1>{e(title)}</h1>\n<p><strong>This child's record is erased.</strong> "
        f"{e(data['how'])}.</p>\n<table>\n{table}\n</table>\n"
        f"<h2>What was erased</h2>\n<ul>\n{erased}\n</ul>\n"
        f"<h2>What stays</h2>\n<ul>\n{kept}\n</ul>\n"
        "<p>To see who accessed the record before it was erased, ask the department for "
        "the access report of the pseudonym above.</p>\n"
        "</body></html>\n"
    )
