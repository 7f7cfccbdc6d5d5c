"""The record-changing console pages in-process: each action changes the record through
the registry or consent desk and leaves exactly one leaf of the gRPC door's action, with
the person as actor; bad input re-shows the form and changes nothing."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from childreg.csvformat import record_to_row, write_rows
from childreg.errors import NotFound
from childreg.i18n import translations
from childreg.models import ChildIn, ImportRecord, PlacementIn
from childreg.profile import active, current_academic_year
from node.console.pages.consents import ReceiptShelf
from node.receipts.render import Receipt
from tests.unit.node.console.conftest import Harness
from tests.unit.node.console.test_pages import leaves, register

ACTOR = "department-staff/baku.aysel"


def signed_in_on_child(harness: Harness) -> str:
    """Register C1, sign a staff member in, find C1; the child's handle."""
    register(harness)
    harness.sign_in(harness.add("aysel"))
    found = harness.client.post("/search", data={"csrf": harness.csrf("/search"),
                                                 "name": "Aysel Mammadova"})  # fmt: skip
    match = re.search(r'href="/child/([0-9a-f]{32})"', found.text)
    assert match is not None, found.text
    return match.group(1)


def new_leaves(harness: Harness, start: int) -> list[tuple[str, str, str]]:
    """(action, actor, purpose) of the leaves appended since ``start``."""
    return [(e.action, e.actor, e.purpose) for e in leaves(harness)[start:]]


def post(harness: Harness, path: str, **form: str | list[str]) -> object:
    """POST ``form`` (with the session's CSRF token) to ``path``; the answer."""
    return harness.client.post(path, data={"csrf": harness.csrf("/search"), **form})


def test_registering_a_new_child_opens_its_record(harness: Harness) -> None:
    """A child like none held is registered at once, with one child.register leaf."""
    harness.sign_in(harness.add("aysel"))
    start = len(leaves(harness))
    answer = harness.client.post("/register", data={
        "csrf": harness.csrf("/register"), "child_id": "C9", "given_name": "Leyla",
        "family_name": "Huseynova", "date_of_birth": "2015-02-03", "sex": "female",
        "district": "yasamal",
    })  # fmt: skip
    assert answer.url.path.startswith("/child/")
    assert harness.console.registry.get_child("C9").child.given_name == "Leyla"
    assert new_leaves(harness, start)[0] == ("child.register", ACTOR, "")


def test_a_likely_duplicate_is_shown_and_registered_only_with_a_reason(harness: Harness) -> None:
    """A look-alike is held back and shown; confirming without a reason is refused; with one
    it is registered; each POST is one child.register leaf (duplicates-shown, not-duplicate)."""
    register(harness)
    harness.sign_in(harness.add("aysel"))
    form = {"child_id": "C2", "given_name": "Aysel", "family_name": "Mamedova",
            "date_of_birth": "2016-05-04", "sex": "female", "district": "nasimi"}  # fmt: skip
    start = len(leaves(harness))
    shown = post(harness, "/register", **form)
    assert shown.status_code == 200  # type: ignore[attr-defined]
    assert "Mammadova" in shown.text  # type: ignore[attr-defined]
    assert 'id="register-confirm"' in shown.text  # type: ignore[attr-defined]
    assert harness.store.get_child("C2") is None
    refused = post(harness, "/register", confirm="1", **form)
    assert refused.status_code == 400  # type: ignore[attr-defined]
    done = post(harness, "/register", confirm="1", not_duplicate_reason="twin sister", **form)
    assert done.url.path.startswith("/child/")  # type: ignore[attr-defined]
    assert harness.store.get_child("C2") is not None
    assert [a[2] for a in new_leaves(harness, start) if a[0] == "child.register"] == [
        "duplicates-shown",
        "not-duplicate",
    ]


def test_a_bad_registration_names_the_field_and_writes_nothing(harness: Harness) -> None:
    """A registration without a family name is re-shown with its problem and no leaf."""
    harness.sign_in(harness.add("aysel"))
    start = len(leaves(harness))
    answer = harness.client.post("/register", data={
        "csrf": harness.csrf("/register"), "child_id": "C9", "given_name": "Leyla",
        "date_of_birth": "2015-02-03", "sex": "female", "district": "yasamal",
    })  # fmt: skip
    assert answer.status_code == 400
    assert "family_name" in answer.text
    assert harness.store.get_child("C9") is None
    assert new_leaves(harness, start) == []


def test_the_assessment_form_records_codes_and_qualifiers(harness: Harness) -> None:
    """Functioning levels, an ICF-CY code with its qualifier and supports are recorded,
    with one assessment.record leaf."""
    handle = signed_in_on_child(harness)
    form = harness.client.get(f"/child/{handle}/assessment")
    assert 'for="fn_seeing"' in form.text
    assert 'name="supports"' in form.text
    start = len(leaves(harness))
    answer = post(harness, f"/child/{handle}/assessment", assessment_date="2024-03-01",
                  commission="Baku PMPC", fn_seeing="some_difficulty", fn_anxiety="weekly",
                  icf_0="d160", icf_0_q="2", supports=["braille", "transport"])  # fmt: skip
    assert answer.url.path == f"/child/{handle}"  # type: ignore[attr-defined]
    (a,) = harness.console.registry.get_child("C1").assessments
    assert a.icf_codes == ("d160.2",)
    assert {(f.domain, f.level) for f in a.functioning} == {
        ("seeing", "some_difficulty"),
        ("anxiety", "weekly"),
    }
    assert a.supports == ("braille", "transport")
    assert new_leaves(harness, start)[0] == ("assessment.record", ACTOR, "")


def test_a_bad_icf_code_is_named_and_nothing_recorded(harness: Harness) -> None:
    """An ICF-CY code outside the pattern re-shows the form naming icf_codes."""
    handle = signed_in_on_child(harness)
    answer = post(harness, f"/child/{handle}/assessment", assessment_date="2024-03-01",
                  commission="Baku PMPC", icf_0="x99")  # fmt: skip
    assert answer.status_code == 400  # type: ignore[attr-defined]
    assert "icf_codes" in answer.text  # type: ignore[attr-defined]
    assert harness.console.registry.get_child("C1").assessments == ()


def test_changing_a_care_setting_again_needs_a_reason(harness: Harness) -> None:
    """A care setting is recorded; re-recording that date differently is refused without a
    reason and accepted with one; one care_setting.record leaf per POST."""
    handle = signed_in_on_child(harness)
    start = len(leaves(harness))
    first = post(harness, f"/child/{handle}/care", care_setting="family", since="2023-01-01")
    assert first.url.path == f"/child/{handle}"  # type: ignore[attr-defined]
    again = {"care_setting": "foster_family", "since": "2023-01-01"}
    refused = post(harness, f"/child/{handle}/care", **again)
    assert refused.status_code == 400  # type: ignore[attr-defined]
    assert "reason" in refused.text  # type: ignore[attr-defined]
    post(harness, f"/child/{handle}/care", reason="recorded wrongly", **again)
    (care,) = harness.console.registry.get_child("C1").care_settings
    assert care.care_setting == "foster_family"
    changes = [a[0] for a in new_leaves(harness, start) if a[0] != "child.read"]  # redirects
    assert changes == ["care_setting.record"] * 3


def test_a_placement_is_recorded_for_the_current_year_by_default(harness: Harness) -> None:
    """The form proposes the current academic year; posting it records the placement."""
    handle = signed_in_on_child(harness)
    year = current_academic_year()
    assert year in harness.client.get(f"/child/{handle}/placement").text
    post(harness, f"/child/{handle}/placement", academic_year=year,
         education_form="inclusive_class", institution="School 17")  # fmt: skip
    (p,) = harness.console.registry.get_child("C1").placements
    assert (p.academic_year, p.education_form) == (year, "inclusive_class")


def test_a_correction_needs_a_reason_and_keeps_the_old_value(harness: Harness) -> None:
    """A name is corrected only with a reason; the history holds the old value."""
    handle = signed_in_on_child(harness)
    refused = post(harness, f"/child/{handle}/correct", family_name="Mammadli")
    assert refused.status_code == 400  # type: ignore[attr-defined]
    start = len(leaves(harness))
    post(harness, f"/child/{handle}/correct", family_name="Mammadli", reason="passport spelling")
    assert harness.console.registry.get_child("C1").child.family_name == "Mammadli"
    entry = harness.console.registry.history("C1").entries[-1]
    assert (entry.kind, entry.reason) == ("corrected", "passport spelling")
    assert new_leaves(harness, start)[0] == ("child.correct", ACTOR, "")


def test_closing_a_record_with_a_reason_and_date(harness: Harness) -> None:
    """Closing records the date and reason, with one child.close leaf."""
    handle = signed_in_on_child(harness)
    start = len(leaves(harness))
    post(harness, f"/child/{handle}/close", closed_on="2024-06-30", close_reason="moved_abroad")
    view = harness.console.registry.get_child("C1")
    assert (view.closed_on, view.close_reason) == (dt.date(2024, 6, 30), "moved_abroad")
    assert new_leaves(harness, start)[0] == ("child.close", ACTOR, "")


def test_a_consent_is_granted_with_a_pdf_receipt_and_withdrawn(harness: Harness) -> None:
    """Granting shows the receipt and a one-time PDF download; withdrawing shows the
    withdrawal receipt; one consent.grant and one consent.withdraw leaf."""
    handle = signed_in_on_child(harness)
    today = dt.date.today()
    start = len(leaves(harness))
    shown = post(harness, f"/child/{handle}/consent", guardian_name="Rena Mammadova",
                 purpose="iep_preparation", school="school-17", valid_from=today.isoformat(),
                 valid_until=(today + dt.timedelta(days=300)).isoformat(),
                 evidence_ref="form 12/2026", language="az")  # fmt: skip
    assert shown.status_code == 200, shown.text  # type: ignore[attr-defined]
    assert "Rena Mammadova" in shown.text  # type: ignore[attr-defined]
    ticket = re.search(r'name="receipt" value="([^"]+)"', shown.text)  # type: ignore[attr-defined]
    assert ticket is not None
    pdf = post(harness, "/receipt.pdf", receipt=ticket.group(1))
    assert pdf.headers["content-type"] == "application/pdf"  # type: ignore[attr-defined]
    assert pdf.content.startswith(b"%PDF")  # type: ignore[attr-defined]
    assert pdf.headers["cache-control"] == "no-store"  # type: ignore[attr-defined]
    again = post(harness, "/receipt.pdf", receipt=ticket.group(1))
    assert again.status_code == 404  # type: ignore[attr-defined]
    (consent,) = harness.console.consents.list("C1")
    listed = harness.client.get(f"/child/{handle}/consents")
    assert consent.consent_id in listed.text
    post(harness, f"/child/{handle}/consents", consent_id=consent.consent_id)
    (consent,) = harness.console.consents.list("C1")
    assert consent.withdrawn_at is not None
    assert [a[0] for a in new_leaves(harness, start)] == [
        "consent.grant",
        "child.read",
        "consent.withdraw",
    ]


def import_file(tmp_path: Path, bad_lines: tuple[int, ...] = ()) -> bytes:
    """An import file of four children; the rows at ``bad_lines`` (2-5) lack a sex."""
    rows = []
    for n in range(4):
        born = dt.date(2014, 1, 1 + n)
        child = ChildIn(child_id=f"I{n}", given_name="Murad", family_name=f"Aliyev{n}",
                        date_of_birth=born, sex="male", district="nasimi")  # fmt: skip
        placement = PlacementIn(child_id=f"I{n}", academic_year=current_academic_year(),
                                education_form="mainstream_class")  # fmt: skip
        row = record_to_row(ImportRecord(line=n + 2, child=child, placement=placement))
        if n + 2 in bad_lines:
            row["sex"] = "unknown"
        rows.append(row)
    path = tmp_path / "import.csv"
    write_rows(path, rows)
    return path.read_bytes()


def test_an_import_with_bad_rows_lists_each_and_writes_nothing(
    harness: Harness, tmp_path: Path
) -> None:
    """Two bad rows are both listed with their line numbers and nothing is imported; a
    good file is imported; each upload is one records.import leaf."""
    harness.sign_in(harness.add("aysel"))
    start = len(leaves(harness))
    files = {"file": ("children.csv", import_file(tmp_path, (3, 5)), "text/csv")}
    answer = harness.client.post("/import", data={"csrf": harness.csrf("/import")}, files=files)
    assert answer.status_code == 400
    lines = re.findall(r'<tr class="bad-row"><td>(\d+)</td><td>sex</td>', answer.text)
    assert lines == ["3", "5"]
    assert harness.store.get_child("I0") is None
    files = {"file": ("children.csv", import_file(tmp_path), "text/csv")}
    done = harness.client.post("/import", data={"csrf": harness.csrf("/import")}, files=files)
    assert 'id="imported"' in done.text
    assert "4" in done.text
    assert harness.store.get_child("I3") is not None
    assert [a[0] for a in new_leaves(harness, start)] == ["records.import"] * 2


def test_emergency_access_needs_a_reason_and_shows_the_record(harness: Harness) -> None:
    """A reason too short is refused; with a reason the record is shown and one
    breakglass.read leaf with purpose emergency is kept."""
    register(harness)
    harness.sign_in(harness.add("aysel"))
    refused = post(harness, "/emergency", child_id="C1", reason="x")
    assert refused.status_code == 400  # type: ignore[attr-defined]
    start = len(leaves(harness))
    shown = post(harness, "/emergency", child_id="C1", reason="child taken ill at school")
    assert "Mammadova" in shown.text  # type: ignore[attr-defined]
    assert new_leaves(harness, start) == [("breakglass.read", ACTOR, "emergency")]


def test_the_counts_page_shows_exact_internal_counts(harness: Harness, tmp_path: Path) -> None:
    """The counts page totals the children placed this year, says they are not published
    statistics, and leaves one statistics.count leaf; a bad year is named."""
    harness.sign_in(harness.add("aysel"))
    files = {"file": ("children.csv", import_file(tmp_path), "text/csv")}
    harness.client.post("/import", data={"csrf": harness.csrf("/import")}, files=files)
    start = len(leaves(harness))
    page = harness.client.get("/counts")
    assert re.search(r'id="counts-total">4<', page.text)
    assert "not published statistics" in page.text
    assert new_leaves(harness, start) == [("statistics.count", ACTOR, "")]
    assert harness.client.get("/counts", params={"academic_year": "2024/26"}).status_code == 400


def test_a_receipt_handle_is_for_its_own_session_and_once() -> None:
    """Another session's handle is refused, a handle works once, and the oldest are dropped."""
    shelf = ReceiptShelf(kept=2)
    receipt = Receipt("consent-grant", "en", "<p>r</p>", {})
    first = shelf.put("session-a", receipt, "cns_1")
    with pytest.raises(NotFound):
        shelf.take("session-b", first)
    assert shelf.take("session-a", first) == (receipt, "cns_1")
    with pytest.raises(NotFound):
        shelf.take("session-a", first)
    old = shelf.put("session-a", receipt, "cns_2")
    shelf.put("session-a", receipt, "cns_3")
    shelf.put("session-a", receipt, "cns_4")
    with pytest.raises(NotFound):
        shelf.take("session-a", old)


def test_the_forms_speak_the_persons_language_with_code_names(harness: Harness) -> None:
    """An Azerbaijani-speaking person sees the registration and assessment forms in
    Azerbaijani, code lists by their Azerbaijani names from the country profile."""
    register(harness)
    harness.sign_in(harness.add("aysel", language="az"))
    az = translations("az").gettext
    assert az("Register a child") != "Register a child"
    assert az("Register a child") in harness.client.get("/register").text
    found = post(harness, "/search", name="Aysel Mammadova")
    handle = re.search(r'href="/child/([0-9a-f]{32})"', found.text)  # type: ignore[attr-defined]
    assert handle is not None
    form = harness.client.get(f"/child/{handle.group(1)}/assessment").text
    assert az("Record the assessment") in form
    seeing = active().code_name("functioning_domain", "seeing", "az")
    assert seeing != "seeing"
    assert f">{seeing}<" in form


def test_the_childs_page_names_codes_and_districts_in_the_persons_language(
    harness: Harness,
) -> None:
    """The child's page shows the form of education, sex and district by their names in
    the person's language from the country profile, never the bare codes."""
    register(harness)
    harness.sign_in(harness.add("aysel", language="az"))
    found = post(harness, "/search", name="Aysel Mammadova")
    match = re.search(r'href="/child/([0-9a-f]{32})"', found.text)  # type: ignore[attr-defined]
    assert match is not None
    handle = match.group(1)
    post(harness, f"/child/{handle}/placement", academic_year=current_academic_year(),
         education_form="inclusive_class", institution="School 17")  # fmt: skip
    page = harness.client.get(f"/child/{handle}").text
    profile = active()
    child = harness.console.registry.get_child("C1").child
    inclusive = profile.code_name("education_form", "inclusive_class", "az")
    assert inclusive != "inclusive_class"
    assert f"<td>{inclusive}</td>" in page
    assert f"<dd>{profile.code_name('sex', child.sex, 'az')}</dd>" in page
    assert f"<dd>{profile.unit_name(child.district, 'az')}</dd>" in page
    assert "<td>inclusive_class</td>" not in page
