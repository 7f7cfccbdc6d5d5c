"""Purpose-limited extracts for schools: check the grant, keep only what the purpose allows.

Why: a school preparing a child's individual education plan may see the commission's
assessment only while the guardian's consent stands, only that school, and only the
fields the purpose allows (docs/extracts.md; SECURITY.md, "Consent and purpose-limited
extracts"). :data:`POLICY` is that allow-list; a field that is not in it has no
extractor here at all, so a diagnosis, national id, family name, guardian, care setting
or district can never reach an extract. The extract is canonical JSON signed by the node
(Ed25519 over a domain-separated payload) and sealed to the school's X25519 key.

Every refusal is a specific :class:`~childreg.errors.ChildregError` whose message carries
no personal data; an unknown, withdrawn, expired, not-yet-valid or foreign grant all get
the same "grant not valid", so a guesser learns nothing about which children exist.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Final

import nacl.bindings
import nacl.exceptions
import nacl.public
import nacl.signing

from childreg.errors import (
    FailedPrecondition,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Violation,
)
from childreg.extract_format import EXTRACT_TYPE, EXTRACT_VERSION, SIGNING_DOMAIN
from childreg.models import AssessmentIn, ChildView
from node.keys import Keyring
from node.records import Registry
from node.store.base import RecordStore, StoredConsent

GRANT_RE: Final = re.compile(r"cg1_[A-Za-z0-9_-]{43}")
DENIED: Final = "grant not valid"

#: Purpose -> the child fields an extract for it may carry (the whole allow-list).
POLICY: Final[dict[str, tuple[str, ...]]] = {
    "iep_preparation": (
        "given_name",
        "birth_year",
        "functioning",
        "icf_codes",
        "supports",
        "accommodations",
        "recommended_form",
        "education_form",
        "assessment_date",
        "next_review",
    ),
}


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day is not None else None


def academic_year_of(day: dt.date) -> str:
    """The academic year a day falls in (years start on 1 September): '2024/25'."""
    start = day.year if day.month >= 9 else day.year - 1
    return f"{start}/{(start + 1) % 100:02d}"


def _education_form(view: ChildView, a: AssessmentIn, today: dt.date) -> str | None:
    year = academic_year_of(today)
    return next((p.education_form for p in view.placements if p.academic_year == year), None)


#: How each allowed field is taken from the child's view and latest assessment.
_FIELDS: Final[dict[str, Callable[[ChildView, AssessmentIn, dt.date], Any]]] = {
    "given_name": lambda v, a, t: v.child.given_name,
    "birth_year": lambda v, a, t: v.child.date_of_birth.year,
    "functioning": lambda v, a, t: [{"domain": f.domain, "level": f.level} for f in a.functioning],
    # Only activity/participation (d…) and environmental (e…) codes; body codes may hint
    # at a diagnosis.
    "icf_codes": lambda v, a, t: [c for c in a.icf_codes if c[:1] in ("d", "e")],
    "supports": lambda v, a, t: list(a.supports),
    "accommodations": lambda v, a, t: list(a.accommodations),
    "recommended_form": lambda v, a, t: a.recommended_form,
    "education_form": _education_form,
    "assessment_date": lambda v, a, t: a.assessment_date.isoformat(),
    "next_review": lambda v, a, t: _iso(a.next_review),
}
if any(f not in _FIELDS for fields in POLICY.values() for f in fields):  # pragma: no cover
    raise RuntimeError("POLICY names a field with no extractor")


def parse_grant(grant: object) -> str:
    """The grant if it is well formed (``cg1_`` + canonical base64url of 32 bytes)."""
    bad = InvalidInput(
        "grant is malformed", [Violation("grant", "must be cg1_ followed by 43 base64url chars")]
    )
    if not isinstance(grant, str) or GRANT_RE.fullmatch(grant) is None:
        raise bad
    body = grant[4:]
    try:
        raw = base64.urlsafe_b64decode(body + "=")
    except (binascii.Error, ValueError):
        raise bad from None
    if len(raw) != 32 or base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != body:
        raise bad  # a non-canonical spelling of some bytes is not the grant that was issued
    return grant


def parse_recipient_key(key: object) -> bytes:
    """The school's X25519 public key if it is 32 bytes and usable (not a low-order point)."""
    bad = InvalidInput(
        "recipient_key is not a usable X25519 public key",
        [Violation("recipient_key", "must be a 32-byte X25519 public key")],
    )
    if not isinstance(key, bytes) or len(key) != 32:
        raise bad
    try:  # libsodium refuses keys whose shared secret would be all zeros
        nacl.bindings.crypto_box_beforenm(key, _PROBE_SECRET)
    except nacl.exceptions.CryptoError:
        raise bad from None
    return key


_PROBE_SECRET: Final = bytes(nacl.public.PrivateKey.from_seed(b"\x01" * 32))


def grant_ref(grant_hash: bytes) -> str:
    """What the audit log records for a grant: the first 16 hex of its keyed hash."""
    return grant_hash.hex()[:16]


def extract_verify_key(keyring: Keyring) -> bytes:
    """The node's 32-byte Ed25519 key that verifies its extracts (what it publishes)."""
    return bytes(nacl.signing.SigningKey(keyring.extract_signing_seed()).verify_key)


def canonical_json(value: object) -> bytes:
    """Sorted keys, no spaces, UTF-8: the one byte form of a JSON value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def rfc3339(moment: dt.datetime) -> str:
    """A UTC instant as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Attempt:
    """What an extract call learnt before it was granted or refused (for its audit leaf)."""

    child_id: str | None = None
    grant_ref: str = ""
    purpose: str = ""


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ExtractDesk:
    """Checks a school's grant and builds the signed, sealed extract it may have."""

    def __init__(
        self,
        store: RecordStore,
        keyring: Keyring,
        registry: Registry,
        *,
        origin: str,
        guard: Callable[[], None],
        clock: Callable[[], dt.datetime] = _utc_now,
    ) -> None:
        self._store = store
        self._keyring = keyring
        self._registry = registry
        self._origin = origin
        self._guard = guard
        self._clock = clock
        self._signer = nacl.signing.SigningKey(keyring.extract_signing_seed())

    def extract(
        self, grant: str, recipient_key: bytes, caller: str, attempt: Attempt | None = None
    ) -> tuple[bytes, str, str]:
        """(sealed extract, child id, grant ref) or a specific error and nothing.

        ``attempt``, if given, is filled in as soon as the grant is looked up, so a
        refusal after that point can still be logged against the child and grant.
        """
        attempt = attempt if attempt is not None else Attempt()
        parse_grant(grant)
        parse_recipient_key(recipient_key)
        self._guard()  # fail closed: no disclosure while the log is not witnessed
        digest = self._keyring.grant_hash(grant)
        attempt.grant_ref = grant_ref(digest)
        consent = self._store.consent_by_grant(digest)
        if consent is None:
            raise PermissionDenied(DENIED)
        attempt.child_id = consent.child_id
        attempt.purpose = consent.purpose
        now = self._clock()
        self._check_standing(consent, caller, now.astimezone(dt.UTC).date())
        if consent.purpose not in POLICY:
            raise PermissionDenied("the grant's purpose allows no extract")
        sealed = self._build(consent, attempt.grant_ref, recipient_key, now)
        return sealed, consent.child_id, attempt.grant_ref

    def transaction(self) -> AbstractContextManager[None]:
        """The store's write transaction: withdrawals wait for it, and it for them."""
        return self._store.atomic()

    def confirm(self, grant: str, caller: str) -> None:
        """Inside :meth:`transaction`: the consent still stands (a withdrawal that landed
        while the extract was built stops it here, before its leaf and its bytes)."""
        consent = self._store.consent_by_grant(self._keyring.grant_hash(grant))
        if consent is None:
            raise PermissionDenied(DENIED)
        self._check_standing(consent, caller, self._clock().astimezone(dt.UTC).date())

    @staticmethod
    def _check_standing(consent: StoredConsent, caller: str, today: dt.date) -> None:
        if consent.withdrawn_at is not None:
            raise PermissionDenied(DENIED)
        if not consent.valid_from <= today <= consent.valid_until:
            raise PermissionDenied(DENIED)
        if caller != consent.school:
            raise PermissionDenied(DENIED)

    def _build(
        self, consent: StoredConsent, ref: str, recipient_key: bytes, now: dt.datetime
    ) -> bytes:
        try:
            view = self._registry.get_child(consent.child_id)
        except NotFound:
            raise NotFound("the child of this grant is not held by this node") from None
        if not view.assessments:
            raise FailedPrecondition("no assessment is recorded for the child of this grant")
        latest = max(view.assessments, key=lambda a: a.assessment_date)
        today = now.astimezone(dt.UTC).date()
        child = {name: _FIELDS[name](view, latest, today) for name in POLICY[consent.purpose]}
        end = dt.datetime.combine(consent.valid_until, dt.time(23, 59, 59), tzinfo=dt.UTC)
        payload = canonical_json(
            {
                "v": EXTRACT_VERSION,
                "type": EXTRACT_TYPE,
                "node": self._origin,
                "grant_ref": ref,
                "purpose": consent.purpose,
                "audience": consent.school,
                "recipient_key": base64.b64encode(recipient_key).decode(),
                "issued_at": rfc3339(now),
                "expires_at": rfc3339(end),
                "child": child,
            }
        )
        signature = self._signer.sign(SIGNING_DOMAIN + payload).signature
        envelope = canonical_json(
            {
                "payload": payload.decode(),
                "signature": base64.b64encode(signature).decode(),
                "signer": base64.b64encode(bytes(self._signer.verify_key)).decode(),
            }
        )
        return nacl.public.SealedBox(nacl.public.PublicKey(recipient_key)).encrypt(envelope)
