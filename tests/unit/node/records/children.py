"""A valid child record for the registry's tests, one place for its defaults."""

from __future__ import annotations

import datetime as dt
import zlib
from typing import Any

from childreg.models import ChildIn


def a_child(child_id: str = "C1", **changes: Any) -> ChildIn:
    """A valid child record (a national id of its own per child id), with ``changes``."""
    fields: dict[str, Any] = {
        "child_id": child_id,
        "national_id": f"AZ{zlib.crc32(child_id.encode()) % 10**8:08d}",
        "given_name": "Aysel",
        "family_name": "Məmmədova",
        "date_of_birth": dt.date(2015, 3, 14),
        "sex": "female",
        "district": "nasimi",
        "guardian_name": "Leyla Məmmədova",
        "guardian_phone": "+994 50 123 45 67",
    }
    return ChildIn(**(fields | changes))
