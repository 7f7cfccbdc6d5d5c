"""What one audit-log leaf says, as canonical bytes: who did what to which child, and how.

A leaf never holds personal data: the child appears only as the node's keyed pseudonym
(BLAKE2b under a key that never leaves the node, so nobody else can link it to a child;
the department can compute it for a guardian's "who accessed my child's data"), the
request only as a keyed digest. Canonical bytes (sorted-key, compact UTF-8 JSON with
a fixed key set) make the leaf hash reproducible by any auditor holding the bytes.

Fields: ``v`` (format version), ``node`` (department id), ``seq`` (leaf index), ``time``
(UTC, seconds), ``actor`` (the caller: a SPIFFE id or a person's or operator's name),
``action`` (see :data:`ACTIONS`), ``purpose``, ``grant``, ``subject`` (hex pseudonym or
""), ``request`` (hex keyed BLAKE2b-256 of the request bytes, node/audit/log.py, or ""),
``outcome`` ("OK" or a gRPC status name).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any, Final

from childreg.errors import InvalidInput, Violation

VERSION: Final = 1

#: Every action a leaf may record.
ACTIONS: Final = frozenset(
    {
        "child.read",
        "child.search",
        "child.register",
        "child.update",  # leaves of nodes before corrections kept a reason
        "child.correct",
        "child.close",
        "child.erase",  # crypto-shredded; the leaf's purpose is the reason code
        "child.history",
        "placement.record",
        "care_setting.record",
        "assessment.record",
        "records.import",
        "statistics.release",
        "statistics.share",
        "statistics.unmask",  # a survivor's revealed key shares of a secure round
        "extract.disclose",
        "breakglass.read",
        "consent.grant",
        "consent.withdraw",
        "audit.read",
        "retention.review",  # what the retention rules make due was listed (no subject)
        "keys.rotate",  # an operator rewrapped every key under a new KEK
        "keys.rekey_db",  # an operator re-encrypted the database under a new database key
        "keys.rotate_signing",  # an operator replaced a signing key (audit, extract, upload)
        "console.sign_in",  # a person signing in to the node's web console (node/console/)
        "console.sign_out",
        "console.account",  # a console account added, reset, disabled or listed
        "statistics.count",  # the department's own exact counts, read in the console
        "node.restore",  # an operator restored the node from a backup and its journal
        "denied",
    }
)

_HEX64: Final = re.compile(r"[0-9a-f]{64}")
_PADDED_TIME: Final = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)Z", re.ASCII)
_KEYS: Final = (
    "action", "actor", "grant", "node", "outcome", "purpose", "request", "seq", "subject",
    "time", "v",
)  # fmt: skip
MAX_LEAF_BYTES: Final = 4096


@dataclass(frozen=True)
class AuditEvent:
    """One leaf's content (``seq`` and ``time`` are set when it is appended)."""

    node: str
    seq: int
    time: str
    actor: str
    action: str
    purpose: str = ""
    grant: str = ""
    subject: str = ""
    request: str = ""
    outcome: str = "OK"
    v: int = VERSION

    def __post_init__(self) -> None:
        problems = []
        if self.action not in ACTIONS:
            problems.append(Violation("action", "not an audit action"))
        if self.seq < 0:
            problems.append(Violation("seq", "must not be negative"))
        for name in ("subject", "request"):
            value = getattr(self, name)
            if value and not _HEX64.fullmatch(value):
                problems.append(Violation(name, "must be 64 lowercase hex digits or empty"))
        if not _valid_time(self.time):
            problems.append(Violation("time", "must be UTC like 2026-11-22T12:00:00Z"))
        if problems:
            raise InvalidInput("invalid audit leaf", problems)

    def to_bytes(self) -> bytes:
        """The canonical bytes that are hashed into the log."""
        fields = {
            "action": self.action,
            "actor": self.actor,
            "grant": self.grant,
            "node": self.node,
            "outcome": self.outcome,
            "purpose": self.purpose,
            "request": self.request,
            "seq": self.seq,
            "subject": self.subject,
            "time": self.time,
            "v": self.v,
        }  # every field (tests/unit/test_audit_leaf.py checks it against the dataclass)
        data = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return data.encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> AuditEvent:
        """Parse and check canonical bytes (InvalidInput if they are not canonical)."""
        if len(data) > MAX_LEAF_BYTES:
            raise InvalidInput("audit leaf too large", [Violation("leaf", "too large")])
        try:
            obj: Any = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise InvalidInput(
                "audit leaf is not UTF-8 JSON", [Violation("leaf", "not JSON")]
            ) from None
        if not isinstance(obj, dict) or tuple(sorted(obj)) != _KEYS:
            raise InvalidInput("audit leaf has other fields", [Violation("leaf", "wrong fields")])
        ints = ("seq", "v")
        if any(type(obj[k]) is not int for k in ints) or any(
            type(obj[k]) is not str for k in _KEYS if k not in ints
        ):  # JSON true is not a number here, nor a number a name
            raise InvalidInput("audit leaf has wrong types", [Violation("leaf", "types")])
        try:
            event = cls(**obj)
        except TypeError:
            raise InvalidInput("audit leaf has wrong types", [Violation("leaf", "types")]) from None
        if event.to_bytes() != data:
            raise InvalidInput("audit leaf is not canonical", [Violation("leaf", "not canonical")])
        return event


def _valid_time(text: str) -> bool:
    """Whether ``strptime(text, "%Y-%m-%dT%H:%M:%SZ")`` would accept ``text``.

    A node's own times (:func:`utc_now`) are zero-padded and take the quick way: a regular
    expression and the date's range check, a tenth of strptime's cost. Anything else is
    judged by strptime itself, so leaves from elsewhere are judged exactly as before.
    """
    m = _PADDED_TIME.fullmatch(text)
    if m is not None:
        try:
            year, month, day, hour, minute, second = map(int, m.groups())
            dt.datetime(year, month, day, hour, minute, second)  # only the ranges
        except ValueError:
            pass
        else:
            return True
    try:
        dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return False
    return True


def utc_now() -> str:
    """The current time as a leaf writes it."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
