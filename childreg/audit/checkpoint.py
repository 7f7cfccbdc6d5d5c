"""C2SP tlog-checkpoints: the signed statement "my audit log has this many leaves and this root".

Why: a node commits to the whole of its audit log by publishing checkpoints; witnesses and
auditors compare them (consistency proofs between sizes, no two roots for one size), so the
checkpoint text must be exact and parsed strictly. The format is the C2SP tlog-checkpoint
(https://c2sp.org/tlog-checkpoint), signed as a C2SP signed note (https://c2sp.org/signed-note,
see ``childreg.audit.note``)::

    childreg.az.childreg/baku               origin
    1234                                    tree size, decimal, no leading zeros ("0" if empty)
    <base64 of the 32-byte RFC 9162 root>   standard base64 with padding
    <extension lines, optional, non-empty>

    \u2014 childreg.az.childreg/baku <base64(key ID || Ed25519 signature)>

Origin convention for childreg: ``childreg.<federation>/<department-id>``, e.g.
``childreg.az.childreg/baku`` for department ``baku`` of federation ``az.childreg`` (the names of
the node's SPIFFE identity ``spiffe://<federation>/node/<department-id>``). The node's log key is
named after the origin, as the spec recommends, so its signature line reads
``\u2014 childreg.az.childreg/baku ...``; ``childreg_origin`` builds one and
``parse_childreg_origin`` splits one. ``Checkpoint.parse`` itself accepts any non-empty origin:
the spec forbids clients to assume its form.

The text is only trusted after its signature verified: ``open_checkpoint`` verifies the note
first and parses the text afterwards.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass

from childreg.audit.note import (
    NoteSigner,
    NoteVerifier,
    OpenedNote,
    UnverifiedNote,
    open_note,
    sign_note,
)
from childreg.errors import InvalidInput, Violation

ROOT_SIZE = 32
"""Bytes of a root hash (SHA-256, RFC 9162 section 2.1)."""
MAX_TREE_SIZE = (1 << 64) - 1
"""Largest tree size (an unsigned 64-bit count, as in the Go and RFC 9162 implementations)."""
ORIGIN_PREFIX = "childreg."

_SIZE = re.compile(r"0|[1-9][0-9]{0,19}")
_CONTROL = re.compile(r"[\x00-\x1f]")
_ORIGIN_PART = re.compile(r"[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?")


class MalformedCheckpoint(InvalidInput):
    """Checkpoint text, or the fields of a checkpoint, do not follow C2SP tlog-checkpoint."""


class CheckpointOriginMismatch(UnverifiedNote):
    """A correctly signed checkpoint is for another log than the one expected."""


def _bad(problem: str, line: int | None = None) -> MalformedCheckpoint:
    where = f"line {line}: " if line is not None else ""
    return MalformedCheckpoint(
        f"checkpoint: {where}{problem}", [Violation("checkpoint", problem, line)]
    )


def _line_problem(value: str, what: str) -> str | None:
    if not value:
        return f"the {what} is empty"
    if _CONTROL.search(value):
        return f"the {what} contains a newline or control character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return f"the {what} is not valid UTF-8"
    return None


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: origin, tree size and root hash, and optional extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problem = (
            _line_problem(self.origin, "origin")
            if isinstance(self.origin, str)
            else "the origin must be a str"
        )
        if problem:
            raise _bad(problem, 1)
        if not isinstance(self.size, int) or isinstance(self.size, bool):
            raise _bad("the tree size must be an int", 2)
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise _bad(f"the tree size must be between 0 and {MAX_TREE_SIZE}", 2)
        if not isinstance(self.root, bytes) or len(self.root) != ROOT_SIZE:
            raise _bad(f"the root hash must be {ROOT_SIZE} bytes", 3)
        if not isinstance(self.extensions, tuple):
            raise _bad("the extension lines must be a tuple of str")
        for i, ext in enumerate(self.extensions):
            problem = (
                _line_problem(ext, "extension line")
                if isinstance(ext, str)
                else "an extension line must be a str"
            )
            if problem:
                raise _bad(problem, 4 + i)

    def to_text(self) -> str:
        """The checkpoint note text: one line each for origin, size, root, extensions."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode("ascii")]
        return "".join(f"{line}\n" for line in (*lines, *self.extensions))

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse checkpoint text strictly; ``MalformedCheckpoint`` says what is wrong."""
        if not isinstance(text, str):
            raise _bad("the text must be a str")
        if not text.endswith("\n"):
            raise _bad("the text does not end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise _bad(f"need origin, tree size and root hash lines, found {len(lines)} line(s)")
        for number, line in enumerate(lines, 1):
            if not line:
                raise _bad("empty line", number)
            if _CONTROL.search(line):
                raise _bad("control character", number)
        origin, size_text, root_text, *extensions = lines
        if not _SIZE.fullmatch(size_text):
            raise _bad("the tree size is not a decimal number without leading zeros", 2)
        size = int(size_text)
        if size > MAX_TREE_SIZE:
            raise _bad(f"the tree size is larger than {MAX_TREE_SIZE}", 2)
        root = _decode_root(root_text)
        return cls(origin, size, root, tuple(extensions))


def _decode_root(text: str) -> bytes:
    try:
        root = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise _bad("the root hash is not standard base64 with padding", 3) from None
    if base64.b64encode(root).decode("ascii") != text:
        raise _bad("the root hash is not canonical standard base64 with padding", 3)
    if len(root) != ROOT_SIZE:
        raise _bad(f"the root hash is {len(root)} bytes, not {ROOT_SIZE}", 3)
    return root


def sign_checkpoint(cp: Checkpoint, signer: NoteSigner | Iterable[NoteSigner]) -> str:
    """The checkpoint as a signed note. The log's key should be named after ``cp.origin``."""
    return sign_note(cp.to_text(), signer)


def open_checkpoint(
    note: str | bytes,
    verifiers: NoteVerifier | Iterable[NoteVerifier],
    *,
    origin: str | None = None,
) -> tuple[Checkpoint, OpenedNote]:
    """Verify a signed checkpoint, then parse its text.

    Raises ``MalformedNote`` / ``MalformedCheckpoint`` (``InvalidInput``) for bad format, an
    ``UnverifiedNote`` (``PermissionDenied``) when no trusted key signed it or a trusted key's
    signature fails, and ``CheckpointOriginMismatch`` (also ``UnverifiedNote``) when ``origin``
    is given and differs. Every trusted key counts: to require the log's own signature as well
    as cosignatures, check ``opened.verified_by`` (or pass only the log's key here).
    """
    opened = open_note(note, verifiers)
    cp = Checkpoint.parse(opened.text)
    if origin is not None and cp.origin != origin:
        raise CheckpointOriginMismatch(
            f"checkpoint: the origin is {cp.origin!r}, expected {origin!r}: "
            "the checkpoint is for another log"
        )
    return cp, opened


def childreg_origin(federation: str, department_id: str) -> str:
    """The origin of a department node's log: ``childreg.<federation>/<department-id>``."""
    for value, what in ((federation, "federation"), (department_id, "department id")):
        parts = value.split(".") if what == "federation" else [value]
        if not all(_ORIGIN_PART.fullmatch(p) for p in parts):
            raise _bad(f"the {what} must be lowercase letters, digits, '.', '_' or '-'")
    return f"{ORIGIN_PREFIX}{federation}/{department_id}"


def parse_childreg_origin(origin: str) -> tuple[str, str]:
    """(federation, department id) of a childreg origin; ``MalformedCheckpoint`` otherwise."""
    body = origin.removeprefix(ORIGIN_PREFIX)
    federation, sep, department_id = body.partition("/")
    if not origin.startswith(ORIGIN_PREFIX) or not sep:
        raise _bad("a childreg origin is childreg.<federation>/<department-id>", 1)
    if childreg_origin(federation, department_id) != origin:
        raise _bad("a childreg origin is childreg.<federation>/<department-id>", 1)
    return federation, department_id
