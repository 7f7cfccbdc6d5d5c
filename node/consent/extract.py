"""Purpose-limited extracts for schools: check the grant, keep only what the purpose allows.

Why: a school preparing a child's individual education plan may see the commission's
assessment only while the guardian's consent stands, only that school, and only the
fields the purpose allows (docs/extracts.md; docs/design/security.md, "Consent and purpose-limited
extracts"). :data:`POLICY` is that allow-list; a field that is not in it has no
extractor here at all, so a diagnosis, national id, family name, guardian, care setting
or district can never reach an extract. The extract is canonical JSON signed by the node
(Ed25519 over a domain-separated payload) and sealed to the school's X25519 key.

Only what an extract is made of is read (``RecordStore.extract_source``: point look-ups,
no view models) and only the identity and the assessment fields an extractor asks for
are unsealed (:class:`_Record`): the diagnoses are never opened for an extract.

Every refusal is a specific :class:`~childreg.errors.ChildregError` whose message carries
no personal data; an unknown, withdrawn, expired, not-yet-valid or foreign grant all get
the same "grant not valid", so a guesser learns nothing about which children exist.

:class:`Extracts` is what a front door calls: one ``extract.disclose`` leaf per call
(node/audit/service.py). An extract learns its child only from the grant, so a refusal
before the grant lookup has no subject; after it, the leaf names the child's pseudonym and
the grant reference (never the grant). The consent check, the build and the leaf of a
granted extract are one write transaction, committed before the sealed bytes are returned
(write-ahead): a withdrawal cannot fall between check and leaf, and if the log cannot be
written, the school gets an error and no data. A refusal rolls that transaction back and
is logged in a leaf of its own.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import json
import re
from collections.abc import Callable, Sequence
from json.encoder import encode_basestring
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
from childreg.signed import canonical_json
from node.audit.actor import Actor
from node.audit.service import Audited, Learnt
from node.crypto.keys import Keyring
from node.records.registry import IDENTITY_CONTEXT, assessment_context
from node.store.base import (
    ExtractSource,
    RecordStore,
    StoredAssessment,
    StoredChild,
    StoredConsent,
)

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


#: The sealed assessment fields an extractor may open (never the diagnoses).
OPENABLE: Final = frozenset({"functioning", "icf_codes", "supports", "accommodations"})


class _Record:
    """One child as an extract sees it: the rows as stored, sealed fields opened on demand.

    Only what an extractor asks for is unsealed, and only the identity and the
    :data:`OPENABLE` assessment fields can be: a field no extractor names stays sealed.
    """

    __slots__ = ("_identity", "_key", "_keys", "_opened", "assessment", "child", "source")

    def __init__(self, keys: Keyring, source: ExtractSource, child: StoredChild,
                 assessment: StoredAssessment) -> None:  # fmt: skip
        self._keys = keys
        self._key = keys.child_key(child.child_id, child.key_version, child.wrapped_key)
        self._identity: dict[str, Any] | None = None
        self._opened: dict[str, Any] = {}
        self.source, self.child, self.assessment = source, child, assessment

    def identity(self, name: str) -> Any:
        """One identity field (the identity is sealed as one object)."""
        if self._identity is None:
            child = self.child
            plain = self._keys.unseal(
                self._key, child.child_id, IDENTITY_CONTEXT, child.sealed_identity
            )
            self._identity = json.loads(plain)
        return self._identity[name]

    def sealed(self, name: str) -> Any:
        """One of the :data:`OPENABLE` assessment fields, unsealed."""
        if name not in OPENABLE:  # pragma: no cover - no extractor asks for another
            raise RuntimeError("an extract may not open this assessment field")
        if name not in self._opened:
            a = self.assessment
            context = assessment_context(a.assessment_id, name)
            plain = self._keys.unseal(
                self._key, a.child_id, context, a.sealed_fields.get(name, b"")
            )
            self._opened[name] = json.loads(plain)
        return self._opened[name]


#: How each allowed field is taken from the child's record and latest assessment.
_FIELDS: Final[dict[str, Callable[[_Record], Any]]] = {
    "given_name": lambda r: r.identity("given_name"),
    "birth_year": lambda r: r.child.date_of_birth.year,
    "functioning": lambda r: [{"domain": d, "level": v} for d, v in r.sealed("functioning")],
    # Only activity/participation (d…) and environmental (e…) codes; body codes may hint
    # at a diagnosis.
    "icf_codes": lambda r: [c for c in r.sealed("icf_codes") if c[:1] in ("d", "e")],
    "supports": lambda r: list(r.sealed("supports")),
    "accommodations": lambda r: list(r.sealed("accommodations")),
    "recommended_form": lambda r: r.assessment.recommended_form,
    "education_form": lambda r: r.source.education_form,  # the current year's placement
    "assessment_date": lambda r: r.assessment.assessment_date.isoformat(),
    "next_review": lambda r: _iso(r.assessment.next_review),
}
if any(f not in _FIELDS for fields in POLICY.values() for f in fields):  # pragma: no cover
    raise RuntimeError("POLICY names a field with no extractor")


def parse_grant(grant: object) -> str:
    """The grant if it is well formed (``cg1_`` + canonical base64url of 32 bytes)."""
    if not isinstance(grant, str) or GRANT_RE.fullmatch(grant) is None:
        raise _malformed_grant()
    body = grant[4:]
    try:
        raw = base64.urlsafe_b64decode(body + "=")
    except (binascii.Error, ValueError):
        raise _malformed_grant() from None
    if len(raw) != 32 or base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != body:
        raise _malformed_grant()  # a non-canonical spelling is not the grant that was issued
    return grant


def _malformed_grant() -> InvalidInput:
    return InvalidInput(
        "grant is malformed", [Violation("grant", "must be cg1_ followed by 43 base64url chars")]
    )


def parse_recipient_key(key: object) -> bytes:
    """The school's X25519 public key if it is 32 bytes and usable (not a low-order point)."""
    if not isinstance(key, bytes) or len(key) != 32 or not _usable_x25519(key):
        raise InvalidInput(
            "recipient_key is not a usable X25519 public key",
            [Violation("recipient_key", "must be a 32-byte X25519 public key")],
        )
    return key


@functools.lru_cache(maxsize=1024)  # a school sends the same key again and again
def _usable_x25519(key: bytes) -> bool:
    try:  # libsodium refuses keys whose shared secret would be all zeros
        nacl.bindings.crypto_box_beforenm(key, _PROBE_SECRET)
    except nacl.exceptions.CryptoError:
        return False
    return True


_PROBE_SECRET: Final = bytes(nacl.public.PrivateKey.from_seed(b"\x01" * 32))


def grant_ref(grant_hash: bytes) -> str:
    """What the audit log records for a grant: the first 16 hex of its keyed hash."""
    return grant_hash.hex()[:16]


def extract_verify_key(keyring: Keyring) -> bytes:
    """The node's 32-byte Ed25519 key that verifies its extracts (what it publishes)."""
    return bytes(nacl.signing.SigningKey(keyring.extract_signing_seed()).verify_key)


def envelope_json(
    payload: str, signature_b64: str, signer_b64: str, transitions: Sequence[str] = ()
) -> bytes:
    """``canonical_json`` of the envelope ``{"payload", "signature", "signer"}`` (and
    ``"transitions"``, the extract key's statements, once it was rotated), built directly:
    the keys are fixed and sorted, and base64 text needs no escaping."""
    text = encode_basestring(payload)
    head = f'{{"payload":{text},"signature":"{signature_b64}","signer":"{signer_b64}"'
    if not transitions:
        return (head + "}").encode()
    notes = ",".join(encode_basestring(note) for note in transitions)
    return (head + f',"transitions":[{notes}]}}').encode()


def rfc3339(moment: dt.datetime) -> str:
    """A UTC instant as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ExtractDesk:
    """Checks a school's grant and builds the signed, sealed extract it may have.

    It reads only what an extract needs (:meth:`RecordStore.extract_source`) and unseals
    only the fields :data:`POLICY` allows.
    """

    def __init__(
        self,
        store: RecordStore,
        keyring: Keyring,
        *,
        origin: str,
        guard: Callable[[], None],
        clock: Callable[[], dt.datetime] = _utc_now,
        transitions: Sequence[str] = (),
    ) -> None:
        self._store = store
        self._keyring = keyring
        self._origin = origin
        self._guard = guard
        self._clock = clock
        self._signer = nacl.signing.SigningKey(keyring.extract_signing_seed())
        self._signer_b64 = base64.b64encode(bytes(self._signer.verify_key)).decode()
        # The extract key's transition statements (node/key_rotation.py), so a school that
        # pinned an earlier key follows to this one.
        self._transitions = tuple(transitions)

    def extract(
        self, grant: str, recipient_key: bytes, caller: str, attempt: Learnt | None = None
    ) -> tuple[bytes, str, str]:
        """(sealed extract, child id, grant ref) or a specific error and nothing.

        ``attempt``, if given, is filled in as soon as the grant is looked up (child,
        purpose, grant reference), so a refusal after that point can still be logged
        against the child and grant. Inside the store's ``atomic()`` block (as
        :class:`Extracts` calls it), the reads are on the writer and see its state, so
        withdrawals wait for the extract, and it for them.
        """
        attempt = attempt if attempt is not None else Learnt()
        parse_grant(grant)
        parse_recipient_key(recipient_key)
        self._guard()  # fail closed: no disclosure while the log is not witnessed
        digest = self._keyring.grant_hash(grant)
        attempt.grant = grant_ref(digest)
        now = self._clock()
        today = now.astimezone(dt.UTC).date()
        source = self._store.extract_source(digest, academic_year_of(today))
        if source is None:
            raise PermissionDenied(DENIED)
        consent = source.consent
        attempt.child_id = consent.child_id
        attempt.purpose = consent.purpose
        self._check_standing(consent, caller, today)
        if consent.purpose not in POLICY:
            raise PermissionDenied("the grant's purpose allows no extract")
        sealed = self._build(source, attempt.grant, recipient_key, now)
        return sealed, consent.child_id, attempt.grant

    @staticmethod
    def _check_standing(consent: StoredConsent, caller: str, today: dt.date) -> None:
        if consent.withdrawn_at is not None:
            raise PermissionDenied(DENIED)
        if not consent.valid_from <= today <= consent.valid_until:
            raise PermissionDenied(DENIED)
        if caller != consent.school:
            raise PermissionDenied(DENIED)

    def _build(
        self, source: ExtractSource, ref: str, recipient_key: bytes, now: dt.datetime
    ) -> bytes:
        if source.child is None:
            raise NotFound("the child of this grant is not held by this node")
        if self._store.closure(source.consent.child_id) is not None:
            raise FailedPrecondition(
                "the record of this grant's child is closed; it shares nothing"
            )
        if source.assessment is None:
            raise FailedPrecondition("no assessment is recorded for the child of this grant")
        consent = source.consent
        record = _Record(self._keyring, source, source.child, source.assessment)
        child = {name: _FIELDS[name](record) for name in POLICY[consent.purpose]}
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
                "expires_at": f"{consent.valid_until.isoformat()}T23:59:59Z",  # its last second
                "child": child,
            }
        )
        signature = self._signer.sign(SIGNING_DOMAIN + payload).signature
        envelope = envelope_json(
            payload.decode(),
            base64.b64encode(signature).decode(),
            self._signer_b64,
            self._transitions,
        )
        return nacl.public.SealedBox(nacl.public.PublicKey(recipient_key)).encrypt(envelope)


class Extracts:
    """The audited extract service every front door calls: one leaf per extract or refusal."""

    ACTION: Final = "extract.disclose"

    def __init__(self, desk: ExtractDesk, audited: Audited) -> None:
        self.desk = desk
        self._audited = audited

    def extract(self, actor: Actor, grant: str, recipient_key: bytes, request: bytes) -> bytes:
        """The sealed extract ``grant`` allows ``actor`` (the school), its leaf committed in
        the transaction that checked the consent; or a specific error and a refusal leaf.

        ``request`` is the request as the door received it (its leaf keeps only a keyed
        digest).
        """

        def build(learnt: Learnt) -> bytes:
            # One write transaction from the consent check to the leaf: a withdrawal waits
            # for it (or it for the withdrawal), so the consent cannot change in between,
            # and the leaf is durable before any byte leaves (write-ahead).
            sealed, _, _ = self.desk.extract(grant, recipient_key, actor.name, learnt)
            return sealed

        return self._audited.learning(actor, self.ACTION, request, build)
