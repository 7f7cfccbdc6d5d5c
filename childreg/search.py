"""What department staff ask when they look for a child, and what they get back.

Why a module of its own: search and the duplicate warning at registration share these
shapes, every front door (gRPC, the console, the staff CLI) passes them, and the domain
(node/records/search.py) answers in them. A hit carries what staff need to pick the right
child — names, birth date, district, school, whether the record is closed — and nothing
more: no national id, no guardian, no assessment.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Self

from pydantic import Field, StringConstraints, model_validator

from childreg.models import ChildId, District, IsoDate, Model, Name, NationalId, ShortText

#: Opaque paging cursor (the node's own encoding; never holds personal data).
PageToken = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,128}$")]
#: Why staff confirm that a new child is not one of the likely duplicates shown.
Reason = Annotated[ShortText, StringConstraints(min_length=3)]


class SearchQuery(Model):
    """Find children by any of: name (prefix or fuzzy, any script), birth date, district,
    school, national id (exact). At least one criterion; results come a page at a time."""

    name: Name | None = None
    date_of_birth: IsoDate | None = None  # a date only, never a date-time (issue 16, item 7)
    district: District | None = None
    school: ShortText | None = None
    national_id: NationalId | None = None
    include_closed: bool = False
    page_size: int = Field(default=20, ge=1, le=100)
    page_token: PageToken | None = None

    @model_validator(mode="after")
    def _some_criterion(self) -> Self:
        given = (self.name, self.date_of_birth, self.district, self.school, self.national_id)
        if all(v is None for v in given):
            raise ValueError(
                "give at least one of name, date_of_birth, district, school, national_id"
            )
        return self


class SearchHit(Model):
    """One child found: enough to tell children apart, nothing more."""

    child_id: ChildId
    given_name: Name
    family_name: Name
    date_of_birth: dt.date
    district: str
    school: str | None = None  # the institution of the latest placement, if any
    closed: bool = False
    score: float = Field(ge=0.0, le=1.0)  # 1.0 for an exact match


class SearchPage(Model):
    """One page of hits, best first, and the token of the next page (None on the last)."""

    hits: tuple[SearchHit, ...] = ()
    next_page_token: PageToken | None = None


class DuplicateCandidate(Model):
    """A child already held that may be the one being registered, and why it was shown."""

    hit: SearchHit
    reasons: tuple[str, ...]  # e.g. "same national id", "similar name", "close birth date"


class Registration(Model):
    """What registering a child came to: registered, or held back by likely duplicates.

    ``registered`` is False only when likely duplicates were found and no reason that the
    child is not one of them was given; then ``duplicates`` lists them and nothing was
    written. When the child was registered with a reason, ``duplicates`` lists what was
    set aside.
    """

    registered: bool
    duplicates: tuple[DuplicateCandidate, ...] = ()
