"""Documents signed by the federation's statistics authority: one format, one checker.

The table catalogue and the secure-aggregation roster are both JSON objects signed with
the authority's Ed25519 key. The file is ``{"format", <kind>, "key_id", "signature"}``;
the signature covers a kind-specific domain prefix plus the embedded object's canonical
bytes (sorted keys, compact, UTF-8), so one kind can never pass as another, and it is
checked over the re-canonicalised object before any of its content is trusted.
:func:`open_signed` is the one way to open either kind: signature, then the kind's own
validation, then canonical form and federation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Generic, Protocol, TypeVar

import nacl.exceptions
from nacl.signing import SigningKey, VerifyKey

from childreg.errors import InvalidInput, PermissionDenied, Violation

T = TypeVar("T")
_KEY_ID_RE: Final = re.compile(r"^[0-9a-f]{16}$")


@dataclass(frozen=True)
class SignedKind:
    """One kind of signed document: its name (the embedded object's key), format tag,
    domain-separation prefix and size limit."""

    name: str
    format: str
    context: bytes
    max_bytes: int

    def malformed(self, problem: str, field: str | None = None) -> InvalidInput:
        """The refusal of a malformed document of this kind."""
        return InvalidInput(
            f"the signed {self.name} is malformed: {problem}",
            [Violation(field or f"signed_{self.name}", problem)],
        )


def canonical_json(value: Any) -> bytes:
    """Sorted-key, compact, UTF-8 JSON: the same object always gives the same bytes."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def key_id(key: VerifyKey) -> str:
    """Hex of the first 8 bytes of BLAKE2b of a public key: a short, public key name."""
    return hashlib.blake2b(bytes(key)).digest()[:8].hex()


def sign_document(
    kind: SignedKind, content: dict[str, Any], canonical: bytes, signing_key: SigningKey
) -> bytes:
    """The signed file of ``content`` (whose canonical bytes are ``canonical``)."""
    signature = signing_key.sign(kind.context + canonical).signature
    document = {
        "format": kind.format,
        kind.name: content,
        "key_id": key_id(signing_key.verify_key),
        "signature": base64.b64encode(signature).decode("ascii"),
    }
    text = json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    return text.encode("utf-8")


def open_document(
    kind: SignedKind, blob: bytes, authority: VerifyKey
) -> tuple[dict[str, Any], bytes]:
    """The embedded object and its canonical bytes, once the signature verifies.

    InvalidInput when the file is malformed; PermissionDenied when another key signed it
    or the signature does not verify. The caller parses the object and checks that it
    is in canonical form: :func:`open_signed` does all of it.
    """
    if len(blob) > kind.max_bytes:
        raise kind.malformed(f"larger than {kind.max_bytes // 1024} KiB")
    try:
        document = json.loads(blob.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise kind.malformed("not UTF-8 JSON") from None
    expected = {"format", kind.name, "key_id", "signature"}
    if not isinstance(document, dict) or set(document) != expected:
        raise kind.malformed(f"expected exactly the keys {', '.join(sorted(expected))}")
    if document["format"] != kind.format:
        raise kind.malformed(f"expected {kind.format}", "format")
    content = document[kind.name]
    if not isinstance(content, dict):
        raise kind.malformed("must be an object", kind.name)
    try:
        body = canonical_json(content)
    except (UnicodeEncodeError, ValueError, RecursionError):
        raise kind.malformed("cannot be put in canonical form", kind.name) from None
    expected_id, signer = key_id(authority), document["key_id"]
    if signer != expected_id:
        shown = isinstance(signer, str) and _KEY_ID_RE.match(signer)
        named = f" (key id {signer})" if shown else ""
        raise PermissionDenied(
            f"the {kind.name} was signed by another key{named}, not by the pinned statistics "
            f"authority (key id {expected_id})"
        )
    try:
        signature = base64.b64decode(str(document["signature"]), validate=True)
        authority.verify(kind.context + body, signature)
    except (binascii.Error, ValueError, nacl.exceptions.BadSignatureError):
        raise PermissionDenied(
            f"the {kind.name}'s signature does not verify against the statistics authority's "
            "key: the file was altered after signing"
        ) from None
    return content, body


class SignedContent(Protocol):
    """What a signed kind's parsed content offers: its federation and its canonical bytes."""

    @property
    def federation(self) -> str:
        """The federation the document is for."""
        ...

    def canonical_bytes(self) -> bytes:
        """Sorted-key, compact, UTF-8 JSON of the content, as signed."""
        ...


D = TypeVar("D", bound=SignedContent)


def open_signed(
    kind: SignedKind,
    blob: bytes,
    authority: VerifyKey,
    parse: Callable[[dict[str, Any]], D],
    *,
    federation: str | None = None,
) -> D:
    """A signed document of ``kind``, verified against the pinned authority key and parsed.

    PermissionDenied when the key, the signature or the federation (if given) is wrong;
    InvalidInput when the file is malformed, ``parse`` refuses its content, or the content
    was not signed in canonical form. The signature is checked over the re-canonicalised
    embedded object before ``parse`` sees any of it.
    """
    content, body = open_document(kind, blob, authority)
    document = parse(content)
    if document.canonical_bytes() != body:
        raise kind.malformed("not in canonical form", kind.name)
    if federation is not None and document.federation != federation:
        raise PermissionDenied(
            f"the {kind.name} is for federation {document.federation}, not {federation}"
        )
    return document


def read_signed(
    kind: SignedKind,
    path: Path,
    authority: VerifyKey,
    parse: Callable[[dict[str, Any]], D],
    *,
    federation: str | None = None,
) -> D:
    """Read and open a signed file of ``kind`` (see :func:`open_signed`)."""
    blob = read_signed_file(kind, path)
    return open_signed(kind, blob, authority, parse, federation=federation)


def read_signed_file(kind: SignedKind, path: Path) -> bytes:
    """The bytes of a signed file, read no further than the kind's size limit (+1 byte, so
    an oversized file is refused by :func:`open_document`)."""
    try:
        with path.open("rb") as fh:
            return fh.read(kind.max_bytes + 1)
    except OSError as exc:
        raise InvalidInput(
            f"cannot read the signed {kind.name} {path}", [Violation("file", type(exc).__name__)]
        ) from None


class VerifiedCache(Generic[T]):
    """The last few signed files already verified, by the SHA-256 of their exact bytes.

    A node is sent the same signed catalogue and roster with every question; checking the
    signature and the content once per distinct file is enough. ``verify`` runs only on a
    miss, and what it raises is raised to the caller (nothing is cached then).
    """

    def __init__(self, verify: Callable[[bytes], T], size: int = 8) -> None:
        self._verify = verify
        self._size = size
        self._lock = threading.Lock()
        self._held: OrderedDict[bytes, T] = OrderedDict()

    def get(self, blob: bytes) -> T:
        """The verified content of ``blob``."""
        digest = hashlib.sha256(blob).digest()
        with self._lock:
            if digest in self._held:
                self._held.move_to_end(digest)
                return self._held[digest]
        value = self._verify(blob)
        with self._lock:
            self._held[digest] = value
            while len(self._held) > self._size:
                self._held.popitem(last=False)
        return value


def _reject_constant(name: str) -> Any:
    raise ValueError("NaN and Infinity are not JSON")
