"""The country profile: shipped data, the signature, the calendar and the installed profile."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from nacl.signing import SigningKey
from pydantic import ValidationError

from childreg import codes, profile
from childreg.catalogue import sign_catalogue
from childreg.errors import InvalidInput, PermissionDenied
from childreg.models import ChildIn
from childreg.profile import (
    current_academic_year,
    embedded,
    parse_profile,
    sign_profile,
    verify_profile,
)
from tests.conftest import authority_key
from tools.dev.federation import default_catalogue

AZ = embedded("az")
KZ = embedded("kz")


def test_azerbaijan_profile_has_today_s_units() -> None:
    """The AZ profile holds the 14 economic regions and 85 districts, named in az, ru, en."""
    assert AZ.languages == ("az", "ru", "en")
    assert len(AZ.regions) == 14
    assert len(AZ.districts()) == 85
    assert AZ.region_of("nasimi") == "baku"
    assert AZ.unit_name("ganja", "az") == "Gəncə"


def test_kazakhstan_profile_has_17_regions_and_3_cities() -> None:
    """The KZ profile holds 20 top-level units (17 regions, Astana, Almaty, Shymkent) named in
    kk, ru and en, the cities with their city districts."""
    assert KZ.languages == ("kk", "ru", "en")
    assert len(KZ.regions) == 20
    cities = {"astana", "almaty", "shymkent"}
    assert cities <= set(KZ.region_codes())
    assert sum(1 for r in KZ.regions if r.names["en"].endswith(" Region")) == 17
    assert len(KZ.region_districts()["almaty"]) == 8
    assert KZ.unit_name("astana_yesil", "kk") == "Есіл ауданы"
    assert "KATO" in KZ.source


def test_every_kazakh_region_lists_its_real_districts() -> None:
    """No KZ region keeps a catch-all '<region>_districts' unit; each has at least 3 units
    (its cities of regional significance and districts), 226 in all."""
    for region, districts in KZ.region_districts().items():
        assert f"{region}_districts" not in districts
        assert not any(d.endswith("_districts") for d in districts)
        assert len(districts) >= 3, region
    assert len(KZ.districts()) == 226
    assert len(KZ.region_districts()["akmola"]) == 20
    assert len(KZ.region_districts()["ulytau"]) == 5


@pytest.mark.parametrize(
    ("code", "region", "kk", "ru", "en"),
    [
        ("jambyl_zhambyl", "jambyl", "Жамбыл ауданы", "Жамбылский район", "Zhambyl District"),
        ("ekibastuz", "pavlodar", "Екібастұз", "Экибастуз", "Ekibastuz"),
        ("kurchatov", "abai", "Курчатов", "Курчатов", "Kurchatov"),
        ("zhanaozen", "mangystau", "Жаңаөзен", "Жанаозен", "Zhanaozen"),
        ("almaty_region_karasay", "almaty_region", "Қарасай ауданы", "Карасайский район",
         "Karasay District"),
        ("turkistan_sairam", "turkistan", "Сайрам ауданы", "Сайрамский район", "Sairam District"),
        ("ulytau_zhanaarka", "ulytau", "Жаңаарқа ауданы", "Жанааркинский район",
         "Zhanaarka District"),
    ],
)  # fmt: skip
def test_well_known_kazakh_units_are_named_in_three_languages(
    code: str, region: str, kk: str, ru: str, en: str
) -> None:
    """Well-known districts and cities sit in their region, named in kk, ru and en."""
    assert KZ.region_of(code) == region
    assert (KZ.unit_name(code, "kk"), KZ.unit_name(code, "ru"), KZ.unit_name(code, "en")) == (
        kk,
        ru,
        en,
    )


def test_a_profile_with_a_repeated_code_is_refused() -> None:
    """Two units with one code make the profile invalid, naming the code."""
    data = AZ.canonical_object()
    data["regions"][1]["districts"][0]["code"] = "nasimi"
    with pytest.raises(InvalidInput, match="invalid country profile") as caught:
        parse_profile(data)
    assert "nasimi" in str(caught.value.violations)


def test_a_unit_missing_a_language_is_refused() -> None:
    """Every unit must be named in each of the profile's languages."""
    data = KZ.canonical_object()
    del data["regions"][0]["names"]["kk"]
    with pytest.raises(InvalidInput):
        parse_profile(data)


def test_signed_profile_verifies_with_the_authority_key() -> None:
    """A profile signed by the authority opens back to the same profile."""
    blob = sign_profile(KZ, authority_key())
    assert verify_profile(blob, authority_key().verify_key, federation="kz.childreg") == KZ


def test_tampered_profile_is_refused() -> None:
    """A district added after signing makes the signature fail."""
    document = json.loads(sign_profile(AZ, authority_key()))
    document["profile"]["regions"][0]["districts"].append(
        {"code": "atlantis", "names": {"az": "A", "ru": "A", "en": "A"}}
    )
    with pytest.raises(PermissionDenied, match="altered"):
        verify_profile(json.dumps(document).encode(), authority_key().verify_key)


def test_profile_signed_by_another_key_is_refused() -> None:
    """A profile signed by someone other than the pinned authority is refused."""
    blob = sign_profile(AZ, SigningKey.generate())
    with pytest.raises(PermissionDenied, match="another key"):
        verify_profile(blob, authority_key().verify_key)


def test_profile_for_another_federation_is_refused() -> None:
    """A profile signed for one federation is refused by another."""
    blob = sign_profile(AZ.for_federation("demo.childreg"), authority_key())
    with pytest.raises(PermissionDenied, match="federation"):
        verify_profile(blob, authority_key().verify_key, federation="az.childreg")


def test_a_catalogue_cannot_pass_as_a_profile() -> None:
    """A signed catalogue is not a profile (another format and signing context)."""
    blob = sign_catalogue(default_catalogue(), authority_key())
    with pytest.raises(InvalidInput, match="profile"):
        verify_profile(blob, authority_key().verify_key)


@pytest.mark.parametrize(
    ("country", "day", "year"),
    [
        ("az", dt.date(2026, 9, 14), "2025/26"),
        ("az", dt.date(2026, 9, 15), "2026/27"),
        ("az", dt.date(2027, 1, 1), "2026/27"),
        ("kz", dt.date(2026, 8, 31), "2025/26"),
        ("kz", dt.date(2026, 9, 1), "2026/27"),
        ("kz", dt.date(2027, 8, 31), "2026/27"),
    ],
)
def test_current_academic_year_turns_on_the_first_day(
    country: str, day: dt.date, year: str
) -> None:
    """The academic year changes on the calendar's first day, not the day before."""
    assert current_academic_year(day, embedded(country)) == year


def test_reference_date_follows_the_installed_profile() -> None:
    """The census day of a snapshot is the installed profile's (AZ 15 Sept, KZ 1 Oct)."""
    assert codes.reference_date("2024/25") == dt.date(2024, 9, 15)
    with profile.installed(KZ):
        assert codes.reference_date("2024/25") == dt.date(2024, 10, 1)
    assert codes.reference_date("2024/25") == dt.date(2024, 9, 15)


def test_dimensions_and_validators_follow_the_installed_profile() -> None:
    """With the KZ profile installed, region and district codes are Kazakhstan's."""
    fields = {"child_id": "K1", "given_name": "Дана", "family_name": "Синт",
              "date_of_birth": dt.date(2015, 1, 1), "sex": "female"}  # fmt: skip
    with profile.installed(KZ):
        assert len(codes.codes("region")) == 20
        assert codes.grid_size(("region", "sex")) == 40
        assert ChildIn(**fields, district="astana_nura").district == "astana_nura"
        with pytest.raises(ValidationError, match="unknown district"):
            ChildIn(**fields, district="nasimi")
    assert len(codes.codes("region")) == 14
    assert ChildIn(**fields, district="nasimi").district == "nasimi"
