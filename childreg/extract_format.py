"""Opening a school's extract: unseal, check the node's signature, the audience and expiry.

Why: a school must be able to trust what it opens without trusting the channel it came
through: the extract is sealed to the school's X25519 key (only it can read it) and signed
by the node's pinned Ed25519 key over a domain-separated payload (anyone holding that key
can check it offline). This module is the one reader the school's CLI uses; the format
itself is in docs/extracts.md so another program can open an extract with PyNaCl alone.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from typing import Any, Final

import nacl.exceptions
import nacl.public
import nacl.signing

from childreg.errors import InvalidInput, PermissionDenied
from childreg.key_transition import follow

SIGNING_DOMAIN: Final = b"childreg-extract-v1\n"
EXTRACT_TYPE: Final = "childreg.extract"
EXTRACT_VERSION: Final = 1
MAX_SEALED: Final = 1024 * 1024
MAX_TRANSITIONS: Final = 100


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise InvalidInput(f"extract envelope: {what} must be base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"extract envelope: {what} is not valid base64") from None


def _instant(value: object, what: str) -> dt.datetime:
    if not isinstance(value, str):
        raise InvalidInput(f"extract: {what} is missing")
    try:
        moment = dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        raise InvalidInput(f"extract: {what} is not an RFC 3339 UTC time") from None
    return moment.replace(tzinfo=dt.UTC)


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput(f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} is not a JSON object")
    return value


def _follow_to(signer: bytes, pinned: bytes, transitions: object) -> None:
    """Refuse unless the envelope's key-transition statements lead from the pinned key to
    ``signer`` (the node rotated its extract key since the school pinned it)."""
    if not isinstance(transitions, list) or not all(isinstance(t, str) for t in transitions):
        raise PermissionDenied("extract is signed by another key than the node's pinned key")
    if len(transitions) > MAX_TRANSITIONS:
        raise InvalidInput(f"extract envelope: more than {MAX_TRANSITIONS} key transitions")
    chain = follow(pinned, transitions, "extract")
    if not chain or chain[-1].new != signer:
        raise PermissionDenied(
            "extract is signed by another key than the node's pinned key, and no key "
            "transition the node announced leads from the pinned key to it"
        )


def open_extract(
    sealed: bytes,
    recipient_private: nacl.public.PrivateKey,
    node_verify_key: bytes,
    audience: str | None,
    now: dt.datetime,
) -> dict[str, Any]:
    """The verified payload of an extract, or InvalidInput / PermissionDenied saying why.

    Checks, in order: it unseals with our key; the envelope names the pinned signer (or
    one its ``transitions``, the node's key-transition statements, lead to from it); the
    signature over ``SIGNING_DOMAIN + payload`` verifies; type and version; it was sealed
    for our public key; its audience is ours (when ``audience`` is given); not expired.
    """
    if len(sealed) > MAX_SEALED:
        raise InvalidInput("extract is too large")
    try:
        envelope_bytes = nacl.public.SealedBox(recipient_private).decrypt(sealed)
    except nacl.exceptions.CryptoError:
        raise PermissionDenied(
            "extract cannot be opened with this key (sealed for another recipient, or damaged)"
        ) from None
    envelope = _json_object(envelope_bytes, "extract envelope")
    signer = _b64(envelope.get("signer"), "signer")
    signature = _b64(envelope.get("signature"), "signature")
    payload_text = envelope.get("payload")
    if not isinstance(payload_text, str):
        raise InvalidInput("extract envelope: payload must be text")
    if signer != node_verify_key:
        _follow_to(signer, node_verify_key, envelope.get("transitions"))
    payload = payload_text.encode("utf-8")
    try:
        nacl.signing.VerifyKey(signer).verify(SIGNING_DOMAIN + payload, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError):
        raise PermissionDenied("extract signature does not verify") from None
    body = _json_object(payload, "extract payload")
    version = body.get("v")
    if body.get("type") != EXTRACT_TYPE or type(version) is not int or version != EXTRACT_VERSION:
        raise InvalidInput("not a childreg extract of a version this program reads")
    ours = base64.b64encode(bytes(recipient_private.public_key)).decode()
    if body.get("recipient_key") != ours:
        raise PermissionDenied("extract was issued for another recipient key")
    if audience is not None and body.get("audience") != audience:
        raise PermissionDenied("extract is addressed to another school")
    if now > _instant(body.get("expires_at"), "expires_at"):
        raise PermissionDenied("extract has expired (the consent's validity ended)")
    if not isinstance(body.get("child"), dict):
        raise InvalidInput("extract payload carries no child")
    return body
