"""The parties a receipt names, as a guardian reads them: by name, with contacts.

Every receipt kind names the issuing department (and how to reach it) and often a school;
these functions turn a department id or a school identity into what the templates show
(``department.html`` takes the first), from the directory of the country profile
(:mod:`childreg.directory`), in the reader's language. They never return an identity: a
school missing from the directory is shown by its id, a department by the name its node is
configured with.
"""

from __future__ import annotations

from childreg.directory import school_id_of
from childreg.profile import Profile


def department_view(
    profile: Profile, department_id: str, configured_name: str, language: str
) -> dict[str, str]:
    """The department as receipts show it: name, address, phone, e-mail ("" if unknown)."""
    held = profile.department(department_id)
    if held is None:
        name = configured_name or department_id
        return {"name": name, "address": "", "phone": "", "email": ""}
    return {
        "name": profile.name_in(held.names, language),
        "address": profile.name_in(held.address, language),
        "phone": held.phone or "",
        "email": held.email or "",
    }


def school_view(profile: Profile, school: str, language: str) -> dict[str, str]:
    """A school (by id or identity) as receipts show it: its id and its name."""
    school_id = school_id_of(school)
    held = profile.school(school_id)
    return {"id": school_id, "name": profile.name_in(held.names, language) if held else school_id}
