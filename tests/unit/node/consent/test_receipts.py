"""The guardian's receipts (node/consent/receipts.py over node/receipts/render.py).

Each receipt is rendered from its template in the guardian's language and names the school
and the department as the country profile's directory names them; the PDF is a real PDF
whose text (read back with pypdf) keeps Azerbaijani and Cyrillic letters.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any

import pytest
from pypdf import PdfReader

from childreg import i18n
from childreg.profile import Profile, embedded, parse_profile
from node.consent.receipts import DepartmentReceipts, receipt_language
from node.records.erasure import Erasure
from node.store.base import StoredConsent
from tools.dev.directory import with_directory

SCHOOL = "spiffe://az.childreg/school/school-17"
GUARDIAN = "Zülfiyyə Şükürova"
#: 09:30:12 UTC is 13:30 in Baku (UTC+4).
GRANTED = dt.datetime(2025, 3, 1, 9, 30, 12, 345678, tzinfo=dt.UTC)
WITHDRAWN = dt.datetime(2025, 4, 2, 16, 5, 59, tzinfo=dt.UTC)
SCHOOL_NAMES = {
    "az": "Göyçay şəhər Üzeyir Hacıbəyli adına 17 nömrəli Çağlayan məktəbi",
    "ru": "Школа № 17 имени Узеира Гаджибейли, г. Гёйчай",
    "en": "Uzeyir Hajibeyli School No. 17, Goychay",
}
DEPARTMENT_NAMES = {
    "az": "Binəqədi rayon Təhsil Şöbəsi",
    "ru": "Отдел образования Бинагадинского района",
    "en": "Binagadi District Education Department",
}
ADDRESS = {
    "az": "Binəqədi qəsəbəsi, Şəhriyar küçəsi 12",
    "ru": "посёлок Бинагади, улица Шахрияра, 12",
    "en": "12 Shahriyar Street, Binagadi",
}
PHONE = "+994 12 555 01 17"
EMAIL = "binagadi@example.org"
GRANTED_HEADING = {"en": "Consent granted", "ru": "Согласие дано", "az": "Razılıq verildi"}
WITHDRAWN_HEADING = {
    "en": "Consent withdrawn",
    "ru": "Согласие отозвано",
    "az": "Razılıq geri götürüldü",
}


def directory_profile() -> Profile:
    """The Azerbaijan profile with one department and one school in its directory."""
    data: dict[str, Any] = embedded().canonical_object()
    data["directory"] = {
        "departments": [
            {
                "id": "binagadi",
                "names": DEPARTMENT_NAMES,
                "address": ADDRESS,
                "phone": PHONE,
                "email": EMAIL,
            }
        ],
        "schools": [{"id": "school-17", "names": SCHOOL_NAMES}],
    }
    return parse_profile(data)


@pytest.fixture
def receipts() -> DepartmentReceipts:
    """Receipts of department ``binagadi`` over the directory profile."""
    profile = directory_profile()
    return DepartmentReceipts("binagadi", "Binagadi (config name)", profile=lambda: profile)


def consent(withdrawn: dt.datetime | None = None, school: str = SCHOOL) -> StoredConsent:
    """A stored consent granted at GRANTED (withdrawn at ``withdrawn`` if given)."""
    return StoredConsent(
        consent_id="cns_" + "5" * 32,
        child_id="C1",
        purpose="iep_preparation",
        school=school,
        valid_from=dt.date(2025, 3, 1),
        valid_until=dt.date(2026, 2, 28),
        evidence_ref="folder 12, form 2025/031",
        granted_at=GRANTED,
        granted_by="spiffe://az.childreg/department-staff/binagadi.registrar",
        grant_hash=b"h" * 32,
        sealed_guardian=b"",
        withdrawn_at=withdrawn,
    )


def pdf_text(pdf: bytes) -> str:
    """The text of every page of a PDF, whitespace collapsed."""
    reader = PdfReader(io.BytesIO(pdf))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


@pytest.mark.parametrize("language", ["en", "ru", "az"])
def test_grant_receipt_names_school_and_department_in_the_guardians_language(
    receipts: DepartmentReceipts, language: str
) -> None:
    """The grant receipt is in the guardian's language, names school and department by
    name with the department's address, phone and e-mail, and shows no identity."""
    page = receipts.consent(consent(), GUARDIAN, "grant", language).html
    assert f'<html lang="{language}">' in page
    assert GRANTED_HEADING[language] in page
    assert SCHOOL_NAMES[language] in page
    assert DEPARTMENT_NAMES[language] in page
    assert ADDRESS[language] in page
    assert PHONE in page
    assert EMAIL in page
    assert "spiffe://" not in page
    assert i18n.gettext(language, "How to withdraw") in page


@pytest.mark.parametrize("language", ["en", "ru", "az"])
def test_receipt_times_are_local_to_the_minute(receipts: DepartmentReceipts, language: str) -> None:
    """Times are the profile's local time (Asia/Baku, UTC+4) to the minute, not UTC to the
    microsecond."""
    page = receipts.consent(consent(WITHDRAWN), GUARDIAN, "withdrawal", language).html
    assert i18n.format_datetime(GRANTED, language, "Asia/Baku") in page
    granted, withdrawn = ("1:30", "8:05") if language == "en" else ("13:30", "20:05")
    assert granted in page
    assert withdrawn in page  # 16:05 UTC
    assert "9:30" not in page
    assert "345678" not in page
    assert "Asia/Baku" in page


@pytest.mark.parametrize("language", ["en", "ru", "az"])
def test_withdrawal_receipt_says_what_stops_being_shared(
    receipts: DepartmentReceipts, language: str
) -> None:
    """The withdrawal receipt lists what stops being shared, never "What is shared"."""
    page = receipts.consent(consent(WITHDRAWN), GUARDIAN, "withdrawal", language).html
    assert WITHDRAWN_HEADING[language] in page
    assert i18n.gettext(language, "What stops being shared") in page
    assert i18n.gettext(language, "What is shared") not in page
    assert SCHOOL_NAMES[language] in page
    assert DEPARTMENT_NAMES[language] in page


def test_russian_and_azerbaijani_receipts_are_translated(receipts: DepartmentReceipts) -> None:
    """No English heading or list item is left in a Russian or Azerbaijani receipt."""
    for language in ("ru", "az"):
        page = receipts.consent(consent(), GUARDIAN, "grant", language).html
        for english in ("What is shared", "How to withdraw", "recommended supports", "Guardian"):
            assert english not in page


def test_pdf_is_a_real_pdf_with_azerbaijani_and_cyrillic_letters_intact(
    receipts: DepartmentReceipts,
) -> None:
    """The PDF opens with pypdf, and its text holds the names with ə ğ ı ö ş ü ç and
    Cyrillic letters as written."""
    az = receipts.consent(consent(), GUARDIAN, "grant", "az").pdf()
    assert az.startswith(b"%PDF-")
    text = pdf_text(az)
    for needle in (SCHOOL_NAMES["az"], DEPARTMENT_NAMES["az"], GUARDIAN, "Razılıq verildi"):
        assert needle in text
    ru = pdf_text(receipts.consent(consent(WITHDRAWN), GUARDIAN, "withdrawal", "ru").pdf())
    for needle in (SCHOOL_NAMES["ru"], DEPARTMENT_NAMES["ru"], "Что перестаёт передаваться"):
        assert needle in ru
    assert "spiffe" not in text + ru


def test_json_receipt_names_the_school_and_carries_no_identity(
    receipts: DepartmentReceipts,
) -> None:
    """The JSON form has the school's and department's names and the language, no SPIFFE id."""
    text = receipts.consent(consent(), GUARDIAN, "grant", "ru").json()
    data = json.loads(text)
    assert data["school"] == {"id": "school-17", "name": SCHOOL_NAMES["ru"]}
    assert data["department"]["name"] == DEPARTMENT_NAMES["ru"]
    assert data["language"] == "ru"
    assert data["receipt"] == "consent-grant"
    assert "spiffe://" not in text


def test_a_school_missing_from_the_directory_is_named_by_its_id(
    receipts: DepartmentReceipts,
) -> None:
    """A school the directory lacks is shown by its id, never by its identity."""
    page = receipts.consent(
        consent(school="spiffe://az.childreg/school/other-school"), GUARDIAN, "grant", "en"
    ).html
    assert "other-school" in page
    assert "spiffe://" not in page


def test_a_department_missing_from_the_directory_is_named_as_configured() -> None:
    """Without a directory entry the department's configured name is shown."""
    page = DepartmentReceipts("nowhere", "Nowhere Education Office").consent(
        consent(), GUARDIAN, "grant", "en"
    )
    assert "Nowhere Education Office" in page.html


def test_the_default_language_is_the_profiles_first() -> None:
    """No language chosen: the profile's first language (az for Azerbaijan, kk for
    Kazakhstan); an unknown language is refused."""
    assert receipt_language("", embedded("az")) == "az"
    assert receipt_language("", embedded("kz")) == "kk"
    assert receipt_language("ru", embedded("az")) == "ru"
    with pytest.raises(i18n.UnknownLanguage):
        receipt_language("xx", embedded("az"))


def test_receipt_html_escapes_values(receipts: DepartmentReceipts) -> None:
    """A guardian's name or evidence reference cannot inject markup."""
    evil = consent()
    evil = StoredConsent(**{**evil.__dict__, "evidence_ref": '<script>alert("x")</script>'})
    page = receipts.consent(evil, "A & <b>B</b>", "grant", "en").html
    assert "<script>" not in page
    assert "<b>B</b>" not in page
    assert "&lt;script&gt;" in page
    assert "A &amp; &lt;b&gt;B&lt;/b&gt;" in page


def test_an_unknown_kind_is_refused(receipts: DepartmentReceipts) -> None:
    """Only grant and withdrawal receipts exist for a consent."""
    with pytest.raises(ValueError, match="kind"):
        receipts.consent(consent(), GUARDIAN, "erasure", "en")  # type: ignore[arg-type]


def test_a_kazakhstan_receipt_is_in_kazakh_in_almaty_time() -> None:
    """With no language chosen a Kazakhstan receipt is in Kazakh, its times in Asia/Almaty
    (UTC+5 since March 2024), the school named from the directory in Kazakh."""
    country = with_directory(embedded("kz"), [("almaty", "almaty")], [("school-1", "almaty_medeu")])
    receipts = DepartmentReceipts("almaty", profile=lambda: country)
    page = receipts.consent(
        consent(school="spiffe://kz.childreg/school/school-1"), GUARDIAN, "grant", ""
    ).html
    assert '<html lang="kk">' in page
    assert "Келісім берілді" in page
    assert "14:30" in page  # 09:30 UTC
    school = country.school("school-1")
    assert school is not None
    assert school.names["kk"] in page
    assert "spiffe://" not in page


def erasure(guardian: str | None = GUARDIAN) -> Erasure:
    """What an erasure of child C1 at 09:30:12 UTC did."""
    return Erasure(
        child_id="C1",
        pseudonym="ab" * 32,
        erased_at="2025-03-01T09:30:12Z",
        actor="spiffe://az.childreg/department-staff/binagadi.registrar",
        reason="guardian_request",
        guardian=guardian,
        erased={"identity": 1, "placements": 2, "consents": 0},
    )


@pytest.mark.parametrize(
    ("language", "heading"),
    [("en", "Record erased"), ("ru", "Запись удалена"), ("az", "Qeyd silindi")],
)
def test_erasure_receipt_in_the_guardians_language(
    receipts: DepartmentReceipts, language: str, heading: str
) -> None:
    """The erasure receipt is in the guardian's language, names the department by name with
    its contacts, gives the local time to the minute, lists only what was erased, and shows
    no identity (not who erased it)."""
    receipt = receipts.erasure(erasure(), language)
    page = receipt.html
    assert heading in page
    assert DEPARTMENT_NAMES[language] in page
    assert PHONE in page
    assert i18n.format_datetime(GRANTED.replace(microsecond=0), language, "Asia/Baku") in page
    assert i18n.gettext(language, "placements (where the child was educated)") + ": 2" in page
    assert i18n.gettext(language, "care settings") not in page  # nothing of it was erased
    assert "ab" * 32 in page
    assert "spiffe://" not in page
    assert "spiffe://" not in receipt.json()
    assert json.loads(receipt.json())["receipt"] == "erasure"


def test_erasure_receipt_pdf_keeps_azerbaijani_letters(receipts: DepartmentReceipts) -> None:
    """The erasure receipt's PDF text holds the Azerbaijani heading and names intact."""
    text = pdf_text(receipts.erasure(erasure(), "az").pdf())
    for needle in ("Qeyd silindi", DEPARTMENT_NAMES["az"], GUARDIAN):
        assert needle in text


def test_an_erasure_without_a_guardian_says_not_recorded(receipts: DepartmentReceipts) -> None:
    """A child registered without a guardian's name gets "not recorded" in its place."""
    page = receipts.erasure(erasure(guardian=None), "ru").html
    assert "не указан" in page
    assert "None" not in page
