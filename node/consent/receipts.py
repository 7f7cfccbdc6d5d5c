"""The guardian's receipts — a consent granted or withdrawn, a record erased — in the
guardian's language.

A guardian must be able to see, on paper, what they agreed to: which data is shared, with
which school (by its name), why, from when until when, and how to take it back (the
department by name, with its address, phone and e-mail); and, once withdrawn, what stops
being shared. The names come from the federation's directory in the country profile
(:mod:`childreg.directory`), times are local to the minute in the profile's time zone, and
no identity (SPIFFE id) is shown. The documents are the templates ``consent-grant`` and
``consent-withdrawal`` of :mod:`node.receipts.render` (HTML, PDF, and JSON for programs).

The erasure receipt (template ``erasure``) says what was erased and what stays (the
pseudonym and the audit leaves naming it, tables already published); it is made from what
the erasure read before the child's key was destroyed (node/records/erasure.py) and is not
kept at the node.

The field list here is the human-readable description of each purpose, written for
guardians and translated through the catalogs (marked with ``N_``); it deliberately imports
nothing from the extract side (the machine policy lives there).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Final, Literal

from childreg import i18n
from childreg.errors import InvalidInput, Violation
from childreg.i18n import N_
from childreg.profile import Profile, active
from node.receipts.parties import department_view, school_view
from node.receipts.render import Receipt, render
from node.records.erasure import Erasure
from node.store.base import StoredConsent

Kind = Literal["grant", "withdrawal"]
KINDS: Final = ("grant", "withdrawal")

#: What each purpose shares, in words a guardian understands.
SHARED_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "iep_preparation": (
        N_("the child's functioning profile (areas of functioning and the difficulty observed)"),
        N_("relevant ICF-CY activity, participation and environmental codes"),
        N_("recommended supports"),
        N_("recommended accommodations and form of education"),
        N_("the date of the assessment and of the next review"),
        N_("the child's given name and birth year (so the school can match the record)"),
    ),
}
PURPOSE_TEXT: Final[dict[str, str]] = {
    "iep_preparation": N_("preparing the child's individual education plan (IEP)"),
}
NEVER_SHARED: Final = N_(
    "health-condition diagnoses, national id number, family, care-setting or benefit data"
)


def receipt_language(language: str, profile: Profile | None = None) -> str:
    """The language a receipt is written in: ``language`` if given (UnknownLanguage if
    childreg does not speak it), else the profile's first language childreg speaks, else
    English."""
    if language:
        return i18n.check_language(language)
    spoken = [lang for lang in (profile or active()).languages if lang in i18n.LANGUAGES]
    return spoken[0] if spoken else i18n.SOURCE_LANGUAGE


#: Each reason code of an erasure, in words a guardian understands.
ERASE_REASON_TEXT: Final[dict[str, str]] = {
    "guardian_request": N_("at the guardian's request"),
    "registered_in_error": N_("the record was registered in error"),
    "legal_order": N_("by a legal order"),
    "retention_after_closed": N_("the retention period after the record was closed ended"),
    "retention_after_age": N_("the retention period after the child came of age ended"),
}
#: What each count of :attr:`Erasure.erased` is, in words.
ERASED_TEXT: Final[dict[str, str]] = {
    "identity": N_(
        "the child's identity (names, national id, guardian's name and phone, "
        "date of birth, sex, district)"
    ),
    "placements": N_("placements (where the child was educated)"),
    "care_settings": N_("care settings"),
    "assessments": N_("assessments (functioning, diagnoses, supports, accommodations)"),
    "history_steps": N_("steps of the record's history"),
    "consents": N_("consents to share data with schools (schools can no longer receive data)"),
    "emergency_accesses": N_("emergency (break-glass) accesses and their reasons"),
}
KEPT: Final = (
    N_(
        "the pseudonym above, a code that only this department can link to a child id, "
        "recorded as erased with the time, who erased it and the reason code"
    ),
    N_(
        "the entries of the department's tamper-evident access log that name the pseudonym "
        "(who accessed or changed the record, and when; never its content)"
    ),
    N_(
        "statistics tables already published, which stay as published; tables computed from "
        "now on do not count the child"
    ),
    N_(
        "the department's backups made before the erasure, encrypted, until they are deleted "
        "in their turn"
    ),
    N_(
        "extracts a school already received under a consent, which stay with that school; "
        "no school can get a new one"
    ),
)
ERASURE_HOW: Final = N_(
    "The record's data key was destroyed and its rows overwritten, so no copy of its "
    "protected fields can be opened again by the department."
)


def checked_language(language: str) -> str:
    """``language`` if empty (the profile's first) or one childreg speaks; InvalidInput
    naming ``language`` otherwise (for a request that carries one)."""
    if language and language not in i18n.LANGUAGES:
        problem = f"unknown language; expected one of: {', '.join(i18n.LANGUAGES)}"
        raise InvalidInput("invalid receipt language", [Violation("language", problem)])
    return language


class DepartmentReceipts:
    """Makes one department's receipts for guardians (its name and contacts from the
    directory of the process's country profile; ``department_name`` where it has none)."""

    def __init__(
        self,
        department_id: str,
        department_name: str = "",
        profile: Callable[[], Profile] = active,
    ) -> None:
        self._department_id = department_id
        self._department_name = department_name
        self._profile = profile

    def department(self, language: str) -> dict[str, str]:
        """The department as its receipts show it: name, address, phone, e-mail."""
        return department_view(
            self._profile(), self._department_id, self._department_name, language
        )

    def school(self, school: str, language: str) -> dict[str, str]:
        """A school as a receipt shows it: its id and its name (its id where the directory
        does not list it; never its identity)."""
        return school_view(self._profile(), school, language)

    def consent(self, consent: StoredConsent, guardian: str, kind: Kind, language: str) -> Receipt:
        """The receipt of a consent's grant or withdrawal in ``language`` ("" for the
        profile's first); ValueError for another kind."""
        if kind not in KINDS:
            raise ValueError("kind must be 'grant' or 'withdrawal'")
        country = self._profile()
        language = receipt_language(language, country)
        context = {
            "consent_id": consent.consent_id,
            "guardian": guardian,
            "child_id": consent.child_id,
            "purpose": consent.purpose,
            "purpose_text": PURPOSE_TEXT.get(consent.purpose, consent.purpose),
            "school": self.school(consent.school, language),
            "department": self.department(language),
            "shared_fields": list(SHARED_FIELDS.get(consent.purpose, ())),
            "never_shared": NEVER_SHARED,
            "valid_from": consent.valid_from,
            "valid_until": consent.valid_until,
            "granted_at": consent.granted_at,
            "withdrawn_at": consent.withdrawn_at,
            "evidence_ref": consent.evidence_ref,
        }
        return render(f"consent-{kind}", language, country.timezone, context)

    def erasure(self, erasure: Erasure, language: str) -> Receipt:
        """The receipt of an erasure in ``language`` ("" for the profile's first): what was
        erased, what stays, whom to ask (never who erased it: an identity)."""
        country = self._profile()
        language = receipt_language(language, country)
        context = {
            "child_id": erasure.child_id,
            "guardian": erasure.guardian,
            "pseudonym": erasure.pseudonym,
            "erased_at": _moment(erasure.erased_at),
            "reason": erasure.reason,
            "reason_text": ERASE_REASON_TEXT.get(erasure.reason, erasure.reason),
            "erased": [
                {"what": ERASED_TEXT.get(kind, kind), "kind": kind, "count": count}
                for kind, count in erasure.erased.items()
                if count
            ],
            "kept": list(KEPT),
            "how": ERASURE_HOW,
            "department": self.department(language),
        }
        return render("erasure", language, country.timezone, context)


def _moment(text: str) -> dt.datetime:
    """A UTC time as leaves write it (``2026-12-07T12:00:00Z``) as an aware datetime."""
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)
