"""A school's side of a child's IEP extract: its key pair, the request, opening the file.

Why: the school holds a grant from the department and its own X25519 key pair; the node
seals each extract to that key and signs it. The private half is written owner-only, the
request sends the grant over mutual TLS and keeps the sealed bytes unopened, and opening
checks them against the node's published key (``childreg node extract-key``) before
anything is shown — refusing one addressed to another school or expired. The checks live
in ``childreg.extract_format``; the format is in docs/extracts.md.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from pathlib import Path
from typing import Any

import nacl.public
from rich.table import Table

from childreg.errors import InvalidInput, KeyProblem
from childreg.extract_format import open_extract
from childreg.secretfile import write_private
from childreg.v1 import consent_pb2 as cpb
from childreg.v1 import consent_pb2_grpc as cpb_grpc
from tools.clients.client import EXIT_USAGE, CliError, Endpoint, call


def keygen(out_file: Path) -> str:
    """Write a new X25519 private key to ``out_file`` (0600); its public key in base64."""
    key = nacl.public.PrivateKey.generate()
    write_private(out_file, base64.b64encode(bytes(key)) + b"\n")
    return base64.b64encode(bytes(key.public_key)).decode()


def read_private_key(path: Path) -> nacl.public.PrivateKey:
    """The school's X25519 private key from a keygen file (base64 of 32 bytes)."""
    try:
        raw = base64.b64decode(path.read_text(encoding="ascii").strip(), validate=True)
    except FileNotFoundError:
        raise KeyProblem(
            f"no key file at {path}", hint="make one with `childreg extract keygen`"
        ) from None
    except (OSError, UnicodeDecodeError, binascii.Error, ValueError):
        raise KeyProblem(f"{path} is not an extract key file") from None
    if len(raw) != 32:
        raise KeyProblem(f"{path} is not an extract key file")
    return nacl.public.PrivateKey(raw)


def node_key(text: str) -> bytes:
    """The node's extract signing key from its base64 text (a usage error if malformed)."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise CliError(
            "--node-key must be the node's extract key: base64 of 32 bytes",
            code=EXIT_USAGE,
            hint="the department publishes it (`childreg node extract-key`)",
        )
    return raw


def request_extract(endpoint: Endpoint, grant: str, key_file: Path, out_file: Path) -> int:
    """Fetch the extract a grant allows, sealed to our key; save it unopened (owner-only).

    Returns the number of bytes saved.
    """
    public = bytes(read_private_key(key_file).public_key)
    with endpoint.channel() as channel:
        stub = cpb_grpc.ExtractServiceStub(channel)
        request = cpb.ExtractRequest(grant=grant.strip(), recipient_key=public)
        reply = call(endpoint, "extract", stub.GetExtract, request)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    write_private(out_file, reply.sealed)  # sealed, but still the school's business only
    return len(reply.sealed)


def open_file(file: Path, key_file: Path, node_key_text: str, audience: str) -> dict[str, Any]:
    """A saved extract, verified against the node's key and opened (refuses foreign or
    expired ones)."""
    try:
        sealed = file.read_bytes()
    except OSError:
        raise InvalidInput(f"cannot read {file}") from None
    return open_extract(
        sealed,
        read_private_key(key_file),
        node_key(node_key_text),
        audience,
        dt.datetime.now(dt.UTC),
    )


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        parts = [f"{v['domain']}: {v['level']}" if isinstance(v, dict) else str(v) for v in value]
        return "\n".join(parts) if parts else "—"
    return str(value)


def extract_table(body: dict[str, Any]) -> Table:
    """An opened extract as a table for a person."""
    table = Table(title="Verified extract", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key in ("purpose", "audience", "node", "grant_ref", "issued_at", "expires_at"):
        table.add_row(key, _text(body.get(key)))
    for key, value in sorted(body["child"].items()):
        table.add_row(key, _text(value))
    return table
