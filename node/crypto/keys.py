"""The node's keys: the key-encryption key (KEK) and the keyring it unlocks.

A stolen disk must yield no plaintext, so nothing here writes a clear key to disk. The
KEK comes from an operator passphrase (argon2id) or a key file kept off the data disk; it
wraps the random SQLCipher database key, the lookup key (keyed hashes of national ids,
pseudonyms) and one data key per child. Sensitive fields are sealed under the child's key
with associated data naming the child and the field, so ciphertext moved to another row
or field does not open. Erasing a child is destroying its wrapped key.

Every wrapped key and sealed field is XChaCha20-Poly1305 (IETF) stored as
``nonce (24 random bytes) || ciphertext``, the layout of PyNaCl's ``nacl.secret.Aead``;
libsodium is called through :mod:`node.crypto.aead` because building an ``Aead`` object, or even
going through ``nacl.bindings``' checks, per field costs more than the encryption itself.

No key material or plaintext ever appears in a log line or an exception message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import nacl.bindings
import nacl.exceptions
import nacl.pwhash
from nacl.public import PrivateKey

from childreg.errors import KeyProblem
from childreg.secretfile import write_private
from node.crypto import aead

KEY_BYTES: Final = 32
NONCE_BYTES: Final = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
SALT_BYTES: Final = nacl.pwhash.argon2id.SALTBYTES
#: Upper bounds on argon2id's cost: a damaged keyring must fail, not hang or exhaust memory.
KDF_OPSLIMIT_MAX: Final = 16
KDF_MEMLIMIT_MAX: Final = 1024 * 1024 * 1024
KEYRING_FORMAT: Final = "childreg-keyring"
KEYRING_VERSION: Final = 1
#: Version of the wrapping of per-child keys (bound into their associated data): the
#: generation of the KEK that wraps them. A keyring starts at generation 1; each KEK
#: rotation (node/kek_rotation.py) makes the next generation and rewraps every child key.
CHILD_KEY_VERSION: Final = 1

#: Exactly 64 hexadecimal digits: a 32-byte key as text (key files, SQLCipher's raw key).
HEX64: Final = re.compile(r"[0-9a-fA-F]{64}")
_DB_KEY_AD: Final = b"childreg/v1/db-key"
_LOOKUP_KEY_AD: Final = b"childreg/v1/lookup-key"
_CHILD_KEY_TAG: Final = b"childreg/v1/child-key\0"
_FIELD_TAG: Final = b"childreg/v1/field\0"
_NID_PERSON: Final = b"childreg-nid"
_PSEUDONYM_PERSON: Final = b"childreg-pseudo"
_NOISE_PERSON: Final = b"childreg-noise"
_AUDIT_PERSON: Final = b"childreg-audit"
_GRANT_PERSON: Final = b"childreg-grant"
_EXTRACT_PERSON: Final = b"childreg-extract"
_MASKING_PERSON: Final = b"childreg-masking"
_UPLOAD_PERSON: Final = b"childreg-uploads"
_INDEX_PERSON: Final = b"childreg-index"

KekKind = Literal["passphrase", "key_file"]
_KIND_WORDS: Final[dict[str, str]] = {"passphrase": "a passphrase", "key_file": "a key file"}
_KIND_HINTS: Final[dict[str, str]] = {
    "passphrase": "check the passphrase; the keyring was made with a passphrase",
    "key_file": "check kek_file in the node configuration; the keyring was made with a key file",
}


@dataclass(frozen=True)
class KdfParams:
    """Argon2id parameters that turn a passphrase into a KEK (stored with the keyring)."""

    salt: bytes
    opslimit: int = 3
    memlimit: int = 64 * 1024 * 1024

    def __post_init__(self) -> None:
        if not isinstance(self.salt, bytes) or len(self.salt) != SALT_BYTES:
            raise KeyProblem(f"the KDF salt must be {SALT_BYTES} bytes")
        for name, value, low, high in (
            ("opslimit", self.opslimit, nacl.pwhash.argon2id.OPSLIMIT_MIN, KDF_OPSLIMIT_MAX),
            ("memlimit", self.memlimit, nacl.pwhash.argon2id.MEMLIMIT_MIN, KDF_MEMLIMIT_MAX),
        ):
            if type(value) is not int or not low <= value <= high:
                raise KeyProblem(f"the KDF {name} must be an integer from {low} to {high}")

    @classmethod
    def fresh(cls, opslimit: int = 3, memlimit: int = 64 * 1024 * 1024) -> KdfParams:
        """New parameters with a random salt."""
        return cls(secrets.token_bytes(SALT_BYTES), opslimit, memlimit)

    def derive(self, passphrase: str) -> bytes:
        """The 32-byte KEK derived from ``passphrase``."""
        if not passphrase:
            raise KeyProblem("the passphrase is empty", hint="give the node's KEK passphrase")
        try:
            return nacl.pwhash.argon2id.kdf(
                KEY_BYTES, passphrase.encode("utf-8"), self.salt, self.opslimit, self.memlimit
            )
        except (nacl.exceptions.CryptoError, ValueError, TypeError, MemoryError, RuntimeError):
            raise KeyProblem(
                "cannot derive the KEK from the passphrase with the keyring's argon2id "
                f"parameters (opslimit {self.opslimit}, memlimit {self.memlimit})",
                hint="check that the machine has that much free memory, or restore "
                "keyring.json from a backup",
            ) from None

    def to_json(self) -> dict[str, Any]:
        """The parameters as JSON-ready values."""
        return {
            "alg": "argon2id",
            "salt": self.salt.hex(),
            "opslimit": self.opslimit,
            "memlimit": self.memlimit,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KdfParams:
        """Parameters read back from :meth:`to_json` output; KeyProblem if out of bounds."""
        if data.get("alg") != "argon2id":
            raise ValueError("unknown KDF")
        return cls(bytes.fromhex(data["salt"]), data["opslimit"], data["memlimit"])


@dataclass(frozen=True)
class KekSource:
    """Where the KEK comes from: an operator passphrase or a key file (exactly one)."""

    passphrase: str | None = field(default=None, repr=False)
    key_file: Path | None = None

    def __post_init__(self) -> None:
        if (self.passphrase is None) == (self.key_file is None):
            raise KeyProblem("give either a passphrase or a key file for the KEK, not both")

    @classmethod
    def from_passphrase(cls, passphrase: str) -> KekSource:
        """A KEK derived from a passphrase."""
        return cls(passphrase=passphrase)

    @classmethod
    def from_key_file(cls, path: Path) -> KekSource:
        """A KEK read from a key file."""
        return cls(key_file=Path(path))

    @property
    def kind(self) -> KekKind:
        """``passphrase`` or ``key_file``."""
        return "passphrase" if self.passphrase is not None else "key_file"


def generate_key_file(path: Path) -> None:
    """Write a fresh random KEK as 64 hex characters to a new file with mode 0600."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyProblem(
            f"the key file {path} already exists; refusing to overwrite it",
            hint="choose another path; an existing key file may be the only way into a keyring",
        ) from None
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (secrets.token_hex(KEY_BYTES) + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)


def read_key_file(path: Path) -> bytes:
    """The 32-byte KEK in a key file; KeyProblem if it is missing or malformed."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise KeyProblem(
            f"cannot read the key file {path} ({exc.strerror})",
            hint="check kek_file in the node configuration and the file's permissions",
        ) from None
    text = raw.removesuffix(b"\n").removesuffix(b"\r")
    if len(text) != 64 or not HEX64.fullmatch(text.decode("ascii", errors="replace")):
        raise KeyProblem(
            f"the key file {path} is malformed: it must contain exactly 64 hexadecimal "
            "characters (optionally followed by a newline)",
            hint="use the key file made by `childreg node keygen` (64 hex characters)",
        )
    return bytes.fromhex(text.decode("ascii"))


_encrypt: Final = aead.encrypt
_decrypt: Final = aead.decrypt


def _seal(key: bytes, plaintext: bytes, ad: bytes) -> bytes:
    """XChaCha20-Poly1305 of ``plaintext`` bound to ``ad``: nonce || ciphertext, with a
    random nonce."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + _encrypt(plaintext, ad, nonce, key)


def _open(key: bytes, blob: bytes, ad: bytes) -> bytes | None:
    """The plaintext of a :func:`_seal` blob, or None if it does not open with ``key``/``ad``."""
    try:
        return _decrypt(blob[NONCE_BYTES:], ad, blob[:NONCE_BYTES], key)
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        return None


class Kek:
    """A key-encryption key: wraps and unwraps other keys with XChaCha20-Poly1305."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes) or len(key) != KEY_BYTES:
            raise KeyProblem("a KEK must be 32 bytes")
        self._key = key

    def __repr__(self) -> str:
        return "Kek(<hidden>)"

    def wrap(self, key: bytes, ad: bytes) -> bytes:
        """``key`` encrypted under the KEK with associated data ``ad``, with a random nonce."""
        return _seal(self._key, key, ad)

    def wrap_new_key(
        self, key_ad: bytes, items: Sequence[tuple[bytes, bytes]]
    ) -> tuple[bytes, list[bytes]]:
        """A new random key wrapped as :meth:`wrap` wraps (with ``key_ad``), and each
        (plaintext, ad) of ``items`` sealed under it (``nonce || ciphertext``); the key
        itself is not returned."""
        return aead.seal_under_new_key(self._key, key_ad, items)

    def unwrap(self, blob: bytes, ad: bytes) -> bytes:
        """The key inside ``blob``; KeyProblem if the KEK or ``ad`` is wrong or it was altered."""
        key = _open(self._key, blob, ad)
        if key is None:
            raise KeyProblem("a wrapped key does not open with this KEK")
        return key


def _kek_for(source: KekSource, kdf: KdfParams | None) -> Kek:
    if source.passphrase is not None:
        assert kdf is not None
        return Kek(kdf.derive(source.passphrase))
    assert source.key_file is not None
    return Kek(read_key_file(source.key_file))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class Keyring:
    """The node's unwrapped keys, in memory only; on disk a JSON file of wrapped keys."""

    __slots__ = ("_db_key", "_generation", "_kek", "_lookup_key", "_signing")

    def __init__(
        self,
        kek: Kek,
        db_key: bytes,
        lookup_key: bytes,
        generation: int = CHILD_KEY_VERSION,
        signing: Mapping[str, int] | None = None,
    ) -> None:
        if len(db_key) != KEY_BYTES or len(lookup_key) != KEY_BYTES:
            raise KeyProblem("keyring keys must be 32 bytes")
        if type(generation) is not int or generation < 1:
            raise KeyProblem("a keyring's KEK generation must be a positive integer")
        self._kek = kek
        self._db_key = db_key
        self._lookup_key = lookup_key
        self._generation = generation
        self._signing: dict[str, int] = dict(signing or {})

    def __repr__(self) -> str:
        return "Keyring(<hidden>)"

    def with_signing(self, generations: Mapping[str, int]) -> Keyring:
        """This keyring whose audit, extract and upload signing keys are of ``generations``
        (which key -> generation, 1 if absent; the node's store records them when a key is
        rotated, node/key_rotation.py)."""
        return Keyring(self._kek, self._db_key, self._lookup_key, self._generation, generations)

    def signing_generation(self, which: str) -> int:
        """The generation of the ``which`` signing key in use (1 until it is rotated)."""
        return self._signing.get(which, 1)

    def _signing_seed(self, which: str, label: str, person: bytes, generation: int | None) -> bytes:
        gen = self.signing_generation(which) if generation is None else generation
        if type(gen) is not int or gen < 1:
            raise KeyProblem("a signing key's generation must be a positive integer")
        # The first generation keeps the derivation nodes always had (keys already pinned).
        return self._keyed_hash(label if gen == 1 else f"{label}/{gen}", person)

    @classmethod
    def create(cls, path: Path, source: KekSource, *, kdf: KdfParams | None = None) -> Keyring:
        """Make new random keys, write them wrapped to ``path`` (must not exist), return them.

        ``kdf`` applies to a passphrase source only; by default fresh argon2id parameters.
        """
        path = Path(path)
        if path.exists():
            raise KeyProblem(
                f"a keyring already exists at {path}; refusing to overwrite it",
                hint="open the existing keyring, or choose an empty data directory",
            )
        kek, kek_json = _new_kek(source, kdf)
        keyring = cls(kek, secrets.token_bytes(KEY_BYTES), secrets.token_bytes(KEY_BYTES))
        keyring._write(path, kek_json)
        return keyring

    def rewrapped(self, source: KekSource, *, kdf: KdfParams | None = None) -> RewrappedKeyring:
        """The same database and lookup keys under the KEK from ``source``, one generation on.

        Nothing is written: :meth:`RewrappedKeyring.write` writes the new keyring file.
        KeyProblem if the new KEK is this keyring's own.
        """
        kek, kek_json = _new_kek(source, kdf)
        if kek._key == self._kek._key:
            raise KeyProblem(
                "the new KEK is the one the keyring is wrapped with now",
                hint="make a new key file with `childreg node keygen --out FILE` "
                "(or choose a new passphrase)",
            )
        keyring = Keyring(kek, self._db_key, self._lookup_key, self._generation + 1, self._signing)
        return RewrappedKeyring(keyring, kek_json)

    def with_new_db_key(self) -> Keyring:
        """The same KEK, generation and lookup key with a new random database key (for a
        database rekey, node/rekey.py); nothing is written."""
        return Keyring(
            self._kek,
            secrets.token_bytes(KEY_BYTES),
            self._lookup_key,
            self._generation,
            self._signing,
        )

    def _write(
        self, path: Path, kek_json: dict[str, Any], note: dict[str, Any] | None = None
    ) -> None:
        generation = self._generation
        document: dict[str, Any] = {
            "format": KEYRING_FORMAT,
            "version": KEYRING_VERSION,
            "kek": kek_json,
            "db_key": _b64(self._kek.wrap(self._db_key, _keyring_ad(_DB_KEY_AD, generation))),
            "lookup_key": _b64(
                self._kek.wrap(self._lookup_key, _keyring_ad(_LOOKUP_KEY_AD, generation))
            ),
        }
        if generation != CHILD_KEY_VERSION:  # keyrings never rotated keep their first form
            document["kek_generation"] = generation
        if note is not None:  # an operation's bookkeeping (no key material)
            document["note"] = note
        write_private(path, (json.dumps(document, indent=2) + "\n").encode("utf-8"))

    @property
    def generation(self) -> int:
        """The KEK's generation: 1 at ``init``, one more after each rotation."""
        return self._generation

    def rewrap_child_key(
        self, child_id: str, version: int, wrapped: bytes, new: Keyring
    ) -> tuple[bytes, int]:
        """A child's data key unwrapped with this keyring's KEK and wrapped under ``new``'s:
        (wrapped key, version). KeyProblem if it is not that child's key under this KEK."""
        key = self.child_key(child_id, version, wrapped)
        return new._kek.wrap(key, _child_key_ad(child_id, new._generation)), new._generation

    @classmethod
    def open(cls, path: Path, source: KekSource) -> Keyring:
        """Read the keyring at ``path`` and unwrap its keys with the KEK from ``source``."""
        path = Path(path)
        try:
            document = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            raise KeyProblem(
                f"no keyring at {path}",
                hint="check the data directory, or initialise the node to create a keyring",
            ) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            raise KeyProblem(
                f"the keyring at {path} cannot be read",
                hint="check the file's permissions or restore keyring.json from a backup",
            ) from None
        try:
            if document["format"] != KEYRING_FORMAT or document["version"] != KEYRING_VERSION:
                raise ValueError("format")
            kind = document["kek"]["kind"]
            kdf = KdfParams.from_json(document["kek"]["kdf"]) if kind == "passphrase" else None
            if kind not in _KIND_WORDS:
                raise ValueError("kind")
            wrapped_db = base64.b64decode(document["db_key"], validate=True)
            wrapped_lookup = base64.b64decode(document["lookup_key"], validate=True)
            generation = document.get("kek_generation", CHILD_KEY_VERSION)
            if type(generation) is not int or generation < 1:
                raise ValueError("generation")
        except KeyProblem as problem:  # KDF parameters out of bounds (damaged or hostile)
            raise KeyProblem(
                f"the keyring at {path} is damaged: {problem}",
                hint="restore keyring.json from a backup",
            ) from None
        except (KeyError, TypeError, ValueError, binascii.Error):
            raise KeyProblem(
                f"the keyring at {path} is not a valid childreg keyring (version "
                f"{KEYRING_VERSION})",
                hint="restore keyring.json from a backup",
            ) from None
        if kind != source.kind:
            raise KeyProblem(
                f"the keyring at {path} was made with {_KIND_WORDS[kind]}, "
                f"not {_KIND_WORDS[source.kind]}",
                hint=_KIND_HINTS[kind],
            )
        kek = _kek_for(source, kdf)
        try:
            db_key = kek.unwrap(wrapped_db, _keyring_ad(_DB_KEY_AD, generation))
            lookup_key = kek.unwrap(wrapped_lookup, _keyring_ad(_LOOKUP_KEY_AD, generation))
        except KeyProblem:
            raise KeyProblem(
                f"the KEK does not open the keyring at {path}", hint=_KIND_HINTS[kind]
            ) from None
        return cls(kek, db_key, lookup_key, generation)

    @property
    def db_key(self) -> bytes:
        """The raw 32-byte SQLCipher database key."""
        return self._db_key

    def db_key_hex(self) -> str:
        """The database key as 64 lowercase hex characters (for ``PRAGMA key``)."""
        text = self._db_key.hex()
        if len(text) != 64 or not HEX64.fullmatch(text):
            raise KeyProblem("the database key is malformed")
        return text

    def new_child_key(self, child_id: str) -> tuple[bytes, bytes, int]:
        """A fresh random data key for a child: (key, key wrapped under the KEK, version)."""
        key = secrets.token_bytes(KEY_BYTES)
        version = self._generation
        return key, self._kek.wrap(key, _child_key_ad(child_id, version)), version

    def seal_new_child(
        self, child_id: str, values: Sequence[tuple[str, bytes]]
    ) -> tuple[bytes, int, list[bytes]]:
        """A new child's data key, wrapped, and its first fields sealed under it.

        Returns (wrapped key, version, each (context, plaintext) of ``values`` sealed
        exactly as :meth:`seal` seals it). For a bulk import: the key and every nonce come
        from one read of the OS's random source instead of one read each, and the key
        itself never leaves :func:`node.crypto.aead.seal_under_new_key`.
        """
        version = self._generation
        prefix = _field_ad(child_id, "")  # the associated data of a field is prefix + context
        wrapped, sealed = self._kek.wrap_new_key(
            _child_key_ad(child_id, version),
            [(plaintext, prefix + context.encode("utf-8")) for context, plaintext in values],
        )
        return wrapped, version, sealed

    def child_key(self, child_id: str, version: int, wrapped: bytes) -> bytes:
        """Unwrap a child's data key; KeyProblem if it is not that child's key."""
        return self._kek.unwrap(wrapped, _child_key_ad(child_id, version))

    def seal(self, child_key: bytes, child_id: str, context: str, plaintext: bytes) -> bytes:
        """Encrypt a field of a child under its key, bound to the child and ``context``."""
        try:
            return _seal(child_key, plaintext, _field_ad(child_id, context))
        except (nacl.exceptions.CryptoError, ValueError, TypeError):
            raise KeyProblem("a field cannot be sealed with this child key") from None

    def unseal(self, child_key: bytes, child_id: str, context: str, ciphertext: bytes) -> bytes:
        """Decrypt a field sealed by :meth:`seal`; KeyProblem if tampered with or moved."""
        plaintext = _open(child_key, ciphertext, _field_ad(child_id, context))
        if plaintext is None:
            raise KeyProblem("a sealed field does not open (tampered or moved)")
        return plaintext

    def national_id_hash(self, national_id: str) -> bytes:
        """Keyed BLAKE2b-256 of a national id, to find a child without storing the id."""
        return self._keyed_hash(national_id, _NID_PERSON)

    def pseudonym(self, child_id: str) -> bytes:
        """Keyed BLAKE2b-256 of a child id, to name a child in the audit log."""
        return self._keyed_hash(child_id, _PSEUDONYM_PERSON)

    def noise_secret(self) -> bytes:
        """The node's 32-byte secret for deterministic statistics noise (childreg.dp.prng).

        Derived from the lookup key with its own domain, so it needs no keyring change, and
        the coordinator, which never holds it, cannot predict or remove the noise.
        """
        return self._keyed_hash("statistics-noise", _NOISE_PERSON)

    def audit_signing_seed(self, generation: int | None = None) -> bytes:
        """The 32-byte Ed25519 seed of the node's audit-log signing key (node/audit/log.py).

        Derived from the lookup key with its own domain (and its generation, by default
        the one in use): stable until rotated, recoverable from the keyring and its KEK,
        never stored in the clear.
        """
        return self._signing_seed("audit", "audit-log-signing-key", _AUDIT_PERSON, generation)

    def grant_hash(self, grant: str) -> bytes:
        """Keyed BLAKE2b-256 of a school's grant: the node stores this, never the grant."""
        return self._keyed_hash(grant, _GRANT_PERSON)

    def extract_signing_seed(self, generation: int | None = None) -> bytes:
        """The 32-byte Ed25519 seed of the key that signs extracts (its own domain; by
        default the generation in use)."""
        return self._signing_seed("extract", "extract-signing-key", _EXTRACT_PERSON, generation)

    def masking_key(self) -> PrivateKey:
        """The node's X25519 key for secure-aggregation masks (childreg.secagg.masks).

        Its public half is listed in the signed roster (``childreg node roster-entry``);
        the other nodes agree pairwise mask seeds with it. Derived with its own domain, so
        it is stable for the node's life and never stored in the clear.
        """
        return PrivateKey(self._keyed_hash("secagg-masking-key", _MASKING_PERSON))

    def upload_signing_seed(self, generation: int | None = None) -> bytes:
        """The 32-byte Ed25519 seed of the key that signs masked uploads (its own domain;
        by default the generation in use).

        The coordinator checks each upload against the public key listed in the roster.
        """
        return self._signing_seed("upload", "secagg-upload-signing-key", _UPLOAD_PERSON, generation)

    def search_index_key(self) -> bytes:
        """The 32-byte key of the blind search index's tokens (node/records/search.py).

        Derived from the lookup key with its own domain, so a token of the index cannot be
        told from, or matched against, a national-id hash or a pseudonym.
        """
        return self._keyed_hash("search-index-key", _INDEX_PERSON)

    def _keyed_hash(self, value: str, person: bytes) -> bytes:
        # Standard keyed BLAKE2b (the same function as libsodium's generichash), via
        # hashlib because PyNaCl's wrapper costs several times more per call.
        return hashlib.blake2b(
            value.encode("utf-8"), digest_size=32, key=self._lookup_key, person=person
        ).digest()


@dataclass(frozen=True)
class RewrappedKeyring:
    """A keyring rewrapped under a new KEK (:meth:`Keyring.rewrapped`), not yet written."""

    keyring: Keyring
    kek_json: dict[str, Any]

    def write(self, path: Path, note: dict[str, Any] | None = None) -> None:
        """Write the new keyring to ``path`` atomically (owner only, synced), with an
        operation's ``note`` (public bookkeeping, read back by :func:`keyring_note`)."""
        self.keyring._write(Path(path), self.kek_json, note)


def _document(path: Path) -> dict[str, Any] | None:
    try:
        document = json.loads(Path(path).read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return document if isinstance(document, dict) else None


def keyring_kek_entry(path: Path) -> dict[str, Any]:
    """A keyring file's ``kek`` entry (its kind and KDF parameters, no key), to write
    another keyring under the same KEK; KeyProblem if the file is unreadable."""
    document = _document(path)
    entry = None if document is None else document.get("kek")
    if not isinstance(entry, dict):
        raise KeyProblem(
            f"the keyring at {path} cannot be read", hint="restore keyring.json from a backup"
        )
    return entry


def keyring_note(path: Path) -> dict[str, Any] | None:
    """The ``note`` a keyring file was written with (no key needed), or None."""
    document = _document(path)
    note = None if document is None else document.get("note")
    return note if isinstance(note, dict) else None


def keyring_generation(path: Path) -> int | None:
    """The KEK generation a keyring file claims (no key needed), or None if unreadable."""
    try:
        document = json.loads(Path(path).read_text("utf-8"))
        generation = document.get("kek_generation", CHILD_KEY_VERSION)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return None
    return generation if type(generation) is int and generation >= 1 else None


def _new_kek(source: KekSource, kdf: KdfParams | None) -> tuple[Kek, dict[str, Any]]:
    """The KEK from ``source`` and the keyring's ``kek`` entry describing it."""
    kek_json: dict[str, Any] = {"kind": source.kind}
    if source.kind == "passphrase":
        kdf = kdf or KdfParams.fresh()
        kek_json["kdf"] = kdf.to_json()
    return _kek_for(source, kdf), kek_json


def _keyring_ad(base: bytes, generation: int) -> bytes:
    """A keyring key's associated data: the first generation's is ``base`` alone."""
    if generation == CHILD_KEY_VERSION:
        return base
    return base + b"\0" + str(generation).encode("ascii")


def _child_key_ad(child_id: str, version: int) -> bytes:
    return _CHILD_KEY_TAG + child_id.encode("utf-8") + b"\0" + str(version).encode("ascii")


def _field_ad(child_id: str, context: str) -> bytes:
    return _FIELD_TAG + child_id.encode("utf-8") + b"\0" + context.encode("utf-8")
