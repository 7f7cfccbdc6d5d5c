"""The guardian's receipt for a consent granted or withdrawn, in the guardian's language.

A guardian must be able to see, on paper, what they agreed to: which data is shared, with
which school (by its name), why, from when until when, and how to take it back (the
department by name, with its address, phone and e-mail); and, once withdrawn, what stops
being shared. The names come from the federation's directory in the country profile
(:mod:`childreg.directory`), times are local to the minute in the profile's time zone, and
no identity (SPIFFE id) is shown. The documents are the templates ``consent-grant`` and
``consent-withdrawal`` of :mod:`node.receipts.render` (HTML, PDF, and JSON for programs).

The field list here is the human-readable description of each purpose, written for
guardians and translated through the catalogs (marked with ``N_``); it deliberately imports
nothing from the extract side (the machine policy lives there).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Literal

from childreg import i18n
from childreg.i18n import N_
from childreg.profile import Profile, active
from node.receipts.parties import department_view, school_view
from node.receipts.render import Receipt, render
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


class ConsentReceipts:
    """Makes the receipts of one department's consents (its name and contacts from the
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

    def make(self, consent: StoredConsent, guardian: str, kind: Kind, language: str) -> Receipt:
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


def receipt_html(
    consent: StoredConsent, guardian: str, kind: Kind, *, language: str = "", department: str = ""
) -> str:
    """The receipt as one self-contained printable HTML page (see :class:`ConsentReceipts`)."""
    return ConsentReceipts(department).make(consent, guardian, kind, language).html


def receipt_json(
    consent: StoredConsent, guardian: str, kind: Kind, *, language: str = "", department: str = ""
) -> str:
    """The receipt's content as JSON (sorted keys, UTF-8 text; times in UTC, ISO 8601)."""
    return ConsentReceipts(department).make(consent, guardian, kind, language).json()
