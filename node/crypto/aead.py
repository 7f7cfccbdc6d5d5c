"""XChaCha20-Poly1305 (IETF) for the node's sealed fields and wrapped keys.

One module so that every seal at the node — a child's wrapped data key, the identity, the
sealed assessment fields — uses the same construction, nonce size and associated-data
rules: libsodium's ``crypto_aead_xchacha20poly1305_ietf_*`` through PyNaCl's public
``nacl.bindings``. Nonces are random (24 bytes, so random nonces never collide in
practice) and stored in front of each ciphertext.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Final

import nacl.bindings

KEY_BYTES: Final = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_KEYBYTES
NONCE_BYTES: Final = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
TAG_BYTES: Final = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_ABYTES

#: ``encrypt(plaintext, ad, nonce, key)`` and ``decrypt(ciphertext, ad, nonce, key)``.
encrypt: Final = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt
decrypt: Final = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt


def seal_each(key: bytes, items: Iterable[tuple[bytes, bytes, bytes]]) -> list[bytes]:
    """The ``nonce || ciphertext`` of each (plaintext, ad, nonce) of ``items`` under ``key``."""
    return [nonce + encrypt(plaintext, ad, nonce, key) for plaintext, ad, nonce in items]


def seal_under_new_key(
    wrapping_key: bytes, key_ad: bytes, items: Sequence[tuple[bytes, bytes]]
) -> tuple[bytes, list[bytes]]:
    """A new random key, wrapped under ``wrapping_key`` with associated data ``key_ad``,
    and each (plaintext, ad) of ``items`` sealed under it: the ``nonce || ciphertext`` of
    each, exactly as :func:`seal_each` seals. The key and every nonce come from one read of
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
