"""XChaCha20-Poly1305 (IETF) for the node's sealed fields and wrapped keys, at libsodium's speed.

A bulk import seals seven values per child (the wrapped data key, the identity, five
assessment fields). PyNaCl's public ``nacl.bindings`` wrapper checks every argument in
Python and costs about three times the libsodium call underneath (23 µs against 8 µs per
child, measured by ``python -m tools.bench`` profiling), so this module calls the same
libsodium functions through PyNaCl's own cffi module, with the same length checks done
once. The construction, the nonce size and the bytes are exactly libsodium's
``crypto_aead_xchacha20poly1305_ietf_*``; ``tests/unit/test_aead.py`` checks that both
paths give identical ciphertexts and open each other's. If a PyNaCl release moves its
cffi module, the public wrapper is used instead (slower, same bytes). ``make`` compiles
this module with mypyc (node/native.py): the Python around each libsodium call is a
noticeable part of a bulk import.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

import nacl.bindings
import nacl.exceptions

KEY_BYTES: Final = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_KEYBYTES
NONCE_BYTES: Final = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
TAG_BYTES: Final = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_ABYTES

Encrypt = Callable[[bytes, bytes, bytes, bytes], bytes]
Decrypt = Callable[[bytes, bytes, bytes, bytes], bytes]
#: ``seal_each(key, [(plaintext, ad, nonce), ...])``: ``nonce || ciphertext`` of each.
SealEach = Callable[[bytes, Iterable[tuple[bytes, bytes, bytes]]], list[bytes]]

public_encrypt: Final[Encrypt] = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt
public_decrypt: Final[Decrypt] = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt


def _arguments_ok(nonce: bytes, key: bytes) -> bool:
    # libsodium reads exactly NONCE_BYTES and KEY_BYTES from these pointers; cffi itself
    # refuses anything that is not bytes for the other arguments.
    return len(nonce) == NONCE_BYTES and len(key) == KEY_BYTES and type(key) is bytes


def _public_seal_each(key: bytes, items: Iterable[tuple[bytes, bytes, bytes]]) -> list[bytes]:
    return [nonce + public_encrypt(plaintext, ad, nonce, key) for plaintext, ad, nonce in items]


def _direct(ffi: Any, lib: Any) -> tuple[Encrypt, Decrypt, SealEach]:
    """Encrypt and decrypt calling libsodium through ``ffi``/``lib`` (PyNaCl's cffi module)."""
    null = ffi.NULL
    new = ffi.new
    buffer = ffi.buffer
    c_encrypt = lib.crypto_aead_xchacha20poly1305_ietf_encrypt
    c_decrypt = lib.crypto_aead_xchacha20poly1305_ietf_decrypt

    def encrypt(plaintext: bytes, ad: bytes, nonce: bytes, key: bytes) -> bytes:
        if not _arguments_ok(nonce, key):
            return public_encrypt(plaintext, ad, nonce, key)  # raises the library's error
        size = len(plaintext) + TAG_BYTES
        out = new("unsigned char[]", size)
        c_encrypt(out, null, plaintext, len(plaintext), ad, len(ad), null, nonce, key)
        return bytes(buffer(out, size))

    def decrypt(ciphertext: bytes, ad: bytes, nonce: bytes, key: bytes) -> bytes:
        if not _arguments_ok(nonce, key) or len(ciphertext) < TAG_BYTES:
            return public_decrypt(ciphertext, ad, nonce, key)  # raises the library's error
        size = len(ciphertext) - TAG_BYTES
        out = new("unsigned char[]", max(size, 1))
        length = new("unsigned long long *")
        ok = c_decrypt(out, length, null, ciphertext, len(ciphertext), ad, len(ad), nonce, key)
        if ok != 0:
            raise nacl.exceptions.CryptoError("Decryption failed. Ciphertext failed verification")
        return bytes(buffer(out, length[0]))

    def seal_each(key: bytes, items: Iterable[tuple[bytes, bytes, bytes]]) -> list[bytes]:
        # The key is checked once for all the values (a new child's seven seals).
        if len(key) != KEY_BYTES or type(key) is not bytes:
            return _public_seal_each(key, items)  # raises the library's error
        sealed = []
        for plaintext, ad, nonce in items:
            if len(nonce) != NONCE_BYTES:  # the library's error for it
                raise nacl.exceptions.TypeError(
                    f"Nonce must be a {NONCE_BYTES} bytes long bytes sequence"
                )
            size = len(plaintext)
            out = new("unsigned char[]", size + TAG_BYTES)
            c_encrypt(out, null, plaintext, size, ad, len(ad), null, nonce, key)
            sealed.append(nonce + buffer(out)[:])
        return sealed

    return encrypt, decrypt, seal_each


def _load() -> tuple[Encrypt, Decrypt, SealEach, bool]:
    try:
        sodium = importlib.import_module("nacl._sodium")  # PyNaCl's cffi module (not public)
        encrypt, decrypt, seal_each = _direct(sodium.ffi, sodium.lib)
    except (ImportError, AttributeError):  # pragma: no cover - depends on the PyNaCl release
        return public_encrypt, public_decrypt, _public_seal_each, False
    return encrypt, decrypt, seal_each, True


#: ``encrypt(plaintext, ad, nonce, key)`` and ``decrypt(ciphertext, ad, nonce, key)``, with
#: the signatures and errors of ``nacl.bindings.crypto_aead_xchacha20poly1305_ietf_*``;
#: ``seal_each(key, items)`` the ``nonce || ciphertext`` of each (plaintext, ad, nonce).
encrypt: Encrypt
decrypt: Decrypt
seal_each: SealEach
DIRECT: bool
encrypt, decrypt, seal_each, DIRECT = _load()


def seal_under_new_key(
    wrapping_key: bytes, key_ad: bytes, items: Sequence[tuple[bytes, bytes]]
) -> tuple[bytes, list[bytes]]:
    """A new random key, wrapped under ``wrapping_key`` with associated data ``key_ad``,
    and each (plaintext, ad) of ``items`` sealed under it: the ``nonce || ciphertext`` of
    each, exactly as :data:`seal_each` seals. The key and every nonce come from one read of
    the OS's random source; the key itself never leaves this function."""
    fresh = os.urandom(KEY_BYTES + NONCE_BYTES * (len(items) + 1))
    key = fresh[:KEY_BYTES]
    nonces = [fresh[at : at + NONCE_BYTES] for at in range(KEY_BYTES, len(fresh), NONCE_BYTES)]
    (wrapped,) = seal_each(wrapping_key, [(key, key_ad, nonces[0])])
    sealed = seal_each(
        key,
        [(plaintext, ad, nonce) for (plaintext, ad), nonce in zip(items, nonces[1:], strict=True)],
    )
    return wrapped, sealed
