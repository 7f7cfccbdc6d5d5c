"""childreg.signed.open_signed: the one way a signed document of any kind is opened."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from nacl.signing import SigningKey

from childreg.errors import InvalidInput, PermissionDenied
from childreg.signed import SignedKind, canonical_json, open_signed, sign_document

KIND = SignedKind("note", "childreg-note/1", b"childreg note v1\n", 4096)
OTHER = SignedKind("note", "childreg-note/1", b"childreg other v1\n", 4096)
AUTHORITY = SigningKey(bytes(range(32)))


@dataclass(frozen=True)
class Note:
    """A minimal signed content: a federation and a text."""

    federation: str
    text: str

    def canonical_bytes(self) -> bytes:
        """The content as signed."""
        return canonical_json({"federation": self.federation, "text": self.text})


def parse(content: dict[str, Any]) -> Note:
    """A note from its signed object; InvalidInput unless it has exactly its two keys."""
    if set(content) != {"federation", "text"}:
        raise InvalidInput("a note has a federation and a text")
    return Note(str(content["federation"]), str(content["text"]))


def signed(content: dict[str, Any], kind: SignedKind = KIND) -> bytes:
    """``content`` signed by the authority as ``kind``."""
    return sign_document(kind, content, canonical_json(content), AUTHORITY)


def test_a_signed_document_opens_as_its_parsed_content() -> None:
    """The content of a document signed by the pinned key is parsed and returned."""
    blob = signed({"federation": "t.childreg", "text": "hello"})
    note = open_signed(KIND, blob, AUTHORITY.verify_key, parse, federation="t.childreg")
    assert note == Note("t.childreg", "hello")


def test_another_kind_another_key_or_federation_is_refused() -> None:
    """A document signed for another kind's prefix, by another key or for another
    federation is refused before its content is used."""
    blob = signed({"federation": "t.childreg", "text": "hello"})
    with pytest.raises(PermissionDenied, match="does not verify"):
        open_signed(KIND, signed({"federation": "t.childreg", "text": "x"}, OTHER),
                    AUTHORITY.verify_key, parse)  # fmt: skip
    with pytest.raises(PermissionDenied, match="another key"):
        open_signed(KIND, blob, SigningKey.generate().verify_key, parse)
    with pytest.raises(PermissionDenied, match=r"for federation t\.childreg, not other"):
        open_signed(KIND, blob, AUTHORITY.verify_key, parse, federation="other")


def test_content_the_parser_refuses_or_not_in_canonical_form_is_malformed() -> None:
    """The kind's own validation runs, and content whose parse is not what was signed is
    refused as not in canonical form."""
    with pytest.raises(InvalidInput, match="a note has"):
        open_signed(KIND, signed({"federation": "t", "text": "x", "extra": 1}),
                    AUTHORITY.verify_key, parse)  # fmt: skip
    document = json.loads(signed({"federation": "t", "text": 5}))
    with pytest.raises(InvalidInput, match="canonical form"):
        open_signed(KIND, json.dumps(document).encode(), AUTHORITY.verify_key, parse)
