"""The country profile's parts for people: time zone, directory of parties, code names."""

from __future__ import annotations

from typing import Any

import pytest

from childreg import codes
from childreg.errors import InvalidInput
from childreg.profile import (
    Profile,
    embedded,
    installed,
    parse_profile,
    sign_profile,
    verify_profile,
)
from tests.conftest import authority_key
from tools.clients.profiles import profile_summary
from tools.dev.directory import with_directory

AZ = embedded("az")
KZ = embedded("kz")


def az_data(**changes: Any) -> dict[str, Any]:
    """The Azerbaijan profile's JSON data with ``changes``."""
    return {**AZ.canonical_object(), **changes}


def fields_of(data: dict[str, Any]) -> list[str]:
    """The fields an invalid profile's error names."""
    with pytest.raises(InvalidInput) as caught:
        parse_profile(data)
    return [v.field for v in caught.value.violations]


def test_shipped_profiles_name_their_time_zone() -> None:
    """Azerbaijan is Asia/Baku; Kazakhstan Asia/Almaty (one zone, UTC+5, since March 2024)."""
    assert AZ.timezone == "Asia/Baku"
    assert KZ.timezone == "Asia/Almaty"


def test_an_unknown_time_zone_is_refused_naming_the_field() -> None:
    """A time zone that is not an IANA zone is refused, naming ``timezone``."""
    assert fields_of(az_data(timezone="Mars/Olympus")) == ["timezone"]


@pytest.mark.parametrize("country", [AZ, KZ], ids=["az", "kz"])
def test_shipped_profiles_name_every_code_in_en_ru_az_kk(country: Profile) -> None:
    """Every code of every code list has a name in English, Russian, Azerbaijani and Kazakh."""
    for listed, known in codes.CODE_LISTS.items():
        for code in known:
            for language in ("en", "ru", "az", "kk"):
                assert country.code_names[listed][code][language], (listed, code, language)


def test_code_name_in_a_language_then_english_then_the_code() -> None:
    """code_name gives the language's name, English where that language has none, and the
    code itself for a list or code the profile does not name."""
    assert AZ.code_name("education_form", "home_education", "ru") == "Обучение на дому"
    assert AZ.code_name("education_form", "home_education", "az") == "Evdə təhsil"
    assert AZ.code_name("functioning_domain", "seeing", "kk") == "Көру"
    assert AZ.code_name("support", "braille") == "Braille"
    names = az_data()["code_names"]
    names["sex"] = {"female": {"en": "Female"}, "male": {"en": "Male", "ru": "Мужской"}}
    partial = parse_profile(az_data(code_names=names))
    assert partial.code_name("sex", "female", "ru") == "Female"
    assert partial.code_name("sex", "male", "ru") == "Мужской"
    assert AZ.code_name("no_such_list", "x", "ru") == "x"


def test_code_names_must_be_of_known_lists_and_codes_and_in_english() -> None:
    """An unknown list, a code not in its list, or a code without an English name is
    refused."""
    for bad in (
        {"colours": {"red": {"en": "Red"}}},
        {"sex": {"female": {"en": "F"}, "male": {"en": "M"}, "other": {"en": "O"}}},
        {"sex": {"female": {"en": "F"}, "male": {"ru": "Мужской"}}},
    ):
        assert fields_of(az_data(code_names=bad)) == ["profile"]


def test_directory_names_departments_and_schools_per_language() -> None:
    """A directory's entries are found by id (a school also by its identity), named in each
    language with the English name as fallback."""
    country = with_directory(AZ, [("baku", "baku")], [("school-17", "nasimi")])
    department = country.department("baku")
    assert department is not None
    assert country.name_in(department.names, "az") == "Bakı Təhsil Şöbəsi"
    assert country.name_in(department.names, "kk") == "Baku Education Department"
    assert department.email == "baku@example.org"
    school = country.school("spiffe://az.childreg/school/school-17")
    assert school == country.school("school-17")
    assert school is not None
    assert country.name_in(school.names, "ru") == "Школа № 1, Насими"
    assert country.school("school-99") is None
    assert country.department("ganja") is None


def test_a_department_needs_a_contact_and_names_in_every_language() -> None:
    """A department without phone and e-mail, or named in fewer than the profile's
    languages, or two with one id, are refused."""
    entry = with_directory(AZ, [("baku", "baku")]).canonical_object()["directory"]
    department = entry["departments"][0]
    no_contact = {k: v for k, v in department.items() if k not in ("phone", "email")}
    assert fields_of(az_data(directory={"departments": [no_contact]})) == [
        "directory.departments.0"
    ]
    english_only = {**department, "names": {"en": "Baku"}}
    assert fields_of(az_data(directory={"departments": [english_only]})) == ["profile"]
    twice = {"departments": [department, department]}
    assert fields_of(az_data(directory=twice)) == ["directory"]


def test_a_profile_without_the_new_parts_signs_and_verifies_as_before() -> None:
    """A profile without time zone, directory or code names is signed without them (so one
    signed before they existed still verifies), and one with them round-trips signed."""
    key = authority_key()
    bare = {k: v for k, v in az_data().items() if k not in ("timezone", "code_names")}
    plain = parse_profile(bare)
    assert plain.timezone == "UTC"
    assert set(plain.canonical_object()) == set(bare)
    assert verify_profile(sign_profile(plain, key), key.verify_key) == plain
    full = with_directory(AZ, [("baku", "baku")], [("school-17", "nasimi")])
    assert verify_profile(sign_profile(full, key), key.verify_key) == full


def test_profile_show_lists_the_directory_and_code_names() -> None:
    """`stats profile show --json` carries the time zone, the directory and the code names
    in the chosen language."""
    country = with_directory(AZ, [("baku", "baku")], [("school-17", "nasimi")])
    summary = profile_summary(country, "ru")
    assert summary["timezone"] == "Asia/Baku"
    assert summary["departments"][0]["name"] == "Отдел образования — Баку"
    assert summary["schools"] == [{"id": "school-17", "name": "Школа № 1, Насими"}]
    assert summary["code_names"]["care_setting"]["foster_family"] == "Приёмная семья"


def test_named_lists_a_code_lists_codes_with_their_names_in_order() -> None:
    """codes.named gives every code of a list with its name from the installed profile,
    in the list's order; an unknown list is a KeyError."""
    with installed(KZ):
        pairs = codes.named("difficulty_level", "kk")
    assert [code for code, _ in pairs] == list(codes.DIFFICULTY_LEVELS)
    assert pairs[0] == ("no_difficulty", "Қиындық жоқ")
    with pytest.raises(KeyError):
        codes.named("colours", "en")
