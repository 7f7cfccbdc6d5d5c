"""A synthetic directory of a local federation's departments and schools (demo, tests).

Why: a guardian's receipt names the school and the department by the names in the country
profile's directory (:mod:`childreg.directory`). A local federation signs a profile whose
directory lists each of its departments (named after its region, in every language of the
profile) and its schools, with made-up contacts (``example.org`` addresses, 555 numbers).
A real federation's statistics authority writes its own (docs/country-profile.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from childreg.profile import Profile, parse_profile

DEPARTMENT_NAME: Final = {
    "en": "{unit} Education Department",
    "ru": "Отдел образования — {unit}",
    "az": "{unit} Təhsil Şöbəsi",
    "kk": "{unit} білім бөлімі",
}
SCHOOL_NAME: Final = {
    "en": "School No. {n}, {unit}",
    "ru": "Школа № {n}, {unit}",
    "az": "{unit} {n} nömrəli məktəb",
    "kk": "№ {n} мектеп, {unit}",
}
ADDRESS: Final = {
    "en": "{n} Example Street, {unit}",
    "ru": "ул. Примерная, {n}, {unit}",
    "az": "Nümunə küçəsi {n}, {unit}",
    "kk": "Үлгі көшесі, {n}, {unit}",
}
CALLING_CODE: Final = {"az": "994", "kz": "7"}


def _per_language(profile: Profile, forms: dict[str, str], unit: str, n: int) -> dict[str, str]:
    return {
        lang: forms.get(lang, forms["en"]).format(unit=profile.unit_name(unit, lang), n=n)
        for lang in profile.languages
    }


def department_entry(profile: Profile, department_id: str, unit: str, n: int) -> dict[str, Any]:
    """A directory entry for department ``department_id`` named after region or district
    ``unit``, with the ``n``-th made-up address, phone number and e-mail."""
    return {
        "id": department_id,
        "names": _per_language(profile, DEPARTMENT_NAME, unit, n),
        "address": _per_language(profile, ADDRESS, unit, n),
        "phone": f"+{CALLING_CODE.get(profile.country, '1')} 555 01 {n:02d}",
        "email": f"{department_id}@example.org",
    }


def school_entry(profile: Profile, school_id: str, unit: str, n: int) -> dict[str, Any]:
    """A directory entry for school ``school_id``: school number ``n`` of ``unit``."""
    return {"id": school_id, "names": _per_language(profile, SCHOOL_NAME, unit, n)}


def with_directory(
    profile: Profile,
    departments: Sequence[tuple[str, str]],
    schools: Sequence[tuple[str, str]] = (),
) -> Profile:
    """``profile`` with a directory of ``departments`` and ``schools``, each given as
    (id, the region or district code it is named after)."""
    data = profile.canonical_object()
    data["directory"] = {
        "departments": [
            department_entry(profile, ident, unit, n)
            for n, (ident, unit) in enumerate(departments, 1)
        ],
        "schools": [
            school_entry(profile, ident, unit, n) for n, (ident, unit) in enumerate(schools, 1)
        ],
    }
    return parse_profile(data)
