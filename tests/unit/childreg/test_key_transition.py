"""Key-transition statements (childreg/key_transition.py): signed by both keys, chained,
refused when forged, rival or malformed."""

from __future__ import annotations

import pytest
from nacl.signing import SigningKey

from childreg.audit.note import NoteSigner, sign_note
from childreg.errors import InvalidInput, PermissionDenied
from childreg.key_transition import (
    KeyTransition,
    LogKeys,
    follow,
    key_for_size,
    open_transition,
    sign_transition,
)

NAME = "childreg.fed.test/d1"
KEYS = [NoteSigner(NAME, SigningKey(bytes([i]) * 32)) for i in range(1, 5)]


def statement(old: int, new: int, size: int, which: str = "audit") -> str:
    """A statement handing KEYS[old] over to KEYS[new] from ``size``, signed by both."""
    made = KeyTransition(
        which,
        NAME,
        KEYS[old].verifier().public_key,
        KEYS[new].verifier().public_key,
        size,
        "2026-12-07T12:00:00Z",
    )
    return sign_transition(made, KEYS[old], KEYS[new])


def pub(i: int) -> bytes:
    """The public key of KEYS[i]."""
    return KEYS[i].verifier().public_key


def test_a_statement_round_trips_and_opens_from_its_old_key() -> None:
    """A statement signed by both keys opens from the old key and says what it was made with."""
    opened = open_transition(statement(0, 1, 7), pub(0))
    assert (opened.which, opened.name, opened.old, opened.new, opened.from_size) == (
        "audit",
        NAME,
        pub(0),
        pub(1),
        7,
    )
    assert KeyTransition.parse(opened.to_text()) == opened


def test_a_statement_missing_the_new_keys_signature_is_refused() -> None:
    """A statement signed by the old key only (the new key's holder never agreed) is refused."""
    made = KeyTransition("audit", NAME, pub(0), pub(1), 7, "2026-12-07T12:00:00Z")
    with pytest.raises(PermissionDenied):
        open_transition(sign_note(made.to_text(), [KEYS[0]]), pub(0))


def test_a_statement_signed_by_another_key_than_the_old_one_is_refused() -> None:
    """A statement whose old key is not the one trusted, or that the old key did not sign,
    is refused: a stranger cannot hand over a node's key."""
    with pytest.raises(PermissionDenied, match="not the key trusted"):
        open_transition(statement(1, 2, 7), pub(0))
    forged = KeyTransition("audit", NAME, pub(0), pub(2), 7, "2026-12-07T12:00:00Z")
    with pytest.raises(PermissionDenied):
        open_transition(sign_note(forged.to_text(), [KEYS[3], KEYS[2]]), pub(0))


def test_follow_walks_a_chain_from_the_pinned_key_and_ignores_other_keys() -> None:
    """Two rotations make a chain of two from the first key; an extract statement and one
    from an unrelated key are ignored, and key_for_size picks each size's key."""
    notes = [statement(1, 2, 20), statement(0, 1, 10), statement(3, 0, 1, "extract")]
    chain = follow(pub(0), notes, "audit")
    assert [(t.old, t.new, t.from_size) for t in chain] == [
        (pub(0), pub(1), 10),
        (pub(1), pub(2), 20),
    ]
    assert [key_for_size(pub(0), chain, size) for size in (9, 10, 19, 20, 99)] == [
        pub(0),
        pub(1),
        pub(1),
        pub(2),
        pub(2),
    ]
    assert follow(pub(2), notes, "audit") == []
    assert LogKeys(KEYS[0].verifier(), notes).at(15) == KEYS[1].verifier()


def test_two_different_statements_from_one_key_are_refused() -> None:
    """Two statements handing one key over to different keys (a leaked key announcing a
    rival) are refused rather than either being followed."""
    with pytest.raises(PermissionDenied, match="may have leaked"):
        follow(pub(0), [statement(0, 1, 10), statement(0, 2, 10)], "audit")


def test_a_tampered_or_malformed_statement_is_refused() -> None:
    """A statement whose text was changed after signing, or that is not a statement at all,
    is refused."""
    note = statement(0, 1, 10)
    with pytest.raises(PermissionDenied):
        open_transition(note.replace("from_size 10", "from_size 11"), pub(0))
    with pytest.raises(InvalidInput):
        KeyTransition.parse("childreg key transition v1\nwhich audit\n")
    with pytest.raises(InvalidInput, match="which"):
        KeyTransition.parse(
            KeyTransition("audit", NAME, pub(0), pub(1), 1, "t").to_text().replace("audit", "x")
        )
