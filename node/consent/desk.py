"""A guardian's consent at the department, and the grant the school holds because of it.

A school may receive a purpose-limited extract of a child's record only while a guardian's
consent for that purpose and that school stands. Department staff record the consent
here; granting produces a random, unguessable grant token that staff hand to the school.
The node keeps only a keyed hash of the token (``Keyring.grant_hash``), so a stolen
database yields no usable grant, and the guardian's name only sealed under the child's
key, together with the language the guardian chose for the receipts (so the withdrawal's
receipt is in the grant's language; sealed, since a language can hint at who a family is).
Withdrawing takes effect immediately: the extract side reads the same row.

Error messages name fields and consent ids, never a guardian's name.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import secrets
from collections.abc import Callable
from typing import Any, Final

from pydantic import ValidationError, ValidationInfo, field_validator

from childreg import i18n
from childreg.errors import FailedPrecondition, InvalidInput, NotFound, Violation
from childreg.models import ChildId, IsoDate, Model, Name, ShortText, violations_of, years_after
from node.consent.receipts import receipt_language
from node.crypto.keys import Keyring
from node.records.erasure import absent
from node.store.base import RecordStore, StoredConsent

#: The fixed vocabulary of purposes a consent may name.
PURPOSES: Final = ("iep_preparation",)
#: The grant a school holds: a version prefix and 32 random bytes, base64url without padding.
GRANT_PREFIX: Final = "cg1_"
GRANT_RE: Final = re.compile(r"^cg1_[A-Za-z0-9_-]{43}$")
CONSENT_ID_RE: Final = re.compile(r"^cns_[0-9a-f]{32}$")
GUARDIAN_CONTEXT: Final = "consent.guardian"
#: Marks the sealed guardian as ``NUL language NUL name`` (a name holds no control
#: character); a sealed name without it is from before languages were kept (language "").
_WITH_LANGUAGE: Final = b"\x00"

_SCHOOL_RE: Final = re.compile(
    r"^spiffe://(?P<federation>[a-z0-9][a-z0-9.-]{0,252})/school/"
    r"(?P<id>[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?)$"
)


def _context(info: ValidationInfo, key: str) -> Any:
    return info.context.get(key) if isinstance(info.context, dict) else None


class ConsentIn(Model):
    """A guardian's consent as staff record it.

    Validation context (optional): ``federation`` (the school must belong to it) and
    ``today`` (``valid_until`` must not be before it; default: today's date).
    """

    child_id: ChildId
    guardian_name: Name
    purpose: str
    school: str
    valid_from: IsoDate
    valid_until: IsoDate
    evidence_ref: ShortText
    #: The guardian's language for the receipts ("" = the country profile's first).
    language: str = ""

    @field_validator("language")
    @classmethod
    def _spoken(cls, value: str) -> str:
        if value and value not in i18n.LANGUAGES:
            raise ValueError(f"unknown language; expected one of: {', '.join(i18n.LANGUAGES)}")
        return value

    @field_validator("purpose")
    @classmethod
    def _known_purpose(cls, value: str) -> str:
        if value not in PURPOSES:
            raise ValueError(f"unknown purpose; expected one of: {', '.join(PURPOSES)}")
        return value

    @field_validator("school")
    @classmethod
    def _school_of_federation(cls, value: str, info: ValidationInfo) -> str:
        m = _SCHOOL_RE.fullmatch(value)
        if not m:
            raise ValueError("must be a school identity: spiffe://<federation>/school/<id>")
        federation = _context(info, "federation")
        if federation and m.group("federation") != federation:
            raise ValueError("must be a school of this federation")
        return value

    @field_validator("valid_from")
    @classmethod
    def _from_within_a_year(cls, value: dt.date, info: ValidationInfo) -> dt.date:
        today = _context(info, "today") or dt.date.today()
        if not years_after(today, -1) <= value <= years_after(today, 1):
            raise ValueError("must be within a year of today")
        return value

    @field_validator("valid_until")
    @classmethod
    def _until_in_range(cls, value: dt.date, info: ValidationInfo) -> dt.date:
        today = _context(info, "today") or dt.date.today()
        if value < today:
            raise ValueError("must not be in the past")
        start = info.data.get("valid_from")
        if isinstance(start, dt.date):
            if value <= start:
                raise ValueError("must be after valid_from")
            if value > _two_years_after(start):
                raise ValueError("must be at most 2 years after valid_from")
        return value


def _two_years_after(day: dt.date) -> dt.date:
    """The same calendar day two years later (28 February for a 29 February start)."""
    try:
        return day.replace(year=day.year + 2)
    except ValueError:
        return day.replace(year=day.year + 2, day=28)


def parse_consent(data: Any, *, federation: str = "", today: dt.date | None = None) -> ConsentIn:
    """Validate ``data`` as a consent or raise InvalidInput naming each bad field."""
    if isinstance(data, ConsentIn):
        data = data.model_dump()
    try:
        return ConsentIn.model_validate(data, context={"federation": federation, "today": today})
    except ValidationError as exc:
        raise InvalidInput("invalid consent", violations_of(exc)) from None


def new_grant() -> str:
    """A fresh grant token: ``cg1_`` + 43 base64url characters (32 random bytes)."""
    raw = secrets.token_bytes(32)
    return GRANT_PREFIX + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _new_consent_id() -> str:
    return "cns_" + secrets.token_hex(16)


class ConsentDesk:
    """Records, withdraws and reads consents; every write runs inside ``store.atomic()``."""

    def __init__(
        self,
        store: RecordStore,
        keyring: Keyring,
        federation: str,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._store = store
        self._keys = keyring
        self._federation = federation
        self._clock = clock

    def parse(self, data: Any) -> ConsentIn:
        """Validate input as a consent for this federation as of the desk's today."""
        return parse_consent(data, federation=self._federation, today=self._clock().date())

    def grant(self, consent: ConsentIn, granted_by: str) -> tuple[StoredConsent, str]:
        """Record a consent; (the stored consent, the grant token shown once to staff)."""
        now = self._clock()
        checked = parse_consent(consent, federation=self._federation, today=now.date())
        with self._store.atomic():
            child = self._store.get_child(checked.child_id)
            if child is None:
                raise absent(self._store, self._keys, checked.child_id)
            if self._store.closure(checked.child_id) is not None:
                raise FailedPrecondition("the child's record is closed; it takes no new consent")
            key = self._keys.child_key(child.child_id, child.key_version, child.wrapped_key)
            consent_id = _new_consent_id()
            token = new_grant()
            stored = StoredConsent(
                consent_id=consent_id,
                child_id=checked.child_id,
                purpose=checked.purpose,
                school=checked.school,
                valid_from=checked.valid_from,
                valid_until=checked.valid_until,
                evidence_ref=checked.evidence_ref,
                granted_at=now,
                granted_by=granted_by,
                grant_hash=self._keys.grant_hash(token),
                sealed_guardian=self._keys.seal(
                    key,
                    child.child_id,
                    _guardian_context(consent_id),
                    _guardian_plain(checked.guardian_name, receipt_language(checked.language)),
                ),
            )
            self._store.insert_consent(stored)
        return stored, token

    def withdraw(self, consent_id: str, by: str) -> StoredConsent:
        """Withdraw a standing consent now; NotFound, or FailedPrecondition if withdrawn."""
        del by  # the audit leaf names who withdrew; the row keeps only when
        with self._store.atomic():
            current = self.get(consent_id)
            if current.withdrawn_at is not None:
                raise FailedPrecondition(f"consent {current.consent_id} is already withdrawn")
            if not self._store.withdraw_consent(current.consent_id, self._clock()):
                raise FailedPrecondition(f"consent {current.consent_id} is already withdrawn")
            return self.get(current.consent_id)

    def get(self, consent_id: str) -> StoredConsent:
        """One consent by id; InvalidInput if malformed, NotFound if absent."""
        cleaned = consent_id.strip()
        if not CONSENT_ID_RE.fullmatch(cleaned):
            raise InvalidInput(
                "invalid consent id", [Violation("consent_id", "must look like cns_ + 32 hex")]
            )
        found = self._store.get_consent(cleaned)
        if found is None:
            raise NotFound("no consent with that consent_id")
        return found

    def list(self, child_id: str) -> list[StoredConsent]:
        """A child's consents, oldest first; NotFound for an unknown child."""
        cleaned = child_id.strip()
        with self._store.read_view():
            if self._store.get_child(cleaned) is None:
                raise absent(self._store, self._keys, cleaned)
            return self._store.consents_of(cleaned)

    def guardian_and_language(self, consent: StoredConsent) -> tuple[str, str]:
        """The guardian's name and the receipts' language chosen at the grant ("" if the
        consent predates that choice), unsealed: for the guardian's receipt only."""
        child = self._store.get_child(consent.child_id)
        if child is None:
            raise absent(self._store, self._keys, consent.child_id)
        key = self._keys.child_key(child.child_id, child.key_version, child.wrapped_key)
        plain = self._keys.unseal(
            key, child.child_id, _guardian_context(consent.consent_id), consent.sealed_guardian
        )
        if plain.startswith(_WITH_LANGUAGE):
            language, _, name = plain[1:].partition(_WITH_LANGUAGE)
            return name.decode("utf-8"), language.decode("ascii")
        return plain.decode("utf-8"), ""


def _guardian_plain(name: str, language: str) -> bytes:
    return _WITH_LANGUAGE + language.encode("ascii") + _WITH_LANGUAGE + name.encode("utf-8")


def _guardian_context(consent_id: str) -> str:
    return f"{GUARDIAN_CONTEXT}:{consent_id}"
