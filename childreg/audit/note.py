"""C2SP signed notes with Ed25519 keys: signing, cosigning, strict parsing and verification.

Why: each node's audit-log checkpoints are published as signed notes so that auditors and
witnesses can check, offline and with nothing but a public key, that a checkpoint really comes
from the node, and so that witnesses can add their cosignatures to the same note. The format is
the C2SP signed note (https://c2sp.org/signed-note, the format of golang.org/x/mod/sumdb/note):

    <text, one or more lines, ending in a newline>
    <blank line>
    \u2014 <key name> <base64(4-byte key ID || signature)>
    ...

* The note is UTF-8 with no ASCII control character other than newline; the text includes its
  final newline and may itself contain empty lines: it is separated from the signatures by the
  *last* empty line of the note.
* Key names are non-empty and contain neither Unicode spaces nor "+".
* Ed25519 (signature type 0x01): the key ID is
  ``SHA-256(name || 0x0A || 0x01 || 32-byte public key)[:4]`` read big-endian; the signature is
  RFC 8032 Ed25519 over the UTF-8 bytes of the text.
* C2SP ``tlog-cosignature/v1`` (https://c2sp.org/tlog-cosignature), what witnesses add: the
  key ID is ``SHA-256(name || 0x0A || 0x04 || public key)[:4]`` and the signature is an 8-byte
  big-endian POSIX timestamp followed by Ed25519 over ``"cosignature/v1\ntime <seconds>\n"``
  and the text (:func:`add_cosignature`). A verifier checks both kinds for its key, so plain
  cosignatures made before this format still verify.
* Verifiers ignore signatures from unknown keys (unknown = the pair (name, key ID) is not
  trusted, even if one of the two matches a trusted key), reject the whole note when a trusted
  key's signature fails, and reject a note that no trusted key signed.

Key strings follow the Go ``note`` package, so keys can be exchanged with its tools:

    verifier key:  <name>+<8 hex digits key ID>+<base64(0x01 || 32-byte public key)>
    signer key:    PRIVATE+KEY+<name>+<8 hex digits key ID>+<base64(0x01 || 32-byte seed)>

Parsing is strict and bounded: a note of more than ``MAX_NOTE_BYTES`` or with more than
``MAX_SIGNATURES`` signature lines is refused before any signature is checked, base64 must be
canonical (standard alphabet, padded, no stray bits), and every malformed note is refused as a
whole (``MalformedNote``, an ``InvalidInput``) before any signature is verified. Failed
verification raises ``InvalidNoteSignature`` or ``NoTrustedSignature`` (both
``UnverifiedNote``, a ``PermissionDenied``). Error messages name the problem and the line, and
never quote the note text nor any key material.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple, TypeVar, cast

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from childreg.errors import InvalidInput, PermissionDenied, Violation

ALG_ED25519 = 0x01
"""The C2SP signed-note signature type identifier byte of Ed25519."""
ALG_COSIGNATURE_V1 = 0x04
"""The signature type byte of a C2SP ``tlog-cosignature/v1`` Ed25519 cosignature."""
COSIGNATURE_HEADER = "cosignature/v1\n"
"""The first line of the message a ``cosignature/v1`` signs (domain separation)."""
MAX_TIMESTAMP = (1 << 63) - 1
"""Largest cosignature timestamp the spec allows (POSIX seconds)."""
MAX_NOTE_BYTES = 1 << 20
"""Largest note (UTF-8 bytes) this module parses or produces: 1 MiB."""
MAX_SIGNATURES = 100
"""Most signature lines in one note (the Go reference's limit; the spec requires at least 16)."""
SIG_PREFIX = "\u2014 "
"""Every signature line starts with EM DASH (U+2014) and a space."""

_ED25519_SIG_SIZE = 64
_ED25519_KEY_SIZE = 32
_HEX8 = re.compile(r"[0-9a-f]{8}")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")
_T = TypeVar("_T")


class MalformedNote(InvalidInput):
    """A note, or text to be signed, does not follow the C2SP signed-note format."""


class MalformedKey(InvalidInput):
    """A signer or verifier key (string) is malformed or its key ID does not match the key."""


class UnverifiedNote(PermissionDenied):
    """A well-formed note did not verify: it must be ignored."""


class InvalidNoteSignature(UnverifiedNote):
    """A signature by a trusted key (same name and key ID) does not verify."""


class NoTrustedSignature(UnverifiedNote):
    """No signature in the note comes from a trusted key."""


class NoteSignature(NamedTuple):
    """One signature line: key name, key ID (big-endian uint32) and the signature bytes."""

    name: str
    key_hash: int
    signature: bytes

    def line(self) -> str:
        """The signature line, without its newline."""
        blob = self.key_hash.to_bytes(4, "big") + self.signature
        return f"{SIG_PREFIX}{self.name} {base64.b64encode(blob).decode('ascii')}"


@dataclass(frozen=True)
class OpenedNote:
    """A verified note: its text, the trusted keys that signed it, the signers not trusted.

    ``verified_by`` lists key names in the order of their signature lines (each name once);
    ``unknown`` lists (name, key ID) of signatures from keys not trusted, each pair once;
    ``cosigned_at`` maps the name of each trusted ``cosignature/v1`` signer to the POSIX
    time its cosignature states.
    """

    text: str
    verified_by: list[str] = field(default_factory=list)
    unknown: list[tuple[str, int]] = field(default_factory=list)
    cosigned_at: dict[str, int] = field(default_factory=dict)


def _bad_key(problem: str) -> MalformedKey:
    return MalformedKey(f"key: {problem}", [Violation("key", problem)])


def _bad_note(problem: str, line: int | None = None) -> MalformedNote:
    where = f"line {line}: " if line is not None else ""
    return MalformedNote(f"signed note: {where}{problem}", [Violation("note", problem, line)])


def name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid key name, or None if it is one."""
    if not name:
        return "the key name is empty"
    if "+" in name:
        return "the key name contains '+'"
    if any(c.isspace() for c in name):
        return "the key name contains a space"
    if _CONTROL.search(name):
        return "the key name contains a control character"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "the key name is not valid UTF-8"
    return None


def key_hash(name: str, public_key: bytes, alg: int = ALG_ED25519) -> int:
    """The key ID: ``SHA-256(name || 0x0A || alg || public_key)[:4]`` as a big-endian uint32."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([alg]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def _check_name(name: str) -> None:
    problem = name_problem(name)
    if problem is not None:
        raise _bad_key(problem)


def _decode_b64(text: str) -> bytes | None:
    """Strict standard base64 (RFC 4648 section 4, padded, canonical); None if it is not."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        return None
    if base64.b64encode(raw).decode("ascii") != text:
        return None
    return raw


def _ed25519_key_blob(
    key_b64: str, what: str, allowed: tuple[int, ...] = (ALG_ED25519,)
) -> tuple[int, bytes]:
    """(signature type, 32-byte key) of ``base64(type || key)``; ``allowed`` types only."""
    blob = _decode_b64(key_b64)
    if blob is None:
        raise _bad_key(f"the {what} is not canonical standard base64")
    if len(blob) != 1 + _ED25519_KEY_SIZE:
        raise _bad_key(f"the {what} is {len(blob)} bytes, expected 33 (type byte and 32 bytes)")
    if blob[0] not in allowed:
        names = " or ".join(f"0x{a:02x}" for a in allowed)
        raise _bad_key(f"the {what} has signature type 0x{blob[0]:02x}, only {names} is")
    return blob[0], blob[1:]


def cosignature_message(text: str, timestamp: int) -> bytes:
    """What a C2SP ``cosignature/v1`` signs: header, ``time <seconds>`` line, note text."""
    return f"{COSIGNATURE_HEADER}time {timestamp}\n{text}".encode()


def _parse_hash(hex8: str) -> int:
    if not _HEX8.fullmatch(hex8):
        raise _bad_key("the key ID is not 8 lowercase hexadecimal digits")
    return int(hex8, 16)


class NoteVerifier:
    """A trusted Ed25519 public key under a name: checks signatures of notes.

    It checks both kinds of line its key can make: plain note signatures (key ID of type
    0x01) and C2SP ``tlog-cosignature/v1`` cosignatures (key ID of type 0x04), so a
    witness pinned before cosignatures were timestamped still verifies, old and new.
    """

    __slots__ = ("_key", "cosignature_hash", "key_hash", "name")

    def __init__(self, name: str, key: VerifyKey) -> None:
        _check_name(name)
        self.name = name
        self._key = key
        self.key_hash = key_hash(name, bytes(key))
        self.cosignature_hash = key_hash(name, bytes(key), ALG_COSIGNATURE_V1)

    @classmethod
    def from_key_string(cls, text: str) -> NoteVerifier:
        """Parse ``<name>+<hex key ID>+<base64(type || public key)>``; the ID must match.

        The type is 0x01 (Ed25519 note key) or 0x04 (a C2SP cosigner's vkey); either
        way the verifier checks both signature kinds of that key.
        """
        parts = text.split("+", 2)
        if len(parts) != 3:
            raise _bad_key("a verifier key is <name>+<key ID>+<base64 key>")
        name, hex8, key_b64 = parts
        _check_name(name)
        claimed = _parse_hash(hex8)
        alg, public = _ed25519_key_blob(key_b64, "public key", (ALG_ED25519, ALG_COSIGNATURE_V1))
        made = cls(name, VerifyKey(public))
        if key_hash(name, public, alg) != claimed:
            raise _bad_key(f"the key ID {hex8} does not match the name and public key")
        return made

    @property
    def public_key(self) -> bytes:
        """The 32-byte Ed25519 public key."""
        return bytes(self._key)

    def key_string(self) -> str:
        """This verifier as a key string, ``<name>+<hex key ID>+<base64(0x01 || key)>``."""
        return verifier_key_string(self.name, self._key)

    def cosignature_key_string(self) -> str:
        """The C2SP cosigner vkey, ``<name>+<hex ID>+<base64(0x04 || key)>``, for other
        implementations that verify ``tlog-cosignature/v1`` lines."""
        public = self.public_key
        blob = base64.b64encode(bytes([ALG_COSIGNATURE_V1]) + public).decode("ascii")
        return f"{self.name}+{self.cosignature_hash:08x}+{blob}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature of ``message``."""
        if len(signature) != _ED25519_SIG_SIZE:
            return False
        try:
            self._key.verify(message, signature)
        except BadSignatureError:
            return False
        return True

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NoteVerifier):
            return NotImplemented
        return (self.name, self.public_key) == (other.name, other.public_key)

    def __hash__(self) -> int:
        return hash((self.name, self.public_key))

    def __repr__(self) -> str:
        return f"NoteVerifier({self.key_string()!r})"


class NoteSigner:
    """An Ed25519 private key under a name: signs notes. Its repr never shows the key."""

    __slots__ = ("_key", "cosignature_hash", "key_hash", "name")

    def __init__(self, name: str, key: SigningKey) -> None:
        _check_name(name)
        self.name = name
        self._key = key
        self.key_hash = key_hash(name, bytes(key.verify_key))
        self.cosignature_hash = key_hash(name, bytes(key.verify_key), ALG_COSIGNATURE_V1)

    @classmethod
    def from_key_string(cls, text: str) -> NoteSigner:
        """Parse ``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>``; the ID must match."""
        parts = text.split("+", 4)
        if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
            raise _bad_key("a signer key is PRIVATE+KEY+<name>+<key ID>+<base64 key>")
        _, _, name, hex8, key_b64 = parts
        _check_name(name)
        claimed = _parse_hash(hex8)
        _, seed = _ed25519_key_blob(key_b64, "private key")
        made = cls(name, SigningKey(seed))
        if made.key_hash != claimed:
            raise _bad_key(f"the key ID {hex8} does not match the name and private key")
        return made

    def key_string(self) -> str:
        """This signer as a (secret) key string; write it only to a private file."""
        return signer_key_string(self.name, self._key)

    def verifier(self) -> NoteVerifier:
        """The matching verifier (public key under the same name)."""
        return NoteVerifier(self.name, self._key.verify_key)

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message``."""
        return bytes(self._key.sign(message).signature)

    def __repr__(self) -> str:
        return f"NoteSigner(name={self.name!r}, key_hash={self.key_hash:08x})"


def verifier_key_string(name: str, key: VerifyKey) -> str:
    """``<name>+<hex key ID>+<base64(0x01 || 32-byte public key)>``."""
    _check_name(name)
    public = bytes(key)
    blob = base64.b64encode(bytes([ALG_ED25519]) + public).decode("ascii")
    return f"{name}+{key_hash(name, public):08x}+{blob}"


def signer_key_string(name: str, key: SigningKey) -> str:
    """``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || 32-byte seed)>`` (secret)."""
    _check_name(name)
    public = bytes(key.verify_key)
    blob = base64.b64encode(bytes([ALG_ED25519]) + bytes(key)).decode("ascii")
    return f"PRIVATE+KEY+{name}+{key_hash(name, public):08x}+{blob}"


def generate_signer(name: str) -> tuple[str, str]:
    """A fresh Ed25519 key under ``name``: (signer key string, verifier key string)."""
    key = SigningKey.generate()
    return signer_key_string(name, key), verifier_key_string(name, key.verify_key)


def _as_list(items: _T | Iterable[_T], kind: type[_T]) -> list[_T]:
    if isinstance(items, kind):
        return [items]
    return list(cast("Iterable[_T]", items))


def _check_text(text: str) -> bytes:
    """The UTF-8 bytes of a note text that may be signed; MalformedNote if it may not."""
    if not isinstance(text, str):
        raise _bad_note("the text must be a str")
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        raise _bad_note("the text is not valid UTF-8") from None
    if not text.endswith("\n"):
        raise _bad_note("the text does not end with a newline")
    if _CONTROL.search(text):
        raise _bad_note("the text contains a control character other than newline")
    return raw


class _Parsed(NamedTuple):
    text: str
    sigs: list[NoteSignature]
    lines: list[str]


def _decode(note: str | bytes) -> str:
    """The note as str, if it is valid UTF-8 of at most MAX_NOTE_BYTES bytes."""
    too_big = _bad_note(f"the note is larger than {MAX_NOTE_BYTES} bytes")
    if isinstance(note, bytes):
        if len(note) > MAX_NOTE_BYTES:
            raise too_big
        try:
            return note.decode("utf-8")
        except UnicodeDecodeError:
            raise _bad_note("the note is not valid UTF-8") from None
    if not isinstance(note, str):
        raise _bad_note("the note must be str or bytes")
    if len(note) > MAX_NOTE_BYTES:  # a char is at least one byte: skip encoding a huge note
        raise too_big
    try:
        size = len(note.encode("utf-8"))
    except UnicodeEncodeError:
        raise _bad_note("the note is not valid UTF-8") from None
    if size > MAX_NOTE_BYTES:
        raise too_big
    return note


def _parse(raw: str | bytes) -> _Parsed:
    """Split and check a note's structure (no signature is verified)."""
    note = _decode(raw)
    bad = _CONTROL.search(note)
    if bad:
        line = note.count("\n", 0, bad.start()) + 1
        raise _bad_note("control character other than newline", line)
    split = note.rfind("\n\n")
    if split < 0:
        raise _bad_note("no blank line separates the text from the signatures")
    text, block = note[: split + 1], note[split + 2 :]
    first = text.count("\n") + 2  # the line number of the first signature line
    if not block:
        raise _bad_note("no signature line after the blank line", first)
    if not block.endswith("\n"):
        raise _bad_note("the last signature line does not end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise _bad_note(f"more than {MAX_SIGNATURES} signature lines ({len(lines)})", first)
    sigs = [_parse_sig_line(line, first + i) for i, line in enumerate(lines)]
    return _Parsed(text, sigs, lines)


def _parse_sig_line(line: str, number: int) -> NoteSignature:
    if not line.startswith(SIG_PREFIX):
        raise _bad_note("a signature line must start with an em dash (U+2014) and a space", number)
    name, sep, b64 = line[len(SIG_PREFIX) :].partition(" ")
    if not sep:
        raise _bad_note("a signature line is '\u2014 <key name> <base64 signature>'", number)
    problem = name_problem(name)
    if problem is not None:
        raise _bad_note(problem, number)
    blob = _decode_b64(b64)
    if blob is None:
        raise _bad_note("the signature is not canonical standard base64", number)
    if len(blob) < 5:
        raise _bad_note("the signature is shorter than a key ID and one byte", number)
    return NoteSignature(name, int.from_bytes(blob[:4], "big"), blob[4:])


def _check_limits(note: str, count: int) -> str:
    if count > MAX_SIGNATURES:
        raise _bad_note(f"a note may carry at most {MAX_SIGNATURES} signatures, not {count}")
    if len(note.encode("utf-8")) > MAX_NOTE_BYTES:
        raise _bad_note(f"the signed note would be larger than {MAX_NOTE_BYTES} bytes")
    return note


def _sign_lines(raw_text: bytes, signers: list[NoteSigner]) -> dict[tuple[str, int], str]:
    lines: dict[tuple[str, int], str] = {}
    for s in signers:
        if (s.name, s.key_hash) not in lines:
            lines[s.name, s.key_hash] = NoteSignature(s.name, s.key_hash, s.sign(raw_text)).line()
    return lines


def sign_note(text: str, signers: NoteSigner | Iterable[NoteSigner]) -> str:
    """Sign ``text`` (which must end with a newline) by each signer, in order, as a note.

    A signer given twice (same name and key ID) signs once.
    """
    raw = _check_text(text)
    chosen = _as_list(signers, NoteSigner)
    if not chosen:
        raise _bad_note("a signed note needs at least one signer")
    lines = _sign_lines(raw, chosen)
    note = text + "\n" + "".join(f"{line}\n" for line in lines.values())
    return _check_limits(note, len(lines))


def add_signatures(
    note: str | bytes,
    signers: NoteSigner | Iterable[NoteSigner],
    *,
    verifiers: NoteVerifier | Iterable[NoteVerifier] | None = None,
) -> str:
    """Cosign: append each signer's line to ``note``, keeping the existing lines in order.

    An existing line with the same key name and key ID as a new signer is replaced by the new
    signature (appended at the end), as in the Go reference. The existing signatures are not
    checked unless ``verifiers`` is given, in which case the note is opened first (and must
    verify) so that a witness never cosigns a note its log did not sign.
    """
    if verifiers is not None:
        open_note(note, verifiers)
    parsed = _parse(note)
    chosen = _as_list(signers, NoteSigner)
    if not chosen:
        raise _bad_note("cosigning needs at least one signer")
    new = _sign_lines(parsed.text.encode("utf-8"), chosen)
    kept = [
        line
        for line, sig in zip(parsed.lines, parsed.sigs, strict=True)
        if (sig.name, sig.key_hash) not in new
    ]
    lines = kept + list(new.values())
    out = parsed.text + "\n" + "".join(f"{line}\n" for line in lines)
    return _check_limits(out, len(lines))


def add_cosignature(note: str | bytes, signer: NoteSigner, *, timestamp: int) -> str:
    """Cosign ``note`` as a C2SP ``tlog-cosignature/v1``: the line's key ID is of type 0x04
    and its signature is ``timestamp`` (8 bytes, big-endian) then Ed25519 over
    :func:`cosignature_message`. The signer's earlier lines (either kind) are replaced."""
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise _bad_note(f"a cosignature's timestamp is between 0 and {MAX_TIMESTAMP}")
    parsed = _parse(note)
    signed = signer.sign(cosignature_message(parsed.text, timestamp))
    line = NoteSignature(
        signer.name, signer.cosignature_hash, timestamp.to_bytes(8, "big") + signed
    ).line()
    mine = {(signer.name, signer.key_hash), (signer.name, signer.cosignature_hash)}
    kept = [
        old
        for old, sig in zip(parsed.lines, parsed.sigs, strict=True)
        if (sig.name, sig.key_hash) not in mine
    ]
    lines = [*kept, line]
    out = parsed.text + "\n" + "".join(f"{x}\n" for x in lines)
    return _check_limits(out, len(lines))


def signatures(note: str | bytes) -> list[NoteSignature]:
    """The signature lines of a well-formed note, in order, without verifying any of them."""
    return _parse(note).sigs


def note_text(note: str | bytes) -> str:
    """The text of a well-formed note WITHOUT verifying it; use only to decide which keys to try."""
    return _parse(note).text


def _trusted(
    verifiers: NoteVerifier | Iterable[NoteVerifier],
) -> dict[tuple[str, int], tuple[NoteVerifier, bool]]:
    """(name, key ID) -> (verifier, whether lines under that ID are cosignature/v1)."""
    known: dict[tuple[str, int], tuple[NoteVerifier, bool]] = {}
    for v in _as_list(verifiers, NoteVerifier):
        if not isinstance(v, NoteVerifier):
            raise TypeError("verifiers must be NoteVerifier objects")
        for ident, cosig in (((v.name, v.key_hash), False), ((v.name, v.cosignature_hash), True)):
            other = known.setdefault(ident, (v, cosig))
            if other != (v, cosig):
                raise _bad_key(
                    f"two trusted keys share the name {v.name} and key ID {ident[1]:08x}"
                )
    return known


def _verify_line(verifier: NoteVerifier, cosig: bool, text: str, blob: bytes) -> int | None:
    """Whether a line verifies: None if not, else its cosignature time (-1 if plain)."""
    if not cosig:
        return -1 if verifier.verify(text.encode("utf-8"), blob) else None
    if len(blob) != 8 + _ED25519_SIG_SIZE:
        return None
    timestamp = int.from_bytes(blob[:8], "big")
    if timestamp > MAX_TIMESTAMP:
        return None
    return timestamp if verifier.verify(cosignature_message(text, timestamp), blob[8:]) else None


def _listing(keys: list[tuple[str, int]], most: int = 5) -> str:
    """'name (id), ...' for at most ``most`` keys, long names cut (for error messages)."""
    shown = [f"{n if len(n) <= 64 else n[:61] + '...'} ({h:08x})" for n, h in keys[:most]]
    more = f" and {len(keys) - most} more" if len(keys) > most else ""
    return ", ".join(shown) + more


def open_note(note: str | bytes, verifiers: NoteVerifier | Iterable[NoteVerifier]) -> OpenedNote:
    """Check a note's format, then verify it against the trusted ``verifiers``.

    Signatures from unknown keys are ignored (and listed in ``unknown``); every signature by a
    trusted key must verify, else ``InvalidNoteSignature``; at least one must be present, else
    ``NoTrustedSignature``. A malformed note raises ``MalformedNote`` before any verification.
    """
    known = _trusted(verifiers)
    parsed = _parse(note)
    first = parsed.text.count("\n") + 2
    verified: list[str] = []
    unknown: list[tuple[str, int]] = []
    cosigned_at: dict[str, int] = {}
    for i, sig in enumerate(parsed.sigs):
        ident = (sig.name, sig.key_hash)
        trusted = known.get(ident)
        if trusted is None:
            if ident not in unknown:
                unknown.append(ident)
            continue
        when = _verify_line(*trusted, parsed.text, sig.signature)
        if when is not None and when >= 0:
            cosigned_at[sig.name] = when
        if when is None:
            problem = (
                f"the signature of trusted key {sig.name} ({sig.key_hash:08x}) does not verify: "
                "the note was altered or the signature is forged"
            )
            raise InvalidNoteSignature(f"signed note: line {first + i}: {problem}")
        if sig.name not in verified:
            verified.append(sig.name)
    if not verified:
        signed_by = _listing(unknown)
        plain = [ident for ident, (_, cosig) in known.items() if not cosig]
        shown = _listing(plain) or "none"
        problem = f"no trusted key signed the note; it is signed by {signed_by}; trusted: {shown}"
        raise NoTrustedSignature(f"signed note: {problem}")
    return OpenedNote(parsed.text, verified, unknown, cosigned_at)
