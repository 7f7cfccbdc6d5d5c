"""The statistics authority's work on the country profile: start one from a shipped
country, sign it, and check a signed one (what `childreg stats profile …` runs).

Why here: the profile (childreg/profile.py) is a federation document like the table
catalogue, signed offline by the same authority key, so these calls mirror the
catalogue's in tools/clients/authority.py and share its error handling.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from childreg import profile
from childreg.catalogue import load_signing_key, load_verify_key
from childreg.errors import InvalidInput, Violation
from childreg.signed import key_id
from tools.clients.authority import cli_errors, write_signed

PROFILE_DOC = "docs/country-profile.md"


def export_profile(country: str, federation: str | None, out_file: Path) -> profile.Profile:
    """Write the shipped profile of ``country`` (for ``federation`` if given) as editable
    JSON: the source an authority adapts and then signs."""
    with cli_errors("export", PROFILE_DOC):
        if country not in profile.COUNTRIES:
            raise InvalidInput(
                "unknown country", [Violation("country", f"expected one of {profile.COUNTRIES}")]
            )
        chosen = profile.embedded(country)
        if federation is not None:
            chosen = chosen.for_federation(federation)
    text = json.dumps(chosen.canonical_object(), indent=2, ensure_ascii=False, sort_keys=True)
    write_signed(out_file, (text + "\n").encode("utf-8"))
    return chosen


def sign_profile_file(source: Path, key: Path, out_file: Path) -> tuple[profile.Profile, str]:
    """Validate an authored profile (JSON), sign it, check what is shipped, write it; the
    profile and the signing key's id."""
    with cli_errors("sign", PROFILE_DOC):
        try:
            data = json.loads(source.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidInput(
                "cannot read the profile",
                [Violation("source", f"not a JSON file ({type(exc).__name__})")],
            ) from None
        chosen = profile.parse_profile(data)
        signing_key = load_signing_key(key)
        blob = profile.sign_profile(chosen, signing_key)
        profile.verify_profile(blob, signing_key.verify_key)  # what we ship must verify
    write_signed(out_file, blob)
    return chosen, key_id(signing_key.verify_key)


def read_profile(file: Path, authority: str, federation: str | None) -> tuple[profile.Profile, str]:
    """A signed profile verified against the authority key; and that key's id."""
    with cli_errors("profile", PROFILE_DOC):
        verify_key = load_verify_key(authority)
        return profile.read_signed_profile(file, verify_key, federation=federation), key_id(
            verify_key
        )


def profile_summary(p: profile.Profile, language: str = "en") -> dict[str, Any]:
    """What `stats profile show` prints: federation, calendar, languages, time zone, every
    region with its districts' codes and names, the directory's departments and schools,
    and the names of each code list's codes."""
    shown = language if language in p.languages else p.languages[0]
    return {
        "federation": p.federation,
        "country": p.country,
        "version": p.version,
        "languages": list(p.languages),
        "academic_year_starts": p.calendar.year_starts,
        "census_day": p.calendar.census_day,
        "regions": [
            {
                "code": r.code,
                "name": r.names[shown],
                "districts": [{"code": d.code, "name": d.names[shown]} for d in r.districts],
            }
            for r in p.regions
        ],
        "timezone": p.timezone,
        "departments": [
            {
                "id": d.id,
                "name": p.name_in(d.names, shown),
                "address": p.name_in(d.address, shown),
                "phone": d.phone or "",
                "email": d.email or "",
            }
            for d in p.directory.departments
        ],
        "schools": [{"id": s.id, "name": p.name_in(s.names, shown)} for s in p.directory.schools],
        "code_names": {
            listed: {code: p.code_name(listed, code, language) for code in named}
            for listed, named in p.code_names.items()
        },
        "source": p.source,
    }
