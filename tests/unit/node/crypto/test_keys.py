"""Tests of the node's KEK, key file and keyring (node/crypto/keys.py)."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import nacl.bindings
import nacl.encoding
import nacl.exceptions
import nacl.hash
import nacl.pwhash
import nacl.secret
import pytest

from childreg.errors import KeyProblem
from node.crypto.keys import (
    CHILD_KEY_VERSION,
    KDF_MEMLIMIT_MAX,
    KDF_OPSLIMIT_MAX,
    KdfParams,
    Kek,
    KekSource,
    Keyring,
    generate_key_file,
    read_key_file,
)

#: argon2id's minimum cost, so passphrase tests stay fast.
FAST_KDF = KdfParams(salt=b"s" * 16, opslimit=1, memlimit=8192)


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    """A fresh KEK key file outside the keyring's directory."""
    path = tmp_path / "secrets" / "kek.key"
    path.parent.mkdir()
    generate_key_file(path)
    return path


@pytest.fixture
def keyring_path(tmp_path: Path) -> Path:
    """Where the keyring is written (a data directory)."""
    data = tmp_path / "data"
    data.mkdir()
    return data / "keyring.json"


@pytest.fixture
def keyring(keyring_path: Path, key_file: Path) -> Keyring:
    """A keyring made with a key file."""
    return Keyring.create(keyring_path, KekSource.from_key_file(key_file))


def test_kdf_params_reject_a_short_salt() -> None:
    """A salt that is not 16 bytes is refused."""
    with pytest.raises(KeyProblem, match="16 bytes"):
        KdfParams(salt=b"short")


def test_kdf_params_defaults_are_opslimit_3_and_64_mib() -> None:
    """Fresh parameters default to opslimit 3 and 64 MiB with a random 16-byte salt."""
    a, b = KdfParams.fresh(), KdfParams.fresh()
    assert (a.opslimit, a.memlimit, len(a.salt)) == (3, 64 * 1024 * 1024, 16)
    assert a.salt != b.salt


def test_kdf_derive_depends_on_passphrase_and_salt() -> None:
    """The derived KEK is the same for the same inputs and differs with passphrase or salt."""
    other_salt = KdfParams(salt=b"t" * 16, opslimit=1, memlimit=8192)
    assert FAST_KDF.derive("correct horse") == FAST_KDF.derive("correct horse")
    assert FAST_KDF.derive("correct horse") != FAST_KDF.derive("correct horsf")
    assert FAST_KDF.derive("correct horse") != other_salt.derive("correct horse")
    assert len(FAST_KDF.derive("correct horse")) == 32


def test_kdf_params_round_trip_through_json() -> None:
    """KDF parameters written to JSON read back equal."""
    assert KdfParams.from_json(json.loads(json.dumps(FAST_KDF.to_json()))) == FAST_KDF


def test_kek_source_needs_exactly_one_of_passphrase_or_key_file(tmp_path: Path) -> None:
    """A KEK source with both or neither of passphrase and key file is refused."""
    with pytest.raises(KeyProblem):
        KekSource()
    with pytest.raises(KeyProblem):
        KekSource(passphrase="p", key_file=tmp_path / "k")


def test_kek_source_repr_hides_the_passphrase() -> None:
    """The passphrase never appears in a KEK source's repr."""
    assert "hunter2-secret" not in repr(KekSource.from_passphrase("hunter2-secret"))


def test_generate_key_file_writes_64_hex_chars_with_mode_0600(key_file: Path) -> None:
    """A generated key file holds 64 lowercase hex characters and a newline, mode 0600."""
    text = key_file.read_text("ascii")
    assert len(text) == 65
    assert text.endswith("\n")
    assert all(c in "0123456789abcdef" for c in text[:64])
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert read_key_file(key_file) == bytes.fromhex(text[:64])


def test_generate_key_file_refuses_to_overwrite(key_file: Path) -> None:
    """Generating over an existing key file fails and leaves the old key in place."""
    before = key_file.read_bytes()
    with pytest.raises(KeyProblem, match="refusing to overwrite"):
        generate_key_file(key_file)
    assert key_file.read_bytes() == before


def test_generated_key_files_differ(tmp_path: Path) -> None:
    """Two generated key files hold different keys."""
    generate_key_file(tmp_path / "a")
    generate_key_file(tmp_path / "b")
    assert read_key_file(tmp_path / "a") != read_key_file(tmp_path / "b")


def test_read_key_file_accepts_no_newline_and_upper_case(tmp_path: Path) -> None:
    """A key file without a trailing newline, or in upper-case hex, is read."""
    path = tmp_path / "k"
    path.write_text("AB" * 32)
    assert read_key_file(path) == b"\xab" * 32


@pytest.mark.parametrize(
    "content",
    [b"ab" * 31, b"ab" * 33, b"zz" * 32, b" " + b"ab" * 32, b"ab" * 32 + b"\n\n", b""],
    ids=["short", "long", "not-hex", "leading-space", "two-newlines", "empty"],
)
def test_read_key_file_rejects_malformed_content(tmp_path: Path, content: bytes) -> None:
    """A malformed key file gives KeyProblem naming the file and what it must contain."""
    path = tmp_path / "bad.key"
    path.write_bytes(content)
    with pytest.raises(KeyProblem) as info:
        read_key_file(path)
    assert str(path) in str(info.value)
    assert "64 hexadecimal" in str(info.value)
    if content.strip():
        assert content.strip().decode() not in str(info.value)


def test_read_key_file_missing_gives_key_problem(tmp_path: Path) -> None:
    """A missing key file gives KeyProblem with a hint."""
    with pytest.raises(KeyProblem) as info:
        read_key_file(tmp_path / "nope")
    assert info.value.hint


def test_kek_wrap_round_trips_and_uses_a_random_nonce() -> None:
    """Unwrapping a wrapped key gives it back; wrapping twice gives different blobs."""
    kek = Kek(b"k" * 32)
    a, b = kek.wrap(b"x" * 32, b"ad"), kek.wrap(b"x" * 32, b"ad")
    assert a != b
    assert kek.unwrap(a, b"ad") == kek.unwrap(b, b"ad") == b"x" * 32


def test_kek_unwrap_fails_with_other_ad_other_kek_or_tampering() -> None:
    """A wrapped key does not unwrap with other associated data, another KEK, or a flipped bit."""
    kek = Kek(b"k" * 32)
    blob = kek.wrap(b"x" * 32, b"ad")
    tampered = bytearray(blob)
    tampered[-1] ^= 1
    other = Kek(b"j" * 32)
    for unwrapper, wrapped, ad in (
        (kek, blob, b"other"),
        (other, blob, b"ad"),
        (kek, bytes(tampered), b"ad"),
        (kek, b"short", b"ad"),
    ):
        with pytest.raises(KeyProblem):
            unwrapper.unwrap(wrapped, ad)


def test_keyring_from_key_file_reopens_with_the_same_keys(
    keyring: Keyring, keyring_path: Path, key_file: Path
) -> None:
    """A keyring reopened with its key file yields the same database and lookup keys."""
    again = Keyring.open(keyring_path, KekSource.from_key_file(key_file))
    assert again.db_key == keyring.db_key
    assert again.national_id_hash("AZ123456") == keyring.national_id_hash("AZ123456")


def test_keyring_from_passphrase_reopens_only_with_that_passphrase(keyring_path: Path) -> None:
    """A passphrase keyring opens with its passphrase; another gives KeyProblem with a hint."""
    made = Keyring.create(keyring_path, KekSource.from_passphrase("right"), kdf=FAST_KDF)
    assert Keyring.open(keyring_path, KekSource.from_passphrase("right")).db_key == made.db_key
    with pytest.raises(KeyProblem) as info:
        Keyring.open(keyring_path, KekSource.from_passphrase("wrong"))
    assert "passphrase" in info.value.hint
    assert "wrong" not in str(info.value) + info.value.hint


def test_keyring_with_default_kdf_round_trips(keyring_path: Path) -> None:
    """A passphrase keyring with the default argon2id cost stores those parameters and reopens."""
    made = Keyring.create(keyring_path, KekSource.from_passphrase("a long passphrase"))
    kdf = json.loads(keyring_path.read_text())["kek"]["kdf"]
    assert (kdf["alg"], kdf["opslimit"], kdf["memlimit"]) == ("argon2id", 3, 64 * 1024 * 1024)
    again = Keyring.open(keyring_path, KekSource.from_passphrase("a long passphrase"))
    assert again.db_key == made.db_key


def test_keyring_file_holds_no_clear_key_and_has_mode_0600(
    keyring: Keyring, keyring_path: Path
) -> None:
    """keyring.json is mode 0600, leaves no temp file, and holds neither key in any encoding."""
    raw = keyring_path.read_bytes()
    assert stat.S_IMODE(keyring_path.stat().st_mode) == 0o600
    assert os.listdir(keyring_path.parent) == ["keyring.json"]
    for secret in (keyring.db_key, keyring._lookup_key):
        for form in (secret, secret.hex().encode(), secret.hex().upper().encode()):
            assert form not in raw
    assert base64.b64encode(keyring.db_key) not in raw


def test_keyring_create_refuses_an_existing_file(
    keyring: Keyring, keyring_path: Path, key_file: Path
) -> None:
    """Creating a keyring where one exists fails and leaves the file as it was."""
    before = keyring_path.read_bytes()
    with pytest.raises(KeyProblem, match="already exists"):
        Keyring.create(keyring_path, KekSource.from_key_file(key_file))
    assert keyring_path.read_bytes() == before


def test_keyring_open_missing_file_says_what_to_do(tmp_path: Path, key_file: Path) -> None:
    """Opening a missing keyring gives a one-line KeyProblem with a hint."""
    with pytest.raises(KeyProblem) as info:
        Keyring.open(tmp_path / "keyring.json", KekSource.from_key_file(key_file))
    assert "\n" not in str(info.value)
    assert info.value.hint


def test_keyring_made_with_key_file_refuses_a_passphrase(
    keyring: Keyring, keyring_path: Path
) -> None:
    """A key-file keyring opened with a passphrase says it was made with a key file."""
    with pytest.raises(KeyProblem) as info:
        Keyring.open(keyring_path, KekSource.from_passphrase("anything"))
    assert "key file" in str(info.value)
    assert "kek_file" in info.value.hint


def test_keyring_made_with_passphrase_refuses_a_key_file(
    keyring_path: Path, key_file: Path
) -> None:
    """A passphrase keyring opened with a key file says it was made with a passphrase."""
    Keyring.create(keyring_path, KekSource.from_passphrase("p"), kdf=FAST_KDF)
    with pytest.raises(KeyProblem) as info:
        Keyring.open(keyring_path, KekSource.from_key_file(key_file))
    assert "passphrase" in str(info.value)
    assert "passphrase" in info.value.hint


def test_keyring_refuses_another_key_file(
    keyring: Keyring, keyring_path: Path, tmp_path: Path
) -> None:
    """A keyring does not open with a different key file."""
    generate_key_file(tmp_path / "other.key")
    with pytest.raises(KeyProblem) as info:
        Keyring.open(keyring_path, KekSource.from_key_file(tmp_path / "other.key"))
    assert "kek_file" in info.value.hint


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: "not json",
        lambda d: json.dumps({**d, "version": 99}),
        lambda d: json.dumps({**d, "kek": {"kind": "kms"}}),
        lambda d: json.dumps({k: v for k, v in d.items() if k != "db_key"}),
        lambda d: json.dumps({**d, "db_key": "!!!"}),
    ],
    ids=["not-json", "version", "kind", "missing-key", "bad-base64"],
)
def test_keyring_refuses_a_damaged_file(
    keyring: Keyring, keyring_path: Path, key_file: Path, damage: object
) -> None:
    """A keyring file that is not valid gives KeyProblem, not another exception."""
    document = json.loads(keyring_path.read_text())
    keyring_path.write_text(damage(document))  # type: ignore[operator]
    with pytest.raises(KeyProblem):
        Keyring.open(keyring_path, KekSource.from_key_file(key_file))


def test_keyring_refuses_a_swapped_wrapped_key(
    keyring: Keyring, keyring_path: Path, key_file: Path
) -> None:
    """A wrapped lookup key put in the database key's place does not open (AD binds the role)."""
    document = json.loads(keyring_path.read_text())
    document["db_key"] = document["lookup_key"]
    keyring_path.write_text(json.dumps(document))
    with pytest.raises(KeyProblem):
        Keyring.open(keyring_path, KekSource.from_key_file(key_file))


def test_db_key_hex_is_64_lowercase_hex_of_db_key(keyring: Keyring) -> None:
    """db_key_hex() is the 32-byte database key as 64 lowercase hex characters."""
    text = keyring.db_key_hex()
    assert len(keyring.db_key) == 32
    assert text == keyring.db_key.hex()
    assert text == text.lower()
    assert len(text) == 64


def test_child_keys_unwrap_only_for_their_child_and_version(keyring: Keyring) -> None:
    """A child key unwraps for its child id and version, and for no other."""
    key, wrapped, version = keyring.new_child_key("C1")
    assert version == CHILD_KEY_VERSION
    assert len(key) == 32
    assert keyring.child_key("C1", version, wrapped) == key
    with pytest.raises(KeyProblem):
        keyring.child_key("C2", version, wrapped)
    with pytest.raises(KeyProblem):
        keyring.child_key("C1", version + 1, wrapped)
    assert keyring.new_child_key("C1")[0] != key


def test_seal_round_trips(keyring: Keyring) -> None:
    """A sealed field opens with the same key, child and context."""
    key, _, _ = keyring.new_child_key("C1")
    sealed = keyring.seal(key, "C1", "identity", b"Aysel")
    assert b"Aysel" not in sealed
    assert keyring.unseal(key, "C1", "identity", sealed) == b"Aysel"


def test_a_new_childs_fields_seal_as_seal_does_with_fresh_key_and_nonces(
    keyring: Keyring,
) -> None:
    """seal_new_child wraps a fresh key for the child, and each of its sealed values opens
    with that key exactly as one sealed by seal() (same context binding, same layout);
    the key and the nonces all differ, between values and between children."""
    values = [("identity", b'{"given_name":"Aysel"}'), ("assessment:1:diagnoses", b'["F84.0"]')]
    wrapped, version, sealed = keyring.seal_new_child("C1", values)
    assert version == CHILD_KEY_VERSION
    key = keyring.child_key("C1", version, wrapped)
    with pytest.raises(KeyProblem):
        keyring.child_key("C2", version, wrapped)
    assert [keyring.unseal(key, "C1", context, blob) for (context, _), blob in zip(
        values, sealed, strict=True
    )] == [plain for _, plain in values]  # fmt: skip
    assert len(sealed[1]) == len(keyring.seal(key, "C1", "assessment:1:diagnoses", b'["F84.0"]'))
    with pytest.raises(KeyProblem):  # bound to its own context and child
        keyring.unseal(key, "C1", "assessment:1:diagnoses", sealed[0])
    with pytest.raises(KeyProblem):
        keyring.unseal(key, "C2", "identity", sealed[0])
    again, _, resealed = keyring.seal_new_child("C1", values)
    assert keyring.child_key("C1", version, again) != key
    nonces = [blob[:24] for blob in (wrapped, *sealed, again, *resealed)]
    assert len(set(nonces)) == len(nonces)
    assert keyring.seal_new_child("C3", [])[2] == []


def test_a_new_childs_seals_are_exactly_libsodiums_with_its_fresh_key_and_nonces(
    keyring: Keyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the OS's random bytes fixed, seal_new_child's output is the public binding's
    XChaCha20-Poly1305 of each value, under the key (first 32 bytes) and the nonces that
    follow, with seal()'s associated data: the same bytes seal() would give."""
    fresh = bytes(range(32 + 24 * 3))
    monkeypatch.setattr("node.crypto.keys.os.urandom", lambda n: fresh[:n])
    values = [("identity", b'{"a":1}'), ("assessment:1:supports", b'["ramp"]')]
    wrapped, version, sealed = keyring.seal_new_child("C1", values)
    monkeypatch.undo()
    key, nonces = fresh[:32], [fresh[32 + 24 * i : 56 + 24 * i] for i in range(3)]
    assert keyring.child_key("C1", version, wrapped) == key
    assert wrapped[:24] == nonces[0]
    encrypt = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt
    assert sealed == [
        nonce + encrypt(plain, b"childreg/v1/field\0C1\0" + context.encode(), nonce, key)
        for (context, plain), nonce in zip(values, nonces[1:], strict=True)
    ]


def test_sealed_field_moved_or_tampered_does_not_open(keyring: Keyring) -> None:
    """A sealed field fails to open for another child, context, key, or after a bit flip."""
    key, _, _ = keyring.new_child_key("C1")
    other_key, _, _ = keyring.new_child_key("C1")
    sealed = keyring.seal(key, "C1", "assessment:1:diagnoses", b'["F84.0"]')
    flipped = bytearray(sealed)
    flipped[30] ^= 0x40
    attempts = [
        (key, "C2", "assessment:1:diagnoses", sealed),
        (key, "C1", "assessment:2:diagnoses", sealed),
        (key, "C1", "assessment:1:supports", sealed),
        (other_key, "C1", "assessment:1:diagnoses", sealed),
        (key, "C1", "assessment:1:diagnoses", bytes(flipped)),
    ]
    for attempt in attempts:
        with pytest.raises(KeyProblem, match=r"does not open \(tampered or moved\)"):
            keyring.unseal(*attempt)


def test_national_id_hash_is_keyed_blake2b_256(keyring: Keyring, tmp_path: Path) -> None:
    """The national-id hash is BLAKE2b-256 keyed with the lookup key, and differs per keyring."""
    digest = keyring.national_id_hash("AZ1234567")
    expected = nacl.hash.blake2b(
        b"AZ1234567",
        digest_size=32,
        key=keyring._lookup_key,
        person=b"childreg-nid",
        encoder=nacl.encoding.RawEncoder,
    )
    assert digest == expected
    assert keyring.national_id_hash("AZ1234568") != digest
    generate_key_file(tmp_path / "k2")
    other = Keyring.create(tmp_path / "ring2.json", KekSource.from_key_file(tmp_path / "k2"))
    assert other.national_id_hash("AZ1234567") != digest


def test_pseudonym_is_separated_from_national_id_hash(keyring: Keyring) -> None:
    """The same string hashes differently as a pseudonym and as a national id."""
    assert keyring.pseudonym("AZ1234567") != keyring.national_id_hash("AZ1234567")
    assert keyring.pseudonym("C1") == keyring.pseudonym("C1")


def test_reprs_hide_key_material(keyring: Keyring) -> None:
    """Neither a Kek nor a Keyring shows key bytes in its repr."""
    assert keyring.db_key.hex() not in repr(keyring)
    assert repr(Kek(b"k" * 32)) == "Kek(<hidden>)"


# --- KDF bounds, derivation failures and the sealed format ---------------------------


@pytest.mark.parametrize(
    ("opslimit", "memlimit"),
    [
        (KDF_OPSLIMIT_MAX + 1, 8192),
        (1, KDF_MEMLIMIT_MAX + 1),
        (1, 2**62),
        (0, 8192),
        (1, 8191),
        (True, 8192),
        (1.0, 8192),
        ("3", 8192),
    ],
    ids=["ops-high", "mem-high", "mem-2^62", "ops-low", "mem-low", "bool", "float", "text"],
)
def test_kdf_params_out_of_bounds_are_refused(opslimit: object, memlimit: object) -> None:
    """KDF parameters outside argon2id's minimum and the node's maximum, or not integers, fail."""
    with pytest.raises(KeyProblem, match=r"(opslimit|memlimit) must be an integer from"):
        KdfParams(b"s" * 16, opslimit, memlimit)  # type: ignore[arg-type]


def test_kdf_params_at_the_upper_bounds_are_accepted() -> None:
    """The largest allowed opslimit and memlimit are accepted (the bounds are inclusive)."""
    kdf = KdfParams(b"s" * 16, KDF_OPSLIMIT_MAX, KDF_MEMLIMIT_MAX)
    assert (kdf.opslimit, kdf.memlimit) == (16, 1024**3)


@pytest.mark.parametrize(
    "kdf_change",
    [{"memlimit": 2**62}, {"opslimit": 10**9}, {"memlimit": "64 MiB"}, {"opslimit": None}],
    ids=["memlimit-2^62", "opslimit-huge", "memlimit-text", "opslimit-null"],
)
def test_keyring_with_damaged_kdf_parameters_is_refused_before_deriving(
    keyring_path: Path, kdf_change: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A keyring whose argon2id parameters are out of bounds gives KeyProblem with a hint."""
    Keyring.create(keyring_path, KekSource.from_passphrase("p"), kdf=FAST_KDF)
    document = json.loads(keyring_path.read_text())
    document["kek"]["kdf"].update(kdf_change)
    keyring_path.write_text(json.dumps(document))
    derived: list[object] = []
    monkeypatch.setattr(nacl.pwhash.argon2id, "kdf", lambda *args: derived.append(args))
    with pytest.raises(KeyProblem) as info:
        Keyring.open(keyring_path, KekSource.from_passphrase("p"))
    assert "is damaged" in str(info.value)
    assert "backup" in info.value.hint
    assert derived == []


@pytest.mark.parametrize(
    "failure",
    [MemoryError(), nacl.exceptions.RuntimeError("out of memory"), ValueError("memlimit")],
    ids=["memory", "nacl-runtime", "value"],
)
def test_failure_to_derive_the_kek_is_a_key_problem(failure: Exception) -> None:
    """If argon2id fails (e.g. too little memory) deriving the KEK gives KeyProblem, not a crash."""

    def failing(*_: object) -> bytes:
        raise failure

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(nacl.pwhash.argon2id, "kdf", failing)
        with pytest.raises(KeyProblem) as info:
            FAST_KDF.derive("correct horse")
    assert "memory" in info.value.hint
    assert "correct horse" not in str(info.value)


def test_sealed_format_is_nacl_aead_nonce_then_ciphertext(keyring: Keyring) -> None:
    """Sealed fields and wrapped keys are nacl.secret.Aead blobs with the same associated data."""
    key, wrapped, version = keyring.new_child_key("C1")
    field_ad = b"childreg/v1/field\0C1\0identity"
    old = bytes(nacl.secret.Aead(key).encrypt(b"made before", field_ad))
    assert keyring.unseal(key, "C1", "identity", old) == b"made before"
    new = keyring.seal(key, "C1", "identity", b"made now")
    assert len(new) == 24 + len(b"made now") + 16
    assert nacl.secret.Aead(key).decrypt(new, field_ad) == b"made now"
    kek = Kek(b"k" * 32)
    ad = b"childreg/v1/child-key\0C1\0" + str(version).encode()
    assert nacl.secret.Aead(b"k" * 32).decrypt(kek.wrap(key, ad), ad) == key
    assert kek.unwrap(bytes(nacl.secret.Aead(b"k" * 32).encrypt(key, ad)), ad) == key
    assert wrapped[:24] != keyring.new_child_key("C1")[1][:24]  # fresh random nonces


@pytest.mark.parametrize("bad_key", [b"short", b"k" * 33, "k" * 32], ids=["short", "long", "str"])
def test_sealing_with_a_malformed_child_key_is_a_key_problem(
    keyring: Keyring, bad_key: object
) -> None:
    """A child key that is not 32 bytes gives KeyProblem when sealing or unsealing."""
    with pytest.raises(KeyProblem):
        keyring.seal(bad_key, "C1", "identity", b"x")  # type: ignore[arg-type]
    with pytest.raises(KeyProblem):
        keyring.unseal(bad_key, "C1", "identity", b"\0" * 64)  # type: ignore[arg-type]
