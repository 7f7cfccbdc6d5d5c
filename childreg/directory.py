"""The federation's directory of parties: departments and schools, by name, with contacts.

Why: a guardian's receipt must say *who* receives the child's data and *whom* to call to
take the consent back, in the guardian's language: "Məktəb № 17", not
``spiffe://az.childreg/school/school-17``, and the department's name, address, phone and
e-mail, not "contact the department". The identities (SPIFFE ids) stay what machines
check; this directory is what people read. It is part of the country profile
(:mod:`childreg.profile`, section ``directory``), so it is signed by the statistics
authority, verified with its pinned key at every node's start-up and the same at every
node of the federation; a new school or a changed phone number is a new profile version.

A department is keyed by its department id (the ``<department>`` of
``spiffe://<federation>/node/<department>``), a school by its school id (the ``<id>`` of
``spiffe://<federation>/school/<id>``). Every name and address is given in each of the
profile's languages (checked by the profile); a lookup in another language falls back to
English, then to the profile's first language.
"""

from __future__ import annotations

import re
from typing import Annotated, Final, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

Language = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=300)]
DepartmentId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
SchoolId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$")]
Phone = Annotated[str, StringConstraints(pattern=r"^\+?[0-9][0-9 ()-]{4,30}$")]
Email = Annotated[str, StringConstraints(pattern=r"^[^@\s]{1,64}@[^@\s]{1,190}\.[a-z]{2,24}$")]

_SCHOOL_IDENTITY: Final = re.compile(r"^spiffe://[^/]+/school/(?P<id>[^/]+)$")
_NODE_IDENTITY: Final = re.compile(r"^spiffe://[^/]+/node/(?P<id>[^/]+)$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def pick(names: dict[str, str], language: str, fallback: str) -> str:
    """``names`` in ``language``, else in English, else in ``fallback`` (a profile's first
    language), else any."""
    for wanted in (language, "en", fallback):
        if wanted in names:
            return names[wanted]
    return next(iter(names.values()))


class Department(_Model):
    """A local education department: its names, address and how to reach it."""

    id: DepartmentId
    names: dict[Language, Text]
    address: dict[Language, Text]
    phone: Phone | None = None
    email: Email | None = None

    @model_validator(mode="after")
    def _reachable(self) -> Self:
        if self.phone is None and self.email is None:
            raise ValueError(f"department {self.id} needs a phone or an e-mail address")
        return self


class School(_Model):
    """A school or centre that may receive extracts: its names in the profile's languages."""

    id: SchoolId
    names: dict[Language, Text]


class Directory(_Model):
    """The federation's departments and schools (either list may be empty)."""

    departments: tuple[Department, ...] = ()
    schools: tuple[School, ...] = Field(default=())

    @model_validator(mode="after")
    def _unique(self) -> Self:
        for what, ids in (
            ("department", [d.id for d in self.departments]),
            ("school", [s.id for s in self.schools]),
        ):
            repeated = sorted({i for i in ids if ids.count(i) > 1})
            if repeated:
                raise ValueError(f"{what} ids must be unique; repeated: {', '.join(repeated)}")
        return self

    def check_languages(self, languages: tuple[str, ...]) -> None:
        """ValueError unless every name and address is given in each of ``languages``."""
        wanted = set(languages)
        for department in self.departments:
            for field, names in (("names", department.names), ("address", department.address)):
                if not wanted <= set(names):
                    raise ValueError(
                        f"department {department.id}: {field} must be given in {sorted(wanted)}"
                    )
        for school in self.schools:
            if not wanted <= set(school.names):
                raise ValueError(f"school {school.id}: names must be given in {sorted(wanted)}")

    def department(self, department_id: str) -> Department | None:
        """The department with this id, or None."""
        return next((d for d in self.departments if d.id == department_id), None)

    def school(self, school_id: str) -> School | None:
        """The school with this id, or None."""
        return next((s for s in self.schools if s.id == school_id), None)


def school_id_of(identity: str) -> str:
    """The school id of a school identity (``spiffe://f/school/<id>`` -> ``<id>``); an id
    given bare is returned as it is."""
    m = _SCHOOL_IDENTITY.fullmatch(identity)
    return m.group("id") if m else identity


def department_id_of(identity: str) -> str:
    """The department id of a node identity (``spiffe://f/node/<id>`` -> ``<id>``); an id
    given bare is returned as it is."""
    m = _NODE_IDENTITY.fullmatch(identity)
    return m.group("id") if m else identity
