"""node.crypto.aead seals with libsodium's XChaCha20-Poly1305 through PyNaCl's public bindings."""

from __future__ import annotations

import os

import nacl.bindings
import nacl.exceptions
import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.crypto import aead

KEY = st.binary(min_size=32, max_size=32)
NONCE = st.binary(min_size=24, max_size=24)


@given(st.binary(max_size=2048), st.binary(max_size=256), NONCE, KEY)
def test_same_bytes_as_the_public_binding_and_each_opens_the_other(
    plaintext: bytes, ad: bytes, nonce: bytes, key: bytes
) -> None:
    """Sealing gives the same bytes as PyNaCl's public XChaCha20-Poly1305 binding, and each
    opens what the other sealed."""
    ours = aead.encrypt(plaintext, ad, nonce, key)
    theirs = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, ad, nonce, key)
    assert ours == theirs
    assert aead.decrypt(theirs, ad, nonce, key) == plaintext
    assert nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(ours, ad, nonce, key) == (
        plaintext
    )


@given(st.binary(min_size=1, max_size=300), st.data())
def test_any_flipped_bit_or_other_context_fails(plaintext: bytes, data: st.DataObject) -> None:
    """A flipped bit, other associated data or another key makes opening fail with CryptoError."""
    key, nonce = os.urandom(32), os.urandom(24)
    sealed = aead.encrypt(plaintext, b"ad", nonce, key)
    bit = data.draw(st.integers(0, len(sealed) * 8 - 1))
    flipped = bytearray(sealed)
    flipped[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(nacl.exceptions.CryptoError):
        aead.decrypt(bytes(flipped), b"ad", nonce, key)
    with pytest.raises(nacl.exceptions.CryptoError):
        aead.decrypt(sealed, b"other", nonce, key)
    with pytest.raises(nacl.exceptions.CryptoError):
        aead.decrypt(sealed, b"ad", nonce, os.urandom(32))


@pytest.mark.parametrize(
    ("nonce", "key"),
    [(b"n" * 23, b"k" * 32), (b"n" * 25, b"k" * 32), (b"n" * 24, b"k" * 31), (b"n" * 24, b"")],
)
def test_wrong_key_or_nonce_lengths_raise_like_the_public_binding(nonce: bytes, key: bytes) -> None:
    """Keys or nonces of the wrong length raise TypeError, as the public binding does."""
    public = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt
    with pytest.raises(nacl.exceptions.TypeError):
        public(b"x", b"", nonce, key)
    with pytest.raises(nacl.exceptions.TypeError):
        aead.encrypt(b"x", b"", nonce, key)
    with pytest.raises(nacl.exceptions.TypeError):
        aead.decrypt(b"x" * 20, b"", nonce, key)


@pytest.mark.parametrize("size", [0, 1, 15])
def test_ciphertexts_shorter_than_a_tag_do_not_open_and_do_not_crash(size: int) -> None:
    """A ciphertext shorter than the tag is refused with an error, never a crash."""
    with pytest.raises((nacl.exceptions.CryptoError, ValueError)):
        aead.decrypt(b"\0" * size, b"", b"n" * 24, b"k" * 32)


def test_empty_plaintext_round_trips() -> None:
    """An empty plaintext seals to just the tag and opens to empty bytes."""
    key, nonce = os.urandom(32), os.urandom(24)
    sealed = aead.encrypt(b"", b"ad", nonce, key)
    assert len(sealed) == aead.TAG_BYTES
    assert aead.decrypt(sealed, b"ad", nonce, key) == b""


@given(key=KEY, items=st.lists(st.tuples(st.binary(max_size=600), st.binary(max_size=64), NONCE)))
def test_seal_each_is_nonce_then_the_public_bindings_ciphertext(
    key: bytes, items: list[tuple[bytes, bytes, bytes]]
) -> None:
    """seal_each gives, per item, its nonce followed by the public binding's ciphertext."""
    public = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt
    assert aead.seal_each(key, items) == [
        nonce + public(plaintext, ad, nonce, key) for plaintext, ad, nonce in items
    ]


@pytest.mark.parametrize(
    ("nonce", "key"),
    [(b"n" * 23, b"k" * 32), (b"n" * 25, b"k" * 32), (b"n" * 24, b"k" * 31), (b"n" * 24, b"")],
)
def test_seal_each_refuses_wrong_key_or_nonce_lengths(nonce: bytes, key: bytes) -> None:
    """seal_each refuses a wrong key or nonce length in any item with TypeError."""
    good = (b"first", b"", b"n" * 24)
    with pytest.raises(nacl.exceptions.TypeError):
        aead.seal_each(key, [good, (b"x", b"", nonce)])
