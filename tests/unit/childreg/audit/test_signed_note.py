"""C2SP signed notes and tlog-checkpoints: the known-answer vector, refusals, cosigning.

The vector (vectors/signed_note_ed25519.json, read through tests.reference: the federation's
shared folder's original when present, else the committed copy) is the one of
golang.org/x/mod/sumdb/note: Ed25519 is deterministic, so signing its text with its key must
give its note byte for byte.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable

import pytest
from nacl.signing import SigningKey

from childreg.audit.checkpoint import (
    Checkpoint,
    CheckpointOriginMismatch,
    MalformedCheckpoint,
    childreg_origin,
    open_checkpoint,
    parse_childreg_origin,
    sign_checkpoint,
)
from childreg.audit.note import (
    MAX_NOTE_BYTES,
    MAX_SIGNATURES,
    InvalidNoteSignature,
    MalformedKey,
    MalformedNote,
    NoteSignature,
    NoteSigner,
    NoteVerifier,
    NoTrustedSignature,
    UnverifiedNote,
    add_signatures,
    generate_signer,
    key_hash,
    note_text,
    open_note,
    sign_note,
    signatures,
    signer_key_string,
    verifier_key_string,
)
from childreg.errors import InvalidInput, PermissionDenied
from tests.reference import reference_file

VECTOR_FILE = reference_file("vectors/signed_note_ed25519.json")
DASH = "\u2014"  # EM DASH, the first character of every signature line
ORIGIN = "childreg.az.childreg/baku"
ROOT = hashlib.sha256(b"a root").digest()

#: The example of https://c2sp.org/signed-note (its text contains an empty line).
SPEC_NOTE = (
    "Ognuno sta solo sul cuor della terra\n"
    "trafitto da un raggio di sole:\n"
    "\n"
    "ed \u00e8 subito sera.\n"
    "\n"
    f"{DASH} quasimodo.example/salvatore "
    "NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n"
)
#: The example of https://c2sp.org/tlog-checkpoint.
SPEC_CHECKPOINT = (
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
)


@pytest.fixture(scope="module")
def vector() -> dict[str, str]:
    data: dict[str, str] = json.loads(VECTOR_FILE.read_text(encoding="utf-8"))
    return data


def new_signer(name: str) -> NoteSigner:
    return NoteSigner(name, SigningKey.generate())


def flip_bits(data: bytes) -> list[bytes]:
    """Every variant of ``data`` with exactly one bit flipped."""
    out = []
    for i in range(len(data)):
        for bit in range(8):
            changed = bytearray(data)
            changed[i] ^= 1 << bit
            out.append(bytes(changed))
    return out


def sig_line(name: str, blob: bytes) -> str:
    return f"{DASH} {name} {base64.b64encode(blob).decode()}\n"


# --- the known-answer vector -------------------------------------------------------------------


def test_vector_signs_byte_for_byte(vector: dict[str, str]) -> None:
    """The vector's text signed with its signer key is exactly the vector's note."""
    signer = NoteSigner.from_key_string(vector["signer_key"])
    assert sign_note(vector["text"], signer) == vector["signed_note"]
    assert sign_note(vector["text"], [signer]) == vector["signed_note"]


def test_vector_opens_with_its_verifier_key(vector: dict[str, str]) -> None:
    """The vector's verifier key opens the vector's note; the text is returned exactly."""
    opened = open_note(vector["signed_note"], NoteVerifier.from_key_string(vector["verifier_key"]))
    assert opened.text == vector["text"]
    assert opened.verified_by == ["PeterNeumann"]
    assert opened.unknown == []
    assert (
        open_note(
            vector["signed_note"].encode(), [NoteVerifier.from_key_string(vector["verifier_key"])]
        ).text
        == vector["text"]
    )


def test_vector_key_id_follows_the_rule(vector: dict[str, str]) -> None:
    """Key ID = SHA-256(name || 0x0A || 0x01 || public key)[:4], computed here independently."""
    name, hex_id, key_b64 = vector["verifier_key"].split("+", 2)
    blob = base64.b64decode(key_b64)
    assert blob[0] == 0x01
    assert len(blob) == 33
    expected = hashlib.sha256(name.encode() + b"\n" + blob).digest()[:4]
    assert expected.hex() == hex_id == "c74f20a3"
    verifier = NoteVerifier.from_key_string(vector["verifier_key"])
    signer = NoteSigner.from_key_string(vector["signer_key"])
    assert verifier.key_hash == signer.key_hash == int.from_bytes(expected, "big")
    assert key_hash(name, blob[1:]) == verifier.key_hash
    (sig,) = signatures(vector["signed_note"])
    assert sig.name == name
    assert sig.key_hash.to_bytes(4, "big") == expected
    assert len(sig.signature) == 64


def test_vector_key_strings_round_trip(vector: dict[str, str]) -> None:
    """Parsing and printing the key strings gives them back; the signer yields the verifier."""
    signer = NoteSigner.from_key_string(vector["signer_key"])
    verifier = NoteVerifier.from_key_string(vector["verifier_key"])
    assert signer.key_string() == vector["signer_key"]
    assert verifier.key_string() == vector["verifier_key"]
    assert signer.verifier() == verifier
    assert signer.verifier().key_string() == vector["verifier_key"]


def test_generated_keys_round_trip_and_work() -> None:
    """generate_signer gives matching strings; the functions agree with the methods."""
    signer_string, verifier_string = generate_signer(ORIGIN)
    signer = NoteSigner.from_key_string(signer_string)
    verifier = NoteVerifier.from_key_string(verifier_string)
    assert signer.name == verifier.name == ORIGIN
    assert signer.key_string() == signer_string
    assert verifier.key_string() == verifier_string
    assert open_note(sign_note("hello\n", signer), verifier).verified_by == [ORIGIN]
    key = SigningKey.generate()
    assert NoteSigner.from_key_string(signer_key_string("n", key)).key_string() == (
        signer_key_string("n", key)
    )
    assert (
        NoteVerifier.from_key_string(verifier_key_string("n", key.verify_key))
        == NoteSigner("n", key).verifier()
    )
    assert generate_signer(ORIGIN) != (signer_string, verifier_string)


def test_signer_repr_hides_the_private_key(vector: dict[str, str]) -> None:
    """Printing a signer shows its name and key ID, never the key."""
    signer = NoteSigner.from_key_string(vector["signer_key"])
    shown = repr(signer) + str(signer)
    assert "PeterNeumann" in shown
    assert "c74f20a3" in shown
    assert vector["signer_key"].rsplit("+", 1)[1] not in shown
    assert "PRIVATE" not in shown


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda s: s.replace("PeterNeumann+c74f20a3", "PeterNeumann+c74f20a4"), "does not match"),
        (lambda s: s.replace("PeterNeumann", "PeterNeumanm"), "does not match"),
        (lambda s: s.replace("c74f20a3", "C74F20A3"), "hexadecimal"),
        (lambda s: s.replace("c74f20a3", "c74f20a"), "hexadecimal"),
        (lambda s: s.replace("PeterNeumann", "Peter Neumann"), "space"),
        (lambda s: s.replace("PeterNeumann", ""), "empty"),
        (lambda s: s.rsplit("+", 1)[0], "verifier key is"),
        (lambda s: s[:-1], "base64"),
        (lambda s: s + "AAAA", "bytes"),
        (lambda s: s.replace("+AR", "+Ah").replace("+AY", "+Ah"), "type"),
    ],
)
def test_malformed_verifier_keys_are_refused(
    vector: dict[str, str], mutate: Callable[[str], str], problem: str
) -> None:
    """A verifier key with a wrong ID, bad name, bad base64, length or type is refused."""
    with pytest.raises(MalformedKey, match=problem):
        NoteVerifier.from_key_string(mutate(vector["verifier_key"]))


@pytest.mark.parametrize(
    "bad",
    [
        "PRIVATE+KEY+PeterNeumann+c74f20a4+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PRIVATE+KEX+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AhEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDF",
        "PRIVATE+KEY+PeterNeumann+c74f20a3",
    ],
)
def test_malformed_signer_keys_are_refused(bad: str) -> None:
    """A signer key with a wrong ID, prefix, type byte or base64 is refused without echoing it."""
    with pytest.raises(MalformedKey) as caught:
        NoteSigner.from_key_string(bad)
    assert isinstance(caught.value, InvalidInput)
    assert "EKFALVFGyNhPJ" not in str(caught.value)


@pytest.mark.parametrize("name", ["", "a+b", "a b", "a\u00a0b", "a\u3000b", "a\tb", "a\nb"])
def test_invalid_key_names_are_refused(name: str) -> None:
    """Key names are non-empty, without Unicode spaces, '+' or control characters."""
    with pytest.raises(MalformedKey):
        NoteSigner(name, SigningKey.generate())
    with pytest.raises(MalformedKey):
        NoteVerifier(name, SigningKey.generate().verify_key)


# --- verification rules ------------------------------------------------------------------------


def test_unknown_signatures_are_ignored() -> None:
    """A stranger's signature next to a trusted one is ignored and reported as unknown."""
    node, stranger = new_signer(ORIGIN), new_signer("stranger.example/x")
    note = sign_note("hello\n", [stranger, node])
    opened = open_note(note, node.verifier())
    assert opened.verified_by == [ORIGIN]
    assert opened.unknown == [("stranger.example/x", stranger.key_hash)]


def test_a_note_signed_only_by_unknown_keys_is_rejected() -> None:
    """No trusted signature: rejected, though every signature is mathematically valid."""
    node, stranger = new_signer(ORIGIN), new_signer("stranger.example/x")
    note = sign_note("hello\n", stranger)
    with pytest.raises(NoTrustedSignature, match="no trusted key") as caught:
        open_note(note, node.verifier())
    assert isinstance(caught.value, PermissionDenied)
    assert "stranger.example/x" in str(caught.value)
    with pytest.raises(NoTrustedSignature):
        open_note(note, [])


def test_same_name_other_key_is_unknown_not_trusted() -> None:
    """A signature under the trusted name but another key (so another ID) is an unknown key."""
    node, impostor = new_signer(ORIGIN), new_signer(ORIGIN)
    assert node.key_hash != impostor.key_hash
    with pytest.raises(NoTrustedSignature):
        open_note(sign_note("hello\n", impostor), node.verifier())
    opened = open_note(sign_note("hello\n", [impostor, node]), node.verifier())
    assert opened.verified_by == [ORIGIN]
    assert opened.unknown == [(ORIGIN, impostor.key_hash)]


def test_same_id_other_name_is_unknown_not_trusted() -> None:
    """A valid signature by the trusted key but under another name is not trusted."""
    node = new_signer(ORIGIN)
    raw = node.sign(b"hello\n")
    note = "hello\n\n" + sig_line("other.example", node.key_hash.to_bytes(4, "big") + raw)
    with pytest.raises(NoTrustedSignature):
        open_note(note, node.verifier())


def test_a_trusted_key_with_a_bad_signature_rejects_the_note() -> None:
    """A trusted key whose signature fails rejects the note, even next to a good signature."""
    node, forger = new_signer(ORIGIN), new_signer("forger")
    prefix = node.key_hash.to_bytes(4, "big")
    forged = sig_line(ORIGIN, prefix + forger.sign(b"hello\n"))
    with pytest.raises(InvalidNoteSignature, match="does not verify") as caught:
        open_note("hello\n\n" + forged, node.verifier())
    assert isinstance(caught.value, PermissionDenied)
    good = sign_note("hello\n", node)
    with pytest.raises(InvalidNoteSignature, match="line 4"):
        open_note(good + forged, node.verifier())
    wrong_length = sig_line(ORIGIN, prefix + node.sign(b"hello\n")[:63])
    with pytest.raises(InvalidNoteSignature):
        open_note(good + wrong_length, node.verifier())


def test_a_signature_over_other_text_is_rejected() -> None:
    """Moving a valid signature line under another text fails verification."""
    node = new_signer(ORIGIN)
    line = sign_note("size 10\n", node).split("\n\n", 1)[1]
    with pytest.raises(InvalidNoteSignature):
        open_note("size 11\n\n" + line, node.verifier())


def test_every_single_bit_flip_of_the_vector_is_rejected(vector: dict[str, str]) -> None:
    """Each of the note's bits, flipped alone, makes opening fail (never silently succeed)."""
    verifier = NoteVerifier.from_key_string(vector["verifier_key"])
    original = vector["signed_note"].encode()
    text_bytes = len(vector["text"].encode())
    seen: set[type[Exception]] = set()
    flips = flip_bits(original)
    for changed in flips:
        with pytest.raises((InvalidInput, PermissionDenied)) as caught:
            open_note(changed, verifier)
        seen.add(type(caught.value))
    assert len(flips) == 8 * len(original) > 8 * text_bytes
    # the flips exercise all three ways of failing
    assert {MalformedNote, InvalidNoteSignature, NoTrustedSignature} <= seen


def test_flipping_text_bits_is_an_invalid_signature(vector: dict[str, str]) -> None:
    """A flipped bit in the text that keeps the note well-formed fails the trusted signature."""
    verifier = NoteVerifier.from_key_string(vector["verifier_key"])
    original = vector["signed_note"].encode()
    text_len = len(vector["text"].encode()) - 1  # keep the text's final newline
    for changed in flip_bits(original[:text_len]):
        note = changed + original[text_len:]
        with pytest.raises((MalformedNote, InvalidNoteSignature)):
            open_note(note, verifier)


def test_wrong_key_id_in_the_signature_line(vector: dict[str, str]) -> None:
    """The right signature under a wrong key ID is an unknown key: no trusted signature."""
    verifier = NoteVerifier.from_key_string(vector["verifier_key"])
    (sig,) = signatures(vector["signed_note"])
    for wrong in (sig.key_hash ^ 1, 0, 0xFFFFFFFF):
        note = vector["text"] + "\n" + NoteSignature(sig.name, wrong, sig.signature).line() + "\n"
        with pytest.raises(NoTrustedSignature):
            open_note(note, verifier)


# --- format ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def good() -> tuple[NoteSigner, str]:
    signer = new_signer(ORIGIN)
    return signer, sign_note("line one\nline two\n", signer)


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda n: n[:-1], "does not end with a newline"),
        (lambda n: n + "\n", "no signature line"),
        (lambda n: n.replace("\n\n", "\n"), "no blank line"),
        (lambda n: n.replace(DASH + " ", "-- "), "em dash"),
        (lambda n: n.replace(DASH + " ", "\u2013 "), "em dash"),
        (lambda n: n.replace(DASH + " ", DASH), "em dash"),
        (lambda n: n.replace(DASH + " ", DASH + "  "), "empty"),
        (lambda n: n.replace(f" {ORIGIN} ", f" {ORIGIN}"), "signature line is"),
        (lambda n: n.replace(ORIGIN, "a+b"), "'\\+'"),
        (lambda n: n.replace(ORIGIN, "a\u2009b"), "space"),
        (lambda n: n[:-3] + "!=\n", "base64"),
        (lambda n: n[:-2] + "\n", "base64"),
        (lambda n: n.rsplit(" ", 1)[0] + " AAAAAA==\n", "shorter"),
        (lambda n: n.replace("\n", "\r\n"), "control character"),
        (lambda n: n.replace("line one", "line\tone"), "control character"),
        (lambda n: n.replace("line one", "line\x00one"), "control character"),
        (lambda n: n + "trailing\n", "em dash"),
        (lambda n: n + n.split("\n\n")[1].rstrip("\n"), "does not end with a newline"),
    ],
)
def test_malformed_notes_are_refused(
    good: tuple[NoteSigner, str], mutate: Callable[[str], str], problem: str
) -> None:
    """Each structural fault is MalformedNote (InvalidInput), with a message naming the fault."""
    signer, note = good
    bad = mutate(note)
    assert bad != note
    with pytest.raises(MalformedNote, match=problem) as caught:
        open_note(bad, signer.verifier())
    assert isinstance(caught.value, InvalidInput)
    assert caught.value.violations


def test_non_canonical_base64_is_refused(good: tuple[NoteSigner, str]) -> None:
    """Unused low bits set in the last base64 digit change nothing decoded, yet are refused."""
    signer, note = good
    body, b64 = note.rstrip("\n").rsplit(" ", 1)
    assert b64.endswith("=")
    assert not b64.endswith("==")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet.index(b64[-2])
    sloppy = b64[:-2] + alphabet[last | 1] + "="
    assert base64.b64decode(sloppy) == base64.b64decode(b64)
    with pytest.raises(MalformedNote, match="canonical"):
        open_note(f"{body} {sloppy}\n", signer.verifier())


def test_non_utf8_is_refused(good: tuple[NoteSigner, str]) -> None:
    """Invalid UTF-8 (bytes) or a lone surrogate (str) is malformed, for opening and signing."""
    signer, note = good
    with pytest.raises(MalformedNote, match="UTF-8"):
        open_note(b"\xff" + note.encode(), signer.verifier())
    with pytest.raises(MalformedNote, match="UTF-8"):
        open_note(note.encode().replace(b"one", b"\xc0\xafne"), signer.verifier())  # overlong
    with pytest.raises(MalformedNote, match="UTF-8"):
        open_note("\udc80" + note, signer.verifier())
    with pytest.raises(MalformedNote, match="UTF-8"):
        sign_note("\udc80\n", signer)


def test_too_many_signatures_are_refused() -> None:
    """At most MAX_SIGNATURES lines: the limit itself opens, one more is refused unverified."""
    node = new_signer(ORIGIN)
    strangers = [new_signer(f"w{i}") for i in range(MAX_SIGNATURES)]
    full = sign_note("hello\n", [node, *strangers[: MAX_SIGNATURES - 1]])
    assert len(signatures(full)) == MAX_SIGNATURES
    assert len(open_note(full, node.verifier()).unknown) == MAX_SIGNATURES - 1
    over = full + f"{DASH} extra.example AAAAAAA=\n"  # 101st line, well-formed
    with pytest.raises(MalformedNote, match="more than 100 signature lines"):
        open_note(over, node.verifier())
    with pytest.raises(MalformedNote, match="at most 100"):
        sign_note("hello\n", [node, *strangers])
    with pytest.raises(MalformedNote, match="at most 100"):
        add_signatures(full, strangers[-1])


def test_oversized_notes_are_refused() -> None:
    """A note over MAX_NOTE_BYTES is refused before anything else, as str or as bytes."""
    node = new_signer(ORIGIN)
    big = sign_note("x" * (MAX_NOTE_BYTES - 200) + "\n", node)
    assert open_note(big, node.verifier()).verified_by == [ORIGIN]
    huge = sign_note("x" * 500 + "\n", node).replace("x" * 500, "x" * MAX_NOTE_BYTES)
    for form in (huge, huge.encode()):
        with pytest.raises(MalformedNote, match="larger than"):
            open_note(form, node.verifier())
    multibyte = "\u00e9" * (MAX_NOTE_BYTES // 2) + "\n\n" + huge.split("\n\n")[1]
    with pytest.raises(MalformedNote, match="larger than"):
        open_note(multibyte, node.verifier())
    with pytest.raises(MalformedNote, match="larger than"):
        sign_note("x" * MAX_NOTE_BYTES + "\n", node)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("no newline", "does not end with a newline"),
        ("", "does not end with a newline"),
        ("tab\there\n", "control character"),
        ("crlf\r\n", "control character"),
    ],
)
def test_text_that_cannot_be_signed(text: str, problem: str) -> None:
    """sign_note refuses text a verifier would refuse."""
    with pytest.raises(MalformedNote, match=problem):
        sign_note(text, new_signer(ORIGIN))


def test_signing_needs_a_signer() -> None:
    """Signing with an empty list of signers is refused as a malformed note."""
    with pytest.raises(MalformedNote, match="at least one signer"):
        sign_note("hello\n", [])


def test_text_with_empty_lines_round_trips() -> None:
    """The spec allows empty lines in the text: the last empty line separates the signatures."""
    node = new_signer(ORIGIN)
    for text in ("a\n\nb\n", "a\n\n", "\n", "a\n\n\n\nb\n"):
        note = sign_note(text, node)
        assert open_note(note, node.verifier()).text == text
        assert note_text(note) == text


def test_the_spec_example_parses() -> None:
    """The c2sp.org/signed-note example: text with an empty line, one unknown signature."""
    assert note_text(SPEC_NOTE).endswith("\n\ned \u00e8 subito sera.\n")
    (sig,) = signatures(SPEC_NOTE)
    assert sig.name == "quasimodo.example/salvatore"
    assert len(sig.signature) == 64
    with pytest.raises(NoTrustedSignature):
        open_note(SPEC_NOTE, new_signer("quasimodo.example/salvatore").verifier())


def test_duplicate_signers_sign_once() -> None:
    """The same signer given twice adds one signature line, not two."""
    node = new_signer(ORIGIN)
    note = sign_note("hello\n", [node, node])
    assert len(signatures(note)) == 1


def test_repeated_trusted_lines_are_all_checked() -> None:
    """A repeated line of a trusted key is verified too (and listed once)."""
    node = new_signer(ORIGIN)
    note = sign_note("hello\n", node)
    line = note.split("\n\n")[1]
    assert open_note(note + line, node.verifier()).verified_by == [ORIGIN]


# --- cosigning ---------------------------------------------------------------------------------


def test_a_witness_cosigns_and_both_verify() -> None:
    """add_signatures appends the witness line after the node's; both signatures verify."""
    node, witness = new_signer(ORIGIN), new_signer("witness.az.childreg/coordinator")
    note = sign_note("checkpoint\n", node)
    cosigned = add_signatures(note, witness, verifiers=node.verifier())
    assert cosigned.startswith(note)  # the node's line is kept byte for byte
    assert [s.name for s in signatures(cosigned)] == [ORIGIN, "witness.az.childreg/coordinator"]
    both = open_note(cosigned, [witness.verifier(), node.verifier()])
    assert both.verified_by == [ORIGIN, "witness.az.childreg/coordinator"]
    assert both.unknown == []
    only_node = open_note(cosigned, node.verifier())
    assert only_node.unknown == [("witness.az.childreg/coordinator", witness.key_hash)]
    assert open_note(cosigned, witness.verifier()).verified_by == [witness.name]


def test_cosigning_keeps_order_and_is_idempotent() -> None:
    """Several witnesses append in order; a witness signing again does not add a line."""
    node = new_signer(ORIGIN)
    w1, w2 = new_signer("w1.example"), new_signer("w2.example")
    note = add_signatures(add_signatures(sign_note("x\n", node), w1), w2)
    assert [s.name for s in signatures(note)] == [ORIGIN, "w1.example", "w2.example"]
    assert add_signatures(note, w2) == note
    again = add_signatures(note, w1)
    assert [s.name for s in signatures(again)] == [ORIGIN, "w2.example", "w1.example"]
    assert open_note(again, [node.verifier(), w1.verifier(), w2.verifier()]).verified_by == [
        ORIGIN,
        "w2.example",
        "w1.example",
    ]


def test_cosigning_refuses_notes_that_do_not_verify() -> None:
    """With verifiers, a witness never cosigns a note its log did not sign; malformed is refused."""
    node, other, witness = new_signer(ORIGIN), new_signer(ORIGIN), new_signer("w.example")
    note = sign_note("x\n", other)
    with pytest.raises(UnverifiedNote):
        add_signatures(note, witness, verifiers=node.verifier())
    with pytest.raises(MalformedNote):
        add_signatures(note[:-1], witness)
    with pytest.raises(MalformedNote):
        add_signatures(note, [])


# --- checkpoints -------------------------------------------------------------------------------


def test_checkpoint_text_and_round_trip() -> None:
    """to_text is origin, size, base64 root, extensions, one per line; parse gives it back."""
    cp = Checkpoint(ORIGIN, 1234, ROOT)
    text = cp.to_text()
    assert text == f"{ORIGIN}\n1234\n{base64.b64encode(ROOT).decode()}\n"
    assert Checkpoint.parse(text) == cp
    with_ext = Checkpoint(ORIGIN, 0, ROOT, ("ext one", "ext \u00e9"))
    assert with_ext.to_text().endswith("\next one\next \u00e9\n")
    assert Checkpoint.parse(with_ext.to_text()) == with_ext


def test_the_spec_checkpoint_parses() -> None:
    """The c2sp.org tlog-checkpoint example parses to its origin, size and no extensions, and writes
    back to the same text."""
    cp = Checkpoint.parse(SPEC_CHECKPOINT)
    assert (cp.origin, cp.size, cp.extensions) == ("example.com/behind-the-sofa", 20852163, ())
    assert cp.to_text() == SPEC_CHECKPOINT


B64_ROOT = base64.b64encode(ROOT).decode()
URLSAFE_ROOT = base64.urlsafe_b64encode(b"\xfb" * 32).decode()  # "-" and "_" are not standard


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (f"{ORIGIN}\n01\n{B64_ROOT}\n", "leading zeros"),
        (f"{ORIGIN}\n00\n{B64_ROOT}\n", "leading zeros"),
        (f"{ORIGIN}\n+1\n{B64_ROOT}\n", "decimal"),
        (f"{ORIGIN}\n-1\n{B64_ROOT}\n", "decimal"),
        (f"{ORIGIN}\n 1\n{B64_ROOT}\n", "decimal"),
        (f"{ORIGIN}\n1_000\n{B64_ROOT}\n", "decimal"),
        (f"{ORIGIN}\n\u0661\n{B64_ROOT}\n", "decimal"),
        (f"{ORIGIN}\n0x10\n{B64_ROOT}\n", "decimal"),
        (f"{ORIGIN}\n18446744073709551616\n{B64_ROOT}\n", "larger than"),
        (f"{ORIGIN}\n{'9' * 5000}\n{B64_ROOT}\n", "decimal"),
        (f"{ORIGIN}\n1\n{B64_ROOT.rstrip('=')}\n", "base64"),
        (f"{ORIGIN}\n1\n{URLSAFE_ROOT}\n", "base64"),
        (f"{ORIGIN}\n1\n {B64_ROOT}\n", "base64"),
        (f"{ORIGIN}\n1\n{base64.b64encode(ROOT[:31]).decode()}\n", "31 bytes"),
        (f"{ORIGIN}\n1\n{base64.b64encode(ROOT + b'x').decode()}\n", "33 bytes"),
        (f"{ORIGIN}\n1\n{B64_ROOT[:-2]}B=\n", "canonical"),
        (f"\n1\n{B64_ROOT}\n", "empty line"),
        (f"{ORIGIN}\n1\n", "found 2"),
        (f"{ORIGIN}\n", "found 1"),
        (f"{ORIGIN}\n1\n{B64_ROOT}", "newline"),
        (f"{ORIGIN}\n1\n{B64_ROOT}\n\n", "empty line"),
        (f"{ORIGIN}\n1\n{B64_ROOT}\next\n\nmore\n", "empty line"),
        (f"{ORIGIN}\r\n1\n{B64_ROOT}\n", "control"),
    ],
)
def test_checkpoint_parsing_is_strict(text: str, problem: str) -> None:
    """Leading zeros, non-decimal sizes, bad or non-canonical base64, wrong root length, empty
    or missing lines: each is MalformedCheckpoint (InvalidInput) naming the fault."""
    with pytest.raises(MalformedCheckpoint, match=problem) as caught:
        Checkpoint.parse(text)
    assert isinstance(caught.value, InvalidInput)


def test_size_zero_and_the_largest_size_parse() -> None:
    """A checkpoint of size 0 and one of the largest size, 2**64 - 1, both parse."""
    assert Checkpoint.parse(f"{ORIGIN}\n0\n{B64_ROOT}\n").size == 0
    assert Checkpoint.parse(f"{ORIGIN}\n18446744073709551615\n{B64_ROOT}\n").size == 2**64 - 1


@pytest.mark.parametrize(
    "args",
    [
        ("", 1, ROOT, ()),
        ("a\nb", 1, ROOT, ()),
        (ORIGIN, -1, ROOT, ()),
        (ORIGIN, 2**64, ROOT, ()),
        (ORIGIN, True, ROOT, ()),
        (ORIGIN, 1, ROOT[:31], ()),
        (ORIGIN, 1, ROOT.hex(), ()),
        (ORIGIN, 1, ROOT, ("",)),
        (ORIGIN, 1, ROOT, ("a\nb",)),
        (ORIGIN, 1, ROOT, ["ext"]),
    ],
)
def test_checkpoint_fields_are_checked(args: tuple[object, ...]) -> None:
    """A Checkpoint that could not be written as valid text cannot be made."""
    with pytest.raises(MalformedCheckpoint):
        Checkpoint(*args)  # type: ignore[arg-type]


def test_signed_checkpoint_opens_with_the_right_key_only() -> None:
    """The node's key opens its checkpoint; another key (even under the same name) does not."""
    node, other = new_signer(ORIGIN), new_signer(ORIGIN)
    cp = Checkpoint(ORIGIN, 42, ROOT)
    note = sign_checkpoint(cp, node)
    assert note.startswith(cp.to_text() + "\n" + DASH + " " + ORIGIN + " ")
    opened_cp, opened = open_checkpoint(note, node.verifier(), origin=ORIGIN)
    assert opened_cp == cp
    assert opened.verified_by == [ORIGIN]
    with pytest.raises(NoTrustedSignature):
        open_checkpoint(note, other.verifier())
    with pytest.raises(CheckpointOriginMismatch, match="another log") as caught:
        open_checkpoint(note, node.verifier(), origin=childreg_origin("az.childreg", "ganja"))
    assert isinstance(caught.value, PermissionDenied)


def test_signed_checkpoint_bit_flips_are_rejected() -> None:
    """A flipped bit anywhere in a signed checkpoint makes it fail to open, as invalid input or a
    refused signature."""
    node = new_signer(ORIGIN)
    note = sign_checkpoint(Checkpoint(ORIGIN, 7, ROOT), node).encode()
    for changed in flip_bits(note):
        with pytest.raises((InvalidInput, PermissionDenied)):
            open_checkpoint(changed, node.verifier())


def test_a_signed_note_that_is_no_checkpoint_is_refused_after_verification() -> None:
    """The text is parsed only once its signature verified; then a bad text is malformed."""
    node = new_signer(ORIGIN)
    note = sign_note(f"{ORIGIN}\n007\n{B64_ROOT}\n", node)
    with pytest.raises(NoTrustedSignature):
        open_checkpoint(note, new_signer("x").verifier())
    with pytest.raises(MalformedCheckpoint, match="leading zeros"):
        open_checkpoint(note, node.verifier())


def test_childreg_origin_convention() -> None:
    """childreg.<federation>/<department-id>, and back."""
    assert childreg_origin("az.childreg", "baku") == ORIGIN
    assert parse_childreg_origin(ORIGIN) == ("az.childreg", "baku")
    for federation, department in (("Az", "baku"), ("az..x", "baku"), ("az", "ba/ku"), ("az", "")):
        with pytest.raises(MalformedCheckpoint):
            childreg_origin(federation, department)
    for origin in ("example.com/log", "childreg.az", "childreg.az/b/c", "childreg./baku"):
        with pytest.raises(MalformedCheckpoint):
            parse_childreg_origin(origin)
