"""Key-transition statements: how a node announces that a signing key of its was replaced.

Why: auditors and witnesses pin a node's audit (checkpoint) key, schools its extract key,
the coordinator its upload key. When the node rotates one of them (``childreg node
rotate-key``), whoever pinned the old key must still verify old material and be able to
follow, with nothing but the key they pinned, to the new one. A statement is a C2SP signed
note whose text says which key, the old and the new public key and from which audit-log size
(and time) the new one signs, and which is signed by **both** keys: the old key vouches for
the new one, the new one proves it is held. Statements chain: each one's old key is the
previous one's new key. Text (every line ends in a newline)::

    childreg key transition v1
    which audit
    name childreg.az.childreg/baku
    old <base64 32-byte Ed25519 public key>
    new <base64 32-byte Ed25519 public key>
    from_size 1234
    time 2026-12-07T12:00:00Z

``name`` is the note-key name both keys sign under: the log's origin for the audit key
(so the key IDs are the checkpoint keys' IDs), ``<origin>/extract`` and ``<origin>/upload``
for the others. For the audit key, checkpoints of ``from_size`` leaves or more are signed by
the new key, smaller ones by the old; ``from_size`` of the other two is the log size when
they were rotated (a point in the log, for the record). Two different statements from one
old key are refused: the old key may have leaked and someone announced a rival key.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal, get_args

from nacl.signing import VerifyKey

from childreg.audit.checkpoint import Checkpoint
from childreg.audit.note import NoteSigner, NoteVerifier, note_text, open_note, sign_note
from childreg.errors import InvalidInput, PermissionDenied, Violation

__all__ = [
    "HEADER",
    "KeyTransition",
    "LogKeys",
    "Which",
    "follow",
    "key_for_size",
    "key_name",
    "open_transition",
    "sign_transition",
]

HEADER: Final = "childreg key transition v1"
Which = Literal["audit", "extract", "upload"]
WHICH: Final[tuple[str, ...]] = get_args(Which)
#: At most this many statements are followed (a node rotating monthly for 80 years).
MAX_CHAIN: Final = 1000


def key_name(which: str, origin: str) -> str:
    """The note-key name a node's ``which`` key signs statements under."""
    return origin if which == "audit" else f"{origin}/{which}"


def _bad(problem: str) -> InvalidInput:
    return InvalidInput(f"key transition: {problem}", [Violation("key_transition", problem)])


def _key(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _bad(f"{what} is not base64") from None
    if len(raw) != 32 or base64.b64encode(raw).decode() != text:
        raise _bad(f"{what} is not a canonical base64 32-byte Ed25519 key")
    return raw


@dataclass(frozen=True)
class KeyTransition:
    """One statement's content: ``old`` hands over to ``new`` from ``from_size`` on."""

    which: str
    name: str
    old: bytes
    new: bytes
    from_size: int
    time: str

    def to_text(self) -> str:
        """The statement's note text."""
        old, new = base64.b64encode(self.old).decode(), base64.b64encode(self.new).decode()
        return (
            f"{HEADER}\nwhich {self.which}\nname {self.name}\nold {old}\nnew {new}\n"
            f"from_size {self.from_size}\ntime {self.time}\n"
        )

    @classmethod
    def parse(cls, text: str) -> KeyTransition:
        """A statement's text parsed strictly (InvalidInput naming the problem)."""
        lines = text.split("\n")
        if len(lines) != 8 or lines[0] != HEADER or lines[7] != "":
            raise _bad(f"the text is not a {HEADER!r} statement of seven lines")
        fields: dict[str, str] = {}
        for line, label in zip(
            lines[1:7], ("which", "name", "old", "new", "from_size", "time"), strict=True
        ):
            word, sep, value = line.partition(" ")
            if word != label or not sep or not value:
                raise _bad(f"expected the line {label!r}")
            fields[label] = value
        if fields["which"] not in WHICH:
            raise _bad(f"which must be one of {', '.join(WHICH)}")
        size = fields["from_size"]
        if not size.isdigit() or (len(size) > 1 and size[0] == "0") or len(size) > 19:
            raise _bad("from_size must be a decimal integer")
        made = cls(
            fields["which"], fields["name"], _key(fields["old"], "old"),
            _key(fields["new"], "new"), int(size), fields["time"],
        )  # fmt: skip
        if made.old == made.new:
            raise _bad("the old and the new key are the same")
        return made

    def old_verifier(self) -> NoteVerifier:
        """The old key as a note verifier."""
        return NoteVerifier(self.name, VerifyKey(self.old))

    def new_verifier(self) -> NoteVerifier:
        """The new key as a note verifier."""
        return NoteVerifier(self.name, VerifyKey(self.new))


def sign_transition(statement: KeyTransition, old: NoteSigner, new: NoteSigner) -> str:
    """The statement as a signed note, signed by the old key, then by the new key."""
    if old.verifier().public_key != statement.old or old.name != statement.name:
        raise _bad("the old signer is not the statement's old key")
    if new.verifier().public_key != statement.new or new.name != statement.name:
        raise _bad("the new signer is not the statement's new key")
    return sign_note(statement.to_text(), [old, new])


def open_transition(note: str, trusted_old: bytes) -> KeyTransition:
    """The statement in ``note`` if its old key is ``trusted_old`` and both its old and its
    new key signed it; InvalidInput if malformed, PermissionDenied otherwise."""
    statement = KeyTransition.parse(note_text(note))
    if statement.old != trusted_old:
        raise PermissionDenied("key transition: its old key is not the key trusted")
    for verifier in (statement.old_verifier(), statement.new_verifier()):
        open_note(note, verifier)  # each key's own signature must be there and verify
    return statement


def follow(
    pinned: bytes, notes: Iterable[str], which: str, name: str | None = None
) -> list[KeyTransition]:
    """The chain of ``which`` statements among ``notes`` from the ``pinned`` key on, oldest
    first (empty if the pinned key is still current). Statements of other keys, or that do
    not start from a key of the chain, are ignored; a malformed one, or two from one key,
    is refused (InvalidInput / PermissionDenied)."""
    parsed: dict[bytes, list[tuple[KeyTransition, str]]] = {}
    for note in notes:
        statement = KeyTransition.parse(note_text(note))
        if statement.which != which or (name is not None and statement.name != name):
            continue
        found = parsed.setdefault(statement.old, [])
        if all(other.to_text() != statement.to_text() for other, _ in found):
            found.append((statement, note))
    chain: list[KeyTransition] = []
    current, seen = pinned, {pinned}
    while current in parsed and len(chain) < MAX_CHAIN:
        candidates = parsed[current]
        if len(candidates) > 1:
            raise PermissionDenied(
                f"key transition: two different statements hand over the same {which} key; "
                "that key may have leaked: ask the node's operator which new key is theirs"
            )
        statement = open_transition(candidates[0][1], current)
        if chain and statement.from_size < chain[-1].from_size:
            raise PermissionDenied("key transition: a later statement starts at a smaller size")
        if statement.new in seen:
            raise PermissionDenied("key transition: the statements go round in a circle")
        chain.append(statement)
        current = statement.new
        seen.add(current)
    return chain


def key_for_size(pinned: bytes, chain: Sequence[KeyTransition], size: int) -> bytes:
    """The public key that signs a checkpoint of ``size`` leaves, following ``chain``."""
    key = pinned
    for statement in chain:
        if size >= statement.from_size:
            key = statement.new
    return key


class LogKeys:
    """A log's pinned key and its transition statements: the key of each checkpoint size."""

    def __init__(self, pinned: NoteVerifier, transitions: Iterable[str] = ()) -> None:
        self.pinned = pinned
        self.chain = follow(pinned.public_key, transitions, "audit", pinned.name)

    def at(self, size: int) -> NoteVerifier:
        """The verifier of a checkpoint of ``size`` leaves."""
        key = key_for_size(self.pinned.public_key, self.chain, size)
        return (
            self.pinned
            if key == self.pinned.public_key
            else NoteVerifier(self.pinned.name, VerifyKey(key))
        )

    def at_note(self, note: str) -> NoteVerifier:
        """The verifier of the checkpoint ``note`` (by its size, read unverified)."""
        try:
            size = Checkpoint.parse(note_text(note)).size
        except InvalidInput:
            return self.pinned  # malformed: the verification itself names the problem
        return self.at(size)
