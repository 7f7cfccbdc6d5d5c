"""A federation's country profile: its administrative units, school calendar and languages.

What differs from one country to the next is data, not code: the regions and districts a
record may name (with their names in the profile's languages), when the academic year
starts and which day of it is the statistics reference (census) day. The profile is a
federation document signed by the statistics authority exactly as the table catalogue is
(:mod:`childreg.signed`), so a node and the coordinator agree on the code lists a table
is built from. Profiles for Azerbaijan and Kazakhstan ship as package data
(``childreg/profiles/<country>.json``); each file's ``source`` says what the lists reflect.

One profile is *installed* per process (:func:`install`, done once at start-up from the
service's configuration); everything country-specific (:mod:`childreg.codes`' region and
district dimensions, the District/Region validators, reference dates) reads
:func:`active`. Until a profile is installed, the embedded Azerbaijan profile is active,
which is what tests and tools without a configuration use.

Three more parts serve the people who read what childreg writes: the ``timezone`` (an IANA
zone) every time shown to a person is given in, to the minute (UTC is what is stored); the
``directory`` of the federation's departments and schools by name, with how to reach each
department (:mod:`childreg.directory`: what a guardian's receipt names); and
``code_names``, each code of each list of :data:`childreg.codes.CODE_LISTS` named per
language (:meth:`Profile.code_name`). A profile signed before these parts existed still
verifies: empty parts and the UTC default are left out of the signed form.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Final, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nacl.signing import SigningKey, VerifyKey
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from childreg.directory import Department, Directory, School, pick, school_id_of
from childreg.errors import InvalidInput, Violation
from childreg.signed import SignedKind, canonical_json, open_signed, read_signed, sign_document

SIGNED_FORMAT: Final = "childreg-profile/1"
#: Domain separation: a profile signature can never pass as a catalogue's or a roster's.
SIGNING_CONTEXT: Final = b"childreg profile v1\n"
MAX_SIGNED_BYTES: Final = 1024 * 1024
KIND: Final = SignedKind("profile", SIGNED_FORMAT, SIGNING_CONTEXT, MAX_SIGNED_BYTES)
#: The countries whose profile ships with childreg.
COUNTRIES: Final = ("az", "kz")
DEFAULT_COUNTRY: Final = "az"
#: Where the shipped profiles are (package data).
PROFILES_DIR: Final = Path(__file__).parent / "profiles"

UnitCode = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
Language = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")]
MonthDay = Annotated[str, StringConstraints(pattern=r"^[0-9]{2}-[0-9]{2}$")]
UnitName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
#: The parts a profile signed before they existed lacks: left out of the signed form when
#: they hold their default, so that profile still verifies.
_OPTIONAL_PARTS: Final = {
    "timezone": "UTC",
    "directory": {"departments": [], "schools": []},
    "code_names": {},
}


class Model(BaseModel):
    """Base: immutable, unknown fields refused (childreg.models.Model's settings; that
    module reads the profile through childreg.codes, so this one cannot import it)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _month_day(value: str) -> tuple[int, int]:
    month, day = int(value[:2]), int(value[3:])
    dt.date(2001, month, day)  # ValueError for 02-30 (and 02-29: not every year has one)
    return month, day


class Unit(Model):
    """A district (city or rayon): its code and its name in each of the profile's languages."""

    code: UnitCode
    names: dict[Language, UnitName]


class RegionUnit(Unit):
    """A top-level unit (region, or city of republican significance) and its districts."""

    districts: tuple[Unit, ...] = Field(min_length=1)


class Calendar(Model):
    """The academic year's first day and its statistics reference (census) day, as MM-DD."""

    year_starts: MonthDay
    census_day: MonthDay

    @model_validator(mode="after")
    def _dates(self) -> Self:
        _month_day(self.year_starts)
        _month_day(self.census_day)
        return self

    def start(self) -> tuple[int, int]:
        """(month, day) the academic year starts on."""
        return _month_day(self.year_starts)

    def census(self) -> tuple[int, int]:
        """(month, day) of the census day; it falls in the year that starts before it."""
        return _month_day(self.census_day)


class Profile(Model):
    """A federation's country profile (see the module docstring)."""

    federation: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")
    country: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")]
    version: int = Field(ge=1)
    name: dict[Language, UnitName]
    languages: tuple[Language, ...] = Field(min_length=1)
    calendar: Calendar
    #: What the unit lists reflect: their legal source and date.
    source: str = Field(min_length=1, max_length=2000)
    regions: tuple[RegionUnit, ...] = Field(min_length=1)
    #: The IANA time zone every time shown to a person is given in (e.g. Asia/Baku).
    timezone: str = "UTC"
    #: The federation's departments and schools by name (see childreg.directory).
    directory: Directory = Directory()
    #: list -> code -> language -> name, for the lists of childreg.codes.CODE_LISTS.
    code_names: dict[str, dict[str, dict[Language, UnitName]]] = Field(default_factory=dict)

    _region_of: dict[str, str] = PrivateAttr(default_factory=dict)
    _districts: tuple[str, ...] = PrivateAttr(default=())
    _regions: tuple[str, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        codes = [r.code for r in self.regions] + [d.code for r in self.regions for d in r.districts]
        repeated = sorted({c for c in codes if codes.count(c) > 1})
        if repeated:
            raise ValueError(f"unit codes must be unique; repeated: {', '.join(repeated)}")
        wanted = set(self.languages)
        units: list[Unit] = [*self.regions, *(d for r in self.regions for d in r.districts)]
        for unit in units:
            if set(unit.names) != wanted:
                raise ValueError(f"unit {unit.code} must be named in exactly {sorted(wanted)}")
        self.directory.check_languages(self.languages)
        from childreg.codes import code_names_problem  # noqa: PLC0415 - codes imports this module

        problem = code_names_problem(self.code_names)
        if problem:
            raise ValueError(f"code_names: {problem}")
        self._region_of.update({d.code: r.code for r in self.regions for d in r.districts})
        self._districts = tuple(self._region_of)
        self._regions = tuple(r.code for r in self.regions)
        return self

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone, e.g. Asia/Baku") from None
        return value

    def code_name(self, code_list: str, code: str, language: str = "en") -> str:
        """The name of ``code`` of ``code_list`` in ``language``; in English where the
        profile has none in that language; the code itself where it names none."""
        names = self.code_names.get(code_list, {}).get(code)
        return pick(names, language, self.languages[0]) if names else code

    def department(self, department_id: str) -> Department | None:
        """The directory's department with this id, or None."""
        return self.directory.department(department_id)

    def school(self, school: str) -> School | None:
        """The directory's school with this id or identity (spiffe://…/school/<id>), or None."""
        return self.directory.school(school_id_of(school))

    def name_in(self, names: dict[str, str], language: str) -> str:
        """One of a directory entry's ``names`` (or ``address``) in ``language``, falling
        back to English, then to the profile's first language."""
        return pick(names, language, self.languages[0])

    def region_districts(self) -> dict[str, tuple[str, ...]]:
        """Region code -> its district codes, in the profile's order."""
        return {r.code: tuple(d.code for d in r.districts) for r in self.regions}

    def region_codes(self) -> tuple[str, ...]:
        """Every region code, in the profile's order."""
        return self._regions

    def districts(self) -> tuple[str, ...]:
        """Every district code, region by region."""
        return self._districts

    def has_district(self, code: str) -> bool:
        """True for a district of this profile."""
        return code in self._region_of

    def region_of(self, district: str) -> str:
        """The region a district belongs to; KeyError for a district not in the profile."""
        return self._region_of[district]

    def unit_name(self, code: str, language: str = "en") -> str:
        """The name of a region or district in ``language``; KeyError for an unknown code."""
        for region in self.regions:
            if region.code == code:
                return region.names[language]
            for district in region.districts:
                if district.code == code:
                    return district.names[language]
        raise KeyError(code)

    def academic_year(self, on: dt.date) -> str:
        """The academic year ``on`` falls in, e.g. '2024/25' from its first day on."""
        start = self.calendar.start()
        year = on.year if (on.month, on.day) >= start else on.year - 1
        return f"{year}/{(year + 1) % 100:02d}"

    def reference_date(self, academic_year: str) -> dt.date:
        """The census day of an academic year ('YYYY/YY', already checked)."""
        month, day = self.calendar.census()
        first = int(academic_year[:4])
        return dt.date(first if (month, day) >= self.calendar.start() else first + 1, month, day)

    def for_federation(self, federation: str) -> Profile:
        """The same profile for another federation name (a demo, a test federation)."""
        data = self.canonical_object()
        data["federation"] = federation
        return parse_profile(data)

    def canonical_object(self) -> dict[str, Any]:
        """The profile as plain JSON data (what is signed)."""
        data: dict[str, Any] = self.model_dump(mode="json")
        for part, default in _OPTIONAL_PARTS.items():
            if data.get(part) == default:
                del data[part]
        for department in data.get("directory", {}).get("departments", []):
            for contact in ("phone", "email"):
                if department.get(contact) is None:
                    department.pop(contact, None)
        return data

    def canonical_bytes(self) -> bytes:
        """Sorted-key, compact, UTF-8 JSON of the profile."""
        return canonical_json(self.canonical_object())


def current_academic_year(today: dt.date | None = None, profile: Profile | None = None) -> str:
    """The academic year today (or ``today``) falls in, by the (active) profile's calendar."""
    return (profile or active()).academic_year(today or dt.date.today())


def parse_profile(data: Any) -> Profile:
    """A validated profile; InvalidInput naming each problem."""
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        found = [
            Violation(".".join(str(p) for p in e["loc"]) or "profile", e["msg"])
            for e in exc.errors()
        ]
        raise InvalidInput("invalid country profile", found) from None


@cache
def embedded(country: str = DEFAULT_COUNTRY) -> Profile:
    """The profile shipped for ``country`` (unsigned package data; 'az' or 'kz')."""
    if country not in COUNTRIES:
        raise ValueError(f"no profile ships for {country!r}; expected one of {COUNTRIES}")
    text = (PROFILES_DIR / f"{country}.json").read_text(encoding="utf-8")
    return parse_profile(json.loads(text))


def sign_profile(profile: Profile, signing_key: SigningKey) -> bytes:
    """The signed profile file; the same profile and key always give the same bytes."""
    return sign_document(KIND, profile.canonical_object(), profile.canonical_bytes(), signing_key)


def verify_profile(blob: bytes, authority: VerifyKey, *, federation: str | None = None) -> Profile:
    """A signed profile checked against the pinned authority key (see ``open_signed``)."""
    return open_signed(KIND, blob, authority, parse_profile, federation=federation)


def read_signed_profile(
    path: Path, authority: VerifyKey, *, federation: str | None = None
) -> Profile:
    """Read and verify a signed profile file (see :func:`verify_profile`)."""
    return read_signed(KIND, path, authority, parse_profile, federation=federation)


# --- the process's profile ---------------------------------------------------------------


class _Installed:
    """The process's installed profile (one slot)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.profile: Profile | None = None


_INSTALLED: Final = _Installed()


def active() -> Profile:
    """The installed profile, or the embedded Azerbaijan profile if none was installed."""
    held = _INSTALLED.profile
    return held if held is not None else embedded()


def install(profile: Profile | None) -> None:
    """Make ``profile`` the process's profile (None: back to the embedded default)."""
    with _INSTALLED.lock:
        _INSTALLED.profile = profile


@contextlib.contextmanager
def installed(profile: Profile) -> Iterator[Profile]:
    """Use ``profile`` inside a ``with`` block, then restore the previous one (tests)."""
    before = _INSTALLED.profile
    install(profile)
    try:
        yield profile
    finally:
        install(before)
