"""Tests of a keyring's rewrapping under a new KEK (node/crypto/keys.py, for KEK rotation)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from childreg.errors import KeyProblem
from node.crypto.keys import KdfParams, KekSource, Keyring, generate_key_file, keyring_generation

FAST_KDF = KdfParams(salt=b"s" * 16, opslimit=1, memlimit=8192)


@pytest.fixture
def kek_files(tmp_path: Path) -> tuple[KekSource, KekSource]:
    """Two fresh key files: the node's KEK and a new one."""
    paths = tmp_path / "old.key", tmp_path / "new.key"
    for path in paths:
        generate_key_file(path)
    return KekSource.from_key_file(paths[0]), KekSource.from_key_file(paths[1])


def test_a_rewrapped_keyring_keeps_its_keys_under_the_new_kek_only(
    tmp_path: Path, kek_files: tuple[KekSource, KekSource]
) -> None:
    """The rewrapped keyring holds the same database and lookup keys, is one generation on,
    opens with the new KEK and not with the old one."""
    old_kek, new_kek = kek_files
    keyring = Keyring.create(tmp_path / "keyring.json", old_kek)
    keyring.rewrapped(new_kek).write(tmp_path / "next.json")
    opened = Keyring.open(tmp_path / "next.json", new_kek)
    assert (opened.generation, keyring.generation) == (2, 1)
    assert opened.db_key == keyring.db_key
    assert opened.pseudonym("C1") == keyring.pseudonym("C1")
    assert keyring_generation(tmp_path / "next.json") == 2
    with pytest.raises(KeyProblem, match="does not open"):
        Keyring.open(tmp_path / "next.json", old_kek)


def test_a_child_key_rewrapped_opens_with_the_new_keyring_only(
    tmp_path: Path, kek_files: tuple[KekSource, KekSource]
) -> None:
    """A child's key rewrapped under the new keyring is the same key, at the new generation,
    and the old keyring cannot unwrap it; new children get the keyring's generation."""
    old_kek, new_kek = kek_files
    old = Keyring.create(tmp_path / "keyring.json", old_kek)
    new = old.rewrapped(new_kek).keyring
    key, wrapped, version = old.new_child_key("C1")
    rewrapped, new_version = old.rewrap_child_key("C1", version, wrapped, new)
    assert (version, new_version) == (1, 2)
    assert new.child_key("C1", new_version, rewrapped) == key
    with pytest.raises(KeyProblem):
        old.child_key("C1", new_version, rewrapped)
    with pytest.raises(KeyProblem):
        new.child_key("C2", new_version, rewrapped)  # bound to its child
    assert new.new_child_key("C3")[2] == 2
    assert new.seal_new_child("C4", [("identity", b"x")])[1] == 2


def test_the_generation_is_bound_to_the_wrapped_keys(
    tmp_path: Path, kek_files: tuple[KekSource, KekSource]
) -> None:
    """Editing a rotated keyring's generation makes it not open (the generation is in the
    associated data of its wrapped keys)."""
    old_kek, new_kek = kek_files
    old = Keyring.create(tmp_path / "keyring.json", old_kek)
    old.rewrapped(new_kek).write(tmp_path / "next.json")
    document = json.loads((tmp_path / "next.json").read_text())
    document["kek_generation"] = 3
    (tmp_path / "next.json").write_text(json.dumps(document))
    with pytest.raises(KeyProblem, match="does not open"):
        Keyring.open(tmp_path / "next.json", new_kek)


def test_rewrapping_under_the_same_kek_is_refused(
    tmp_path: Path, kek_files: tuple[KekSource, KekSource]
) -> None:
    """The KEK in use given as the new one is refused with what to do instead."""
    old_kek, _ = kek_files
    keyring = Keyring.create(tmp_path / "keyring.json", old_kek)
    with pytest.raises(KeyProblem) as refused:
        keyring.rewrapped(old_kek)
    assert "keygen" in refused.value.hint


def test_a_passphrase_keyring_rewraps_under_a_key_file(
    tmp_path: Path, kek_files: tuple[KekSource, KekSource]
) -> None:
    """A keyring made with a passphrase rewraps under a key file, which then opens it."""
    _, new_kek = kek_files
    old = Keyring.create(tmp_path / "keyring.json", KekSource.from_passphrase("pw"), kdf=FAST_KDF)
    old.rewrapped(new_kek).write(tmp_path / "next.json")
    assert Keyring.open(tmp_path / "next.json", new_kek).db_key == old.db_key
