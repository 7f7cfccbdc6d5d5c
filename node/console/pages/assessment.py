"""The assessment form, built from the code lists: functioning domains with their
difficulty (or frequency) levels, ICF-CY codes with qualifiers, diagnoses, the impairment
band, the recommended form of education, supports and accommodations, the next review.

Every choice is a code of :mod:`childreg.codes` shown by its name in the person's language;
one POST is one ``assessment.record`` leaf, as the gRPC RecordAssessment makes.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import ValidationError
from starlette.responses import Response

from childreg import codes
from childreg.errors import Violation
from childreg.models import AssessmentIn, violations_of
from childreg.signed import canonical_json
from node.console.pages.forms import change_then_child, given, optional, options, render
from node.console.web import Page, Routes

routes = Routes()
#: How many ICF-CY code rows the form offers.
ICF_ROWS: Final = 6
#: ICF qualifiers: 0-4 the extent of the problem, 8 not specified, 9 not applicable.
QUALIFIERS: Final = ("0", "1", "2", "3", "4", "8", "9")
TEXT_FIELDS: Final = (
    "assessment_date", "commission", "impairment_band", "recommended_form", "next_review",
    "diagnoses",
)  # fmt: skip


def _choices(page: Page) -> dict[str, Any]:
    domains = []
    for domain, shown in options(page, "functioning_domain", codes.FUNCTIONING_DOMAINS):
        frequency = domain in codes.FREQUENCY_DOMAINS
        levels = (
            options(page, "frequency_level", codes.FREQUENCY_LEVELS)
            if frequency
            else options(page, "difficulty_level", codes.DIFFICULTY_LEVELS)
        )
        domains.append((domain, shown, levels))
    return {
        "domains": domains,
        "bands": options(page, "impairment_band", codes.IMPAIRMENT_BANDS),
        "forms": options(page, "education_form", codes.EDUCATION_FORMS),
        "supports": options(page, "support", codes.SUPPORTS),
        "accommodations": options(page, "accommodation", codes.ACCOMMODATIONS),
        "icf_rows": range(ICF_ROWS),
        "qualifiers": QUALIFIERS,
    }


def _form(
    page: Page, values: dict[str, Any], errors: list[Violation], status: int = 200
) -> Response:
    return render(page, "assessment.html", status, title=page._("Record an assessment"),
                  values=values, errors=errors, **_choices(page))  # fmt: skip


def _values(page: Page) -> dict[str, Any]:
    """The form as entered (to show it again), lists included."""
    values: dict[str, Any] = {name: page.field(name) for name in TEXT_FIELDS}
    for i in range(ICF_ROWS):
        values[f"icf_{i}"] = page.field(f"icf_{i}")
        values[f"icf_{i}_q"] = page.field(f"icf_{i}_q")
    for domain in codes.FUNCTIONING_DOMAINS:
        values[f"fn_{domain}"] = page.field(f"fn_{domain}")
    values["supports"] = page.form.getlist("supports")
    values["accommodations"] = page.form.getlist("accommodations")
    return values


def assessment_of(page: Page, child_id: str) -> dict[str, Any]:
    """The assessment the form asks to record, as the model's input."""
    icf = []
    for i in range(ICF_ROWS):
        code = page.field(f"icf_{i}").strip()
        qualifier = page.field(f"icf_{i}_q").strip()
        if code:
            icf.append(f"{code}.{qualifier}" if qualifier and "." not in code else code)
    functioning = [
        {"domain": d, "level": page.field(f"fn_{d}")}
        for d in codes.FUNCTIONING_DOMAINS
        if page.field(f"fn_{d}")
    ]
    diagnoses = [d.strip() for d in page.field("diagnoses").replace(";", ",").split(",")]
    return given(
        {
            "child_id": child_id,
            "assessment_date": optional(page, "assessment_date"),
            "commission": optional(page, "commission"),
            "impairment_band": optional(page, "impairment_band"),
            "icf_codes": tuple(icf),
            "diagnoses": tuple(d for d in diagnoses if d),
            "functioning": tuple(functioning),
            "recommended_form": optional(page, "recommended_form"),
            "supports": tuple(page.form.getlist("supports")),
            "accommodations": tuple(page.form.getlist("accommodations")),
            "next_review": optional(page, "next_review"),
        }
    )


@routes.get("/child/{handle}/assessment", access="change")
async def assessment_form(page: Page) -> Response:
    """The empty assessment form."""
    page.child_id(str(page.request.path_params["handle"]))
    return _form(page, {"supports": [], "accommodations": []}, [])


@routes.post("/child/{handle}/assessment")
async def record_assessment(page: Page) -> Response:
    """Record the assessment; back to the child's page."""
    handle = str(page.request.path_params["handle"])
    child_id = page.child_id(handle)
    values = _values(page)
    try:
        assessment = AssessmentIn.model_validate(assessment_of(page, child_id))
    except ValidationError as exc:
        return _form(page, values, violations_of(exc), 400)
    registry = page.console.registry
    return await change_then_child(
        page,
        "assessment.record",
        canonical_json({"assessment": assessment.model_dump(mode="json")}),
        lambda: registry.record_assessment(assessment),
        child_id=child_id,
        form_again=lambda problems: _form(page, values, problems, 400),
    )
