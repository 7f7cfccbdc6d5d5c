"""The leaf's quick paths give exactly what the general ones gave.

``AuditEvent.to_bytes`` lists the fields itself (no ``dataclasses.asdict``) and the time
check tries a regular expression before ``strptime``; both are on every audit append.
They must not change a leaf's bytes (its hash is in every proof and checkpoint) nor which
leaves a verifier accepts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

from hypothesis import given
from hypothesis import strategies as st

from childreg.audit.leaf import ACTIONS, AuditEvent, _valid_time, utc_now

_hex = st.one_of(st.just(""), st.binary(min_size=32, max_size=32).map(bytes.hex))
_text = st.text(max_size=40)
_times = st.datetimes(
    min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31, 23, 59, 59)
).map(lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ").rjust(20, "0"))


def asdict_bytes(event: AuditEvent) -> bytes:
    """The bytes as ``to_bytes`` made them before (``dataclasses.asdict``)."""
    return json.dumps(
        dataclasses.asdict(event), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


_events = st.builds(
    AuditEvent,
    node=_text, seq=st.integers(0, 2**53), time=_times, actor=_text,
    action=st.sampled_from(sorted(ACTIONS)), purpose=_text, grant=_text,
    subject=_hex, request=_hex, outcome=_text,
)  # fmt: skip


@given(_events)
def test_to_bytes_is_the_asdict_form(event: AuditEvent) -> None:
    """Any leaf serialises to exactly the bytes ``dataclasses.asdict`` gave, and reads back to
    itself."""
    assert event.to_bytes() == asdict_bytes(event)
    assert AuditEvent.from_bytes(event.to_bytes()) == event


def test_to_bytes_names_every_field() -> None:
    """A serialised leaf has one key per field of the dataclass, no more and no fewer."""
    event = AuditEvent("d1", 0, utc_now(), "spiffe://f/school/s", "extract.disclose")
    assert sorted(json.loads(event.to_bytes())) == sorted(
        f.name for f in dataclasses.fields(AuditEvent)
    )


def strptime_accepts(text: str) -> bool:
    try:
        dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return False
    return True


@given(
    st.one_of(
        _times,
        st.from_regex(r"\A[0-9]{1,4}-[0-9]{1,2}-[0-9]{1,2}T[0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}Z?\Z"),
        st.text(alphabet="0123456789-:TZ \u0661", max_size=22),  # and an Arabic-Indic 1,
    )
)
def test_the_time_check_accepts_what_strptime_accepts(text: str) -> None:
    """The quick time check accepts a string exactly when ``strptime`` in the leaf's format does."""
    assert _valid_time(text) == strptime_accepts(text)


def test_the_time_check_at_the_edges() -> None:
    """Leap days, leap seconds, hour 24, unpadded fields, year 0, a missing Z, a space and the empty
    string are judged as ``strptime`` judges them."""
    for text in (
        "2024-02-29T00:00:00Z", "2023-02-29T00:00:00Z", "2026-11-22T23:59:60Z",
        "2026-11-22T24:00:00Z", "2026-1-2T3:4:5Z", "0000-01-01T00:00:00Z",
        "2026-11-22T12:00:00", "2026-11-22 12:00:00Z", "",
    ):  # fmt: skip
        assert _valid_time(text) == strptime_accepts(text), text
