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
from node.consent.receipts import ConsentReceipts, receipt_language
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
def receipts() -> ConsentReceipts:
    """Receipts of department ``binagadi`` over the directory profile."""
    profile = directory_profile()
    return ConsentReceipts("binagadi", "Binagadi (config name)", profile=lambda: profile)


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
    receipts: ConsentReceipts, language: str
) -> None:
    """The grant receipt is in the guardian's language, names school and department by
    name with the department's address, phone and e-mail, and shows no identity."""
    page = receipts.make(consent(), GUARDIAN, "grant", language).html
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
def test_receipt_times_are_local_to_the_minute(receipts: ConsentReceipts, language: str) -> None:
    """Times are the profile's local time (Asia/Baku, UTC+4) to the minute, not UTC to the
    microsecond."""
    page = receipts.make(consent(WITHDRAWN), GUARDIAN, "withdrawal", language).html
    assert i18n.format_datetime(GRANTED, language, "Asia/Baku") in page
    granted, withdrawn = ("1:30", "8:05") if language == "en" else ("13:30", "20:05")
    assert granted in page
    assert withdrawn in page  # 16:05 UTC
    assert "9:30" not in page
    assert "345678" not in page
    assert "Asia/Baku" in page


@pytest.mark.parametrize("language", ["en", "ru", "az"])
def test_withdrawal_receipt_says_what_stops_being_shared(
    receipts: ConsentReceipts, language: str
) -> None:
    """The withdrawal receipt lists what stops being shared, never "What is shared"."""
    page = receipts.make(consent(WITHDRAWN), GUARDIAN, "withdrawal", language).html
    assert WITHDRAWN_HEADING[language] in page
    assert i18n.gettext(language, "What stops being shared") in page
    assert i18n.gettext(language, "What is shared") not in page
    assert SCHOOL_NAMES[language] in page
    assert DEPARTMENT_NAMES[language] in page


def test_russian_and_azerbaijani_receipts_are_translated(receipts: ConsentReceipts) -> None:
    """No English heading or list item is left in a Russian or Azerbaijani receipt."""
    for language in ("ru", "az"):
        page = receipts.make(consent(), GUARDIAN, "grant", language).html
        for english in ("What is shared", "How to withdraw", "recommended supports", "Guardian"):
            assert english not in page


def test_pdf_is_a_real_pdf_with_azerbaijani_and_cyrillic_letters_intact(
    receipts: ConsentReceipts,
) -> None:
    """The PDF opens with pypdf, and its text holds the names with ə ğ ı ö ş ü ç and
    Cyrillic letters as written."""
    az = receipts.make(consent(), GUARDIAN, "grant", "az").pdf()
    assert az.startswith(b"%PDF-")
    text = pdf_text(az)
    for needle in (SCHOOL_NAMES["az"], DEPARTMENT_NAMES["az"], GUARDIAN, "Razılıq verildi"):
        assert needle in text
    ru = pdf_text(receipts.make(consent(WITHDRAWN), GUARDIAN, "withdrawal", "ru").pdf())
    for needle in (SCHOOL_NAMES["ru"], DEPARTMENT_NAMES["ru"], "Что перестаёт передаваться"):
        assert needle in ru
    assert "spiffe" not in text + ru


def test_json_receipt_names_the_school_and_carries_no_identity(receipts: ConsentReceipts) -> None:
    """The JSON form has the school's and department's names and the language, no SPIFFE id."""
    text = receipts.make(consent(), GUARDIAN, "grant", "ru").json()
    data = json.loads(text)
    assert data["school"] == {"id": "school-17", "name": SCHOOL_NAMES["ru"]}
    assert data["department"]["name"] == DEPARTMENT_NAMES["ru"]
    assert data["language"] == "ru"
    assert data["receipt"] == "consent-grant"
    assert "spiffe://" not in text


def test_a_school_missing_from_the_directory_is_named_by_its_id(
    receipts: ConsentReceipts,
) -> None:
    """A school the directory lacks is shown by its id, never by its identity."""
    page = receipts.make(
        consent(school="spiffe://az.childreg/school/other-school"), GUARDIAN, "grant", "en"
    ).html
    assert "other-school" in page
    assert "spiffe://" not in page


def test_a_department_missing_from_the_directory_is_named_as_configured() -> None:
    """Without a directory entry the department's configured name is shown."""
    page = ConsentReceipts("nowhere", "Nowhere Education Office").make(
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


def test_receipt_html_escapes_values(receipts: ConsentReceipts) -> None:
    """A guardian's name or evidence reference cannot inject markup."""
    evil = consent()
    evil = StoredConsent(**{**evil.__dict__, "evidence_ref": '<script>alert("x")</script>'})
    page = receipts.make(evil, "A & <b>B</b>", "grant", "en").html
    assert "<script>" not in page
    assert "<b>B</b>" not in page
    assert "&lt;script&gt;" in page
    assert "A &amp; &lt;b&gt;B&lt;/b&gt;" in page


def test_an_unknown_kind_is_refused(receipts: ConsentReceipts) -> None:
    """Only grant and withdrawal receipts exist for a consent."""
    with pytest.raises(ValueError, match="kind"):
        receipts.make(consent(), GUARDIAN, "erasure", "en")  # type: ignore[arg-type]


def test_a_kazakhstan_receipt_is_in_kazakh_in_almaty_time() -> None:
    """With no language chosen a Kazakhstan receipt is in Kazakh, its times in Asia/Almaty
    (UTC+5 since March 2024), the school named from the directory in Kazakh."""
    country = with_directory(embedded("kz"), [("almaty", "almaty")], [("school-1", "almaty_medeu")])
    receipts = ConsentReceipts("almaty", profile=lambda: country)
    page = receipts.make(
        consent(school="spiffe://kz.childreg/school/school-1"), GUARDIAN, "grant", ""
    ).html
    assert '<html lang="kk">' in page
    assert "Келісім берілді" in page
    assert "14:30" in page  # 09:30 UTC
    school = country.school("school-1")
    assert school is not None
    assert school.names["kk"] in page
    assert "spiffe://" not in page
