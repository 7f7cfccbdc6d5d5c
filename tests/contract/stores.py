"""The stores the contract suite runs against, and the records it writes into them.

``STORES`` names each implementation with how to make an empty one (the ``store`` fixture
of conftest.py runs every contract test against each); the builders give records with
sensible defaults, so a test states only what it is about.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from childreg import codes
from node.store.base import (
    NewChild,
    RecordsStore,
    RecordStore,
    StoredAssessment,
    StoredCareSetting,
    StoredChild,
    StoredConsent,
    StoredPlacement,
    Transactional,
)
from node.store.memory import MemoryStore
from node.store.sqlcipher import SqlCipherStore
from tests.store_rows import new_child_row

YEAR = "2023/24"
REF = codes.reference_date(YEAR)  # 2023-09-15
NOW = dt.datetime(2024, 10, 1, 12, 0, tzinfo=dt.UTC)


def open_sqlcipher(directory: Path) -> SqlCipherStore:
    """A fresh SQLCipher store in ``directory`` with a random key."""
    return SqlCipherStore.open(directory / "node.db", secrets.token_hex(32), create=True)


STORES: dict[str, Callable[[Path], RecordStore]] = {
    "memory": lambda _: MemoryStore(),
    "sqlcipher": open_sqlcipher,
}


def child(
    child_id: str = "C1",
    *,
    nid: bytes | None = None,
    born: dt.date = dt.date(2015, 3, 1),
    sex: str = "female",
    district: str = "nasimi",
    identity: bytes = b"sealed-identity",
) -> StoredChild:
    """A stored child with sensible defaults."""
    return StoredChild(
        child_id, 1, b"wrapped-" + child_id.encode(), nid, born, sex, district, identity
    )


def assessment(
    child_id: str = "C1",
    on: dt.date = dt.date(2022, 5, 1),
    band: str | None = "pct_41_60",
    *,
    given_id: int = 0,
) -> StoredAssessment:
    """A stored assessment with two sealed fields."""
    return StoredAssessment(
        child_id,
        given_id,
        on,
        "Baku PMPC",
        band,
        "inclusive_class",
        on + dt.timedelta(days=365),
        {"diagnoses": b"\x00sealed-d", "supports": b"sealed-s\xff"},
    )


def place(
    store: RecordsStore, child_id: str, form: str = "inclusive_class", year: str = YEAR
) -> None:
    """Give a child a placement."""
    store.upsert_placement(StoredPlacement(child_id, year, form, None))


class BoomError(Exception):
    """Raised on purpose inside an atomic block."""


def fail_inside_atomic(store: Transactional, body: Callable[[], object]) -> None:
    """Run ``body`` inside ``store.atomic()`` and then raise BoomError out of the block."""
    with store.atomic():
        body()
        raise BoomError


@dataclass(frozen=True)
class NewRow:
    """A new child's records, and the bulk row they stand for."""

    child: StoredChild
    placement: StoredPlacement
    care: StoredCareSetting | None
    assessment: StoredAssessment | None

    @property
    def row(self) -> NewChild:
        return new_child_row(self.child, self.placement, self.care, self.assessment)


def new_row(
    child_id: str, *, nid: bytes | None = None, care: bool = True, assessed: bool = True
) -> NewRow:
    """A new child with a placement and, unless told otherwise, a care setting and assessment."""
    return NewRow(
        child(child_id, nid=nid),
        StoredPlacement(child_id, YEAR, "special_school", f"School of {child_id}"),
        StoredCareSetting(child_id, "foster_family", dt.date(2019, 4, 1)) if care else None,
        assessment(child_id, given_id=99) if assessed else None,
    )


def rows(*made: NewRow) -> list[NewChild]:
    """The bulk rows of ``made``."""
    return [r.row for r in made]


def consent(child_id: str = "C1", **changes: object) -> StoredConsent:
    """A standing consent of ``child_id`` with a fresh id and grant hash, then ``changes``."""
    made = StoredConsent(
        consent_id="K" + secrets.token_hex(6),
        child_id=child_id,
        purpose="iep_preparation",
        school="spiffe://fed.test/school/s1",
        valid_from=dt.date(2024, 9, 1),
        valid_until=dt.date(2025, 6, 30),
        evidence_ref="box 4",
        granted_at=NOW,
        granted_by="spiffe://fed.test/department-staff/d1.ann",
        grant_hash=secrets.token_bytes(32),
        sealed_guardian=b"sealed-guardian",
    )
    return dataclasses.replace(made, **changes)  # type: ignore[arg-type]
