"""The extract format (docs/extracts.md) opened by a program that knows only the document.

``standalone_open`` below uses nothing but PyNaCl, json and base64, as another school
system would; it and ``childreg.extract_format.open_extract`` must both accept a real
extract and refuse a damaged, re-sealed, foreign, expired or wrongly signed one.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.public
import nacl.signing
import pytest
from typer.testing import CliRunner

from childreg.errors import ChildregError, InvalidInput, PermissionDenied
from childreg.extract_format import open_extract
from node.consent.extract import extract_verify_key
from node.crypto.keys import Keyring
from node.store.base import RecordStore
from tests.unit.node.consent.test_extract import NOW, OTHER_SCHOOL, SCHOOL, Node
from tools.cli import extract as cli_extract
from tools.clients.school import read_private_key


def standalone_open(
    sealed: bytes, private_key: bytes, node_key_b64: str, audience: str, now_rfc3339: str
) -> dict[str, Any]:
    """Open and verify an extract from the documented format alone (no childreg code)."""
    box = nacl.public.SealedBox(nacl.public.PrivateKey(private_key))
    envelope = json.loads(box.decrypt(sealed))
    node_key = base64.b64decode(node_key_b64)
    if base64.b64decode(envelope["signer"]) != node_key:
        raise ValueError("not signed by the node's key")
    payload = envelope["payload"].encode("utf-8")
    signature = base64.b64decode(envelope["signature"])
    nacl.signing.VerifyKey(node_key).verify(b"childreg-extract-v1\n" + payload, signature)
    body: dict[str, Any] = json.loads(payload)
    own_public = base64.b64encode(bytes(nacl.public.PrivateKey(private_key).public_key))
    if body["type"] != "childreg.extract" or body["v"] != 1:
        raise ValueError("not an extract")
    if body["recipient_key"] != own_public.decode() or body["audience"] != audience:
        raise ValueError("not for us")
    if now_rfc3339 > body["expires_at"]:
        raise ValueError("expired")
    return body


@pytest.fixture
def node(store: RecordStore, keyring: Keyring) -> Node:
    return Node(store, keyring)


def _sealed(node: Node) -> bytes:
    return node.desk.extract(node.grant, node.public, SCHOOL)[0]


def _node_key_b64(node: Node) -> str:
    return base64.b64encode(extract_verify_key(node.keyring)).decode()


def test_a_standalone_program_opens_and_verifies_an_extract(node: Node) -> None:
    """A program knowing only the documented format opens and verifies a real extract, with the same
    content open_extract gives."""
    sealed = _sealed(node)
    body = standalone_open(
        sealed, bytes(node.school_key), _node_key_b64(node), SCHOOL, "2024-10-01T12:00:00Z"
    )
    verify_key = extract_verify_key(node.keyring)
    assert body == open_extract(sealed, node.school_key, verify_key, SCHOOL, NOW)
    assert body["child"]["given_name"] == "Aysel"


def test_flipping_any_byte_makes_opening_fail(node: Node) -> None:
    """A flipped bit at any sampled byte of a sealed extract makes both the standalone program and
    open_extract refuse it."""
    sealed = _sealed(node)
    positions = sorted(
        {0, 1, 31, 32, 33, 47, 48, len(sealed) // 2, len(sealed) - 1}
        | set(range(0, len(sealed), max(1, len(sealed) // 40)))
    )
    verify_key = extract_verify_key(node.keyring)
    for at in positions:
        for flip in (0x01, 0x80):
            damaged = bytearray(sealed)
            damaged[at] ^= flip
            with pytest.raises((nacl.exceptions.CryptoError, ValueError)):
                standalone_open(
                    bytes(damaged),
                    bytes(node.school_key),
                    _node_key_b64(node),
                    SCHOOL,
                    "2024-10-01T12:00:00Z",
                )
            with pytest.raises(PermissionDenied):
                open_extract(bytes(damaged), node.school_key, verify_key, SCHOOL, NOW)


def _envelope(node: Node) -> dict[str, Any]:
    opened: dict[str, Any] = json.loads(
        nacl.public.SealedBox(node.school_key).decrypt(_sealed(node))
    )
    return opened


def _seal(envelope: dict[str, Any], to: nacl.public.PublicKey) -> bytes:
    return nacl.public.SealedBox(to).encrypt(json.dumps(envelope).encode())


def test_an_altered_payload_fails_the_signature(node: Node) -> None:
    """A payload changed inside a resealed envelope fails the node's signature."""
    envelope = _envelope(node)
    envelope["payload"] = envelope["payload"].replace("Aysel", "Aysal")
    with pytest.raises(PermissionDenied, match="signature"):
        open_extract(
            _seal(envelope, node.school_key.public_key),
            node.school_key,
            extract_verify_key(node.keyring),
            SCHOOL,
            NOW,
        )


def test_an_extract_resealed_to_another_school_is_refused(node: Node) -> None:
    """An envelope resealed to another school's key is refused as meant for another recipient, by
    open_extract and by the standalone program."""
    other = nacl.public.PrivateKey.generate()
    resealed = _seal(_envelope(node), other.public_key)
    with pytest.raises(PermissionDenied, match="another recipient"):
        open_extract(resealed, other, extract_verify_key(node.keyring), None, NOW)
    with pytest.raises(ValueError, match="not for us"):
        standalone_open(resealed, bytes(other), _node_key_b64(node), SCHOOL, "2024-10-01T12:00:00Z")


def test_another_recipient_cannot_unseal(node: Node) -> None:
    """A key other than the school's cannot unseal the extract."""
    with pytest.raises(PermissionDenied, match="cannot be opened"):
        open_extract(
            _sealed(node),
            nacl.public.PrivateKey.generate(),
            extract_verify_key(node.keyring),
            SCHOOL,
            NOW,
        )


def test_another_audience_is_refused(node: Node) -> None:
    """An extract for one school is refused when opened for another audience."""
    with pytest.raises(PermissionDenied, match="another school"):
        open_extract(
            _sealed(node), node.school_key, extract_verify_key(node.keyring), OTHER_SCHOOL, NOW
        )


def test_an_expired_extract_is_refused(node: Node) -> None:
    """An extract opens up to its last second of validity and is refused one second later."""
    sealed = _sealed(node)
    key = extract_verify_key(node.keyring)
    last = dt.datetime(2025, 6, 30, 23, 59, 59, tzinfo=dt.UTC)
    assert open_extract(sealed, node.school_key, key, SCHOOL, last)
    with pytest.raises(PermissionDenied, match="expired"):
        open_extract(sealed, node.school_key, key, SCHOOL, last + dt.timedelta(seconds=1))


def test_a_wrong_signer_is_refused(node: Node) -> None:
    """An extract checked against another key, or re-signed by a forger with its own key, is refused
    by the pinned node key."""
    sealed = _sealed(node)
    impostor = bytes(nacl.signing.SigningKey.generate().verify_key)
    with pytest.raises(PermissionDenied, match="pinned"):
        open_extract(sealed, node.school_key, impostor, SCHOOL, NOW)
    # An impostor signing its own extract with its own key is refused by the pinned key too.
    envelope = _envelope(node)
    forger = nacl.signing.SigningKey.generate()
    payload = envelope["payload"].encode()
    envelope["signature"] = base64.b64encode(
        forger.sign(b"childreg-extract-v1\n" + payload).signature
    ).decode()
    envelope["signer"] = base64.b64encode(bytes(forger.verify_key)).decode()
    with pytest.raises(PermissionDenied, match="pinned"):
        open_extract(
            _seal(envelope, node.school_key.public_key),
            node.school_key,
            extract_verify_key(node.keyring),
            SCHOOL,
            NOW,
        )


@pytest.mark.parametrize("junk", [b"", b"x" * 10, b"\x00" * 200])
def test_junk_is_refused_with_defined_errors(node: Node, junk: bytes) -> None:
    """Junk, sealed or not, is refused with childreg's own errors, as invalid input once it is
    unsealed."""
    with pytest.raises(ChildregError):
        open_extract(junk, node.school_key, extract_verify_key(node.keyring), SCHOOL, NOW)
    not_json = nacl.public.SealedBox(node.school_key.public_key).encrypt(b"\xff" + junk)
    with pytest.raises(InvalidInput):
        open_extract(not_json, node.school_key, extract_verify_key(node.keyring), SCHOOL, NOW)


def test_the_documented_snippet_opens_an_extract(node: Node) -> None:
    """The Python in docs/extracts.md works as printed (up to its file-reading lines)."""
    doc = (Path(__file__).resolve().parents[3] / "docs" / "extracts.md").read_text("utf-8")
    code = doc.split("```python\n", 1)[1].split("# The key file", 1)[0]
    namespace: dict[str, Any] = {}
    node.grant = node.consent(valid_until=dt.date(2099, 12, 31))  # the snippet uses real time
    exec(compile(code, "docs/extracts.md", "exec"), namespace)
    child = namespace["open_extract"](
        _sealed(node), bytes(node.school_key), _node_key_b64(node), SCHOOL
    )
    assert child["given_name"] == "Aysel"


def test_cli_keygen_and_open(node: Node, tmp_path: Path) -> None:
    """The extract CLI's keygen writes a 0600 key and prints its public key, and its open shows the
    extract as JSON or a table, only to the addressed school."""
    runner = CliRunner()
    key_file = tmp_path / "school.key"
    made = runner.invoke(cli_extract.app, ["keygen", "--out", str(key_file)])
    assert made.exit_code == 0, made.output
    assert key_file.stat().st_mode & 0o777 == 0o600
    key = read_private_key(key_file)
    assert made.output.strip() == base64.b64encode(bytes(key.public_key)).decode()
    node.school_key = key
    node.grant = node.consent(valid_until=dt.date(2099, 12, 31))  # `open` uses real time
    sealed_file = tmp_path / "extract.sealed"
    sealed_file.write_bytes(_sealed(node))
    common = ["open", str(sealed_file), "--key-file", str(key_file)]
    common += ["--node-key", _node_key_b64(node)]
    shown = runner.invoke(cli_extract.app, [*common, "--audience", SCHOOL, "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["child"]["given_name"] == "Aysel"
    table = runner.invoke(cli_extract.app, [*common, "--audience", SCHOOL])
    assert table.exit_code == 0
    assert "Aysel" in table.output
    unaddressed = runner.invoke(cli_extract.app, common)  # --audience is required
    assert unaddressed.exit_code == 2
    foreign = runner.invoke(cli_extract.app, [*common, "--audience", OTHER_SCHOOL])
    assert isinstance(foreign.exception, PermissionDenied)
