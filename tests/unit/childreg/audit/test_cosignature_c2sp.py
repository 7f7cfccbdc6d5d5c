"""Witness cosignatures in the C2SP tlog-cosignature/v1 format, checked against a minimal
implementation written here from the spec alone (https://c2sp.org/tlog-cosignature), so a
standard witness and ours can verify each other; plain cosignatures made before still verify.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from childreg.audit.note import (
    InvalidNoteSignature,
    NoteSigner,
    NoteVerifier,
    add_cosignature,
    add_signatures,
    open_note,
    sign_note,
)

CHECKPOINT = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
WITNESS = "witness.example.com/w1"
WHEN = 1679315147


# --- the independent implementation, from the spec text only ---------------------------


def spec_key_id(name: str, public: bytes) -> bytes:
    """SHA-256(<name> || "\\n" || 0x04 || 32-byte Ed25519 public key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + b"\x04" + public).digest()[:4]


def spec_message(body: str, timestamp: int) -> bytes:
    """The two header lines, then the whole note body."""
    return b"cosignature/v1\n" + b"time " + str(timestamp).encode() + b"\n" + body.encode()


def spec_cosign(note: str, name: str, key: SigningKey, timestamp: int) -> str:
    """Append a cosignature line: key ID || u64 timestamp (big-endian) || Ed25519 signature."""
    body = note[: note.rindex("\n\n") + 1]
    sig = key.sign(spec_message(body, timestamp)).signature
    blob = spec_key_id(name, bytes(key.verify_key)) + timestamp.to_bytes(8, "big") + sig
    return note + "\u2014 " + name + " " + base64.b64encode(blob).decode() + "\n"


def spec_verify(note: str, name: str, public: bytes) -> int | None:
    """The timestamp of ``name``'s valid cosignature on ``note``, or None."""
    split = note.rindex("\n\n")
    body, lines = note[: split + 1], note[split + 2 :].splitlines()
    for line in lines:
        signer, _, b64 = line.removeprefix("\u2014 ").partition(" ")
        blob = base64.b64decode(b64)
        if signer != name or blob[:4] != spec_key_id(name, public) or len(blob) != 4 + 8 + 64:
            continue
        timestamp = int.from_bytes(blob[4:12], "big")
        try:
            VerifyKey(public).verify(spec_message(body, timestamp), blob[12:])
        except BadSignatureError:
            return None
        return timestamp
    return None


def spec_vkey(name: str, public: bytes) -> str:
    """The cosigner's vkey: <name>+<hex key ID>+base64(0x04 || public key)."""
    blob = base64.b64encode(b"\x04" + public).decode()
    return f"{name}+{spec_key_id(name, public).hex()}+{blob}"


# --- the tests -----------------------------------------------------------------------------


@pytest.fixture
def log_note() -> tuple[str, NoteVerifier]:
    """A checkpoint signed by its log, and the log's verifier."""
    log = NoteSigner("example.com/behind-the-sofa", SigningKey.generate())
    return sign_note(CHECKPOINT, log), log.verifier()


def test_our_cosignature_verifies_with_the_spec_implementation(
    log_note: tuple[str, NoteVerifier],
) -> None:
    """A cosignature made by add_cosignature is accepted by the spec's rules, with its time."""
    note, _ = log_note
    key = SigningKey.generate()
    cosigned = add_cosignature(note, NoteSigner(WITNESS, key), timestamp=WHEN)
    assert spec_verify(cosigned, WITNESS, bytes(key.verify_key)) == WHEN


def test_a_spec_cosignature_verifies_with_ours(log_note: tuple[str, NoteVerifier]) -> None:
    """A cosignature made by the spec implementation opens with our verifier pinned by its
    C2SP vkey (type 0x04) or by our own key string, and its time is reported."""
    note, log = log_note
    key = SigningKey.generate()
    cosigned = spec_cosign(note, WITNESS, key, WHEN)
    vkey = spec_vkey(WITNESS, bytes(key.verify_key))
    for witness in (
        NoteVerifier.from_key_string(vkey),
        NoteSigner(WITNESS, key).verifier(),
    ):
        opened = open_note(cosigned, [log, witness])
        assert opened.verified_by == [log.name, WITNESS]
        assert opened.cosigned_at == {WITNESS: WHEN}
    assert NoteSigner(WITNESS, key).verifier().cosignature_key_string() == vkey


def test_a_changed_timestamp_is_refused(log_note: tuple[str, NoteVerifier]) -> None:
    """Altering the timestamp of a trusted cosignature makes the whole note refused."""
    note, log = log_note
    key = SigningKey.generate()
    cosigned = add_cosignature(note, NoteSigner(WITNESS, key), timestamp=WHEN)
    head, line = cosigned.rstrip("\n").rsplit("\n", 1)
    name, b64 = line.removeprefix("\u2014 ").split(" ")
    blob = bytearray(base64.b64decode(b64))
    blob[11] ^= 1  # the last byte of the timestamp
    forged = f"{head}\n\u2014 {name} {base64.b64encode(bytes(blob)).decode()}\n"
    with pytest.raises(InvalidNoteSignature):
        open_note(forged, [log, NoteSigner(WITNESS, key).verifier()])
    assert spec_verify(forged, WITNESS, bytes(key.verify_key)) is None


def test_old_plain_cosignatures_still_verify(log_note: tuple[str, NoteVerifier]) -> None:
    """A cosignature made before (a plain Ed25519 note signature) opens as before, untimed."""
    note, log = log_note
    witness = NoteSigner(WITNESS, SigningKey.generate())
    old = add_signatures(note, witness)
    opened = open_note(old, [log, witness.verifier()])
    assert opened.verified_by == [log.name, WITNESS]
    assert opened.cosigned_at == {}


def test_recosigning_replaces_the_witness_line(log_note: tuple[str, NoteVerifier]) -> None:
    """Cosigning a note the witness already signed (either kind) leaves one line of it."""
    note, log = log_note
    witness = NoteSigner(WITNESS, SigningKey.generate())
    twice = add_cosignature(add_signatures(note, witness), witness, timestamp=WHEN + 1)
    assert twice.count(f"\u2014 {WITNESS} ") == 1
    assert open_note(twice, [log, witness.verifier()]).cosigned_at == {WITNESS: WHEN + 1}
