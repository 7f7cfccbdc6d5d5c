"""A child's record over time: correcting it, closing it, and reading back its history.

Why a module of its own: every front door (gRPC, the console, the staff CLI) passes these
shapes, and the domain (:mod:`node.records.history`) answers in them. A correction names
only the fields it changes and always says why; a closing says from when and why. The
history lists every step with who, when and why, and each field's value before and after,
so a record can be read as it was at any point (DHIS2's and Primero's audit trail).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal, Self, get_args

from pydantic import Field, model_validator

from childreg import codes
from childreg.models import (
    ChildId,
    District,
    IsoDate,
    Model,
    Name,
    NationalId,
    Phone,
    Sex,
    ShortText,
)
from childreg.search import Reason  # why: kept sealed in the history

#: The fields of a child's record a correction may change.
CORRECTABLE: tuple[str, ...] = (
    "given_name",
    "family_name",
    "national_id",
    "date_of_birth",
    "sex",
    "district",
    "guardian_name",
    "guardian_phone",
)
#: Of those, the ones a correction may clear (make "not given").
CLEARABLE: tuple[str, ...] = ("national_id", "guardian_name", "guardian_phone")
CloseReason = Literal["aged_out", "moved_abroad", "deceased", "other"]
#: The kinds of step a history holds.
Kind = Literal[
    "registered", "imported", "corrected", "placed", "care_setting", "assessed", "closed"
]
assert get_args(CloseReason) == codes.CLOSE_REASONS  # one list, two spellings
EraseReason = Literal[
    "guardian_request",
    "registered_in_error",
    "legal_order",
    "retention_after_closed",
    "retention_after_age",
]
assert get_args(EraseReason) == codes.ERASE_REASONS


class Correction(Model):
    """New values for some fields of a child's record, and why; fields not given stay."""

    child_id: ChildId
    reason: Reason
    given_name: Name | None = None
    family_name: Name | None = None
    national_id: NationalId | None = None
    date_of_birth: IsoDate | None = None
    sex: Sex | None = None
    district: District | None = None
    guardian_name: Name | None = None
    guardian_phone: Phone | None = None
    clear: tuple[Literal["national_id", "guardian_name", "guardian_phone"], ...] = ()

    @model_validator(mode="after")
    def _something(self) -> Self:
        given = [f for f in CORRECTABLE if getattr(self, f) is not None]
        if not given and not self.clear:
            raise ValueError("give at least one field to correct (or clear)")
        both = sorted(set(given) & set(self.clear))
        if both:
            raise ValueError(f"clear must not name a field also given a new value: {both[0]}")
        return self

    def changes(self) -> dict[str, object]:
        """The new value of each field this correction touches (None: cleared)."""
        new: dict[str, object] = {f: getattr(self, f) for f in CORRECTABLE}
        out = {f: v for f, v in new.items() if v is not None}
        out.update(dict.fromkeys(self.clear))
        return out


class Closure(Model):
    """Closing a child's record: from which date on, why, and an optional note."""

    child_id: ChildId
    closed_on: IsoDate
    reason: CloseReason
    note: ShortText | None = None

    @model_validator(mode="after")
    def _sensible(self) -> Self:
        if self.closed_on > dt.date.today():
            raise ValueError("closed_on must not be in the future")
        if self.reason == "other" and self.note is None:
            raise ValueError("note must say why when the reason is other")
        return self


class ErasureIn(Model):
    """Erasing a child's record: which child, and why (a code: no free text is kept)."""

    child_id: ChildId
    reason: EraseReason


class FieldChange(Model):
    """One field's value before and after a step (None: not given)."""

    field: str
    before: str | None = None
    after: str | None = None


class HistoryEntry(Model):
    """One step of a record's life: who, when, what, why, and the fields it changed.

    ``scope`` says which part of the record the step is about: the academic year of a
    placement, the date of a care setting, the number of an assessment ("" for the child's
    own record). A step recorded before histories were kept is not listed.
    """

    seq: int = Field(ge=1)
    at: str  # UTC, e.g. 2026-12-07T09:30:00Z (as audit leaves write it)
    actor: str
    kind: Kind
    scope: str = ""
    reason: str | None = None
    changes: tuple[FieldChange, ...] = ()


class ChildHistory(Model):
    """A child's history, oldest first, and whether (since when, why) the record is closed."""

    child_id: ChildId
    entries: tuple[HistoryEntry, ...] = ()
    closed_on: dt.date | None = None
    close_reason: CloseReason | None = None
