"""`childreg extract …`: what a school runs to fetch and open a child's IEP extract.

Why: the school holds a grant from the department and its own X25519 key pair; the node
seals each extract to that key and signs it. ``keygen`` makes the key pair (the private
half owner-only), ``request`` asks the node for the extract with the grant over mutual
TLS and saves the sealed bytes unopened, and ``open`` checks them against the node's
published key (``childreg node extract-key``) before printing anything — refusing one
addressed to another school or expired. The checks live in
``childreg.extract_format``; the format is in docs/extracts.md.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import grpc
import nacl.public
import typer
from rich.console import Console
from rich.table import Table

from childreg.errors import InvalidInput, KeyProblem
from childreg.extract_format import open_extract
from childreg.secretfile import write_private
from childreg.v1 import consent_pb2 as cpb
from childreg.v1 import consent_pb2_grpc as cpb_grpc
from tools.cli.options import IdentityOpt, JsonOpt, ServerNameOpt, TimeoutOpt
from tools.clients.client import EXIT_USAGE, CliError, Endpoint, rpc_failure

app = typer.Typer(
    help="Schools' tools: make a key pair, fetch a child's extract with a grant, open it.",
    no_args_is_help=True,
)
out = Console(highlight=False)

KeyFileOpt = Annotated[
    Path, typer.Option("--key-file", help="The school's extract private key (from keygen).")
]


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


def _node_key(text: str) -> bytes:
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


@app.command()
def keygen(
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the private key.")],
) -> None:
    """Make the school's X25519 key pair; print the public key to send with requests."""
    key = nacl.public.PrivateKey.generate()
    write_private(out_file, base64.b64encode(bytes(key)) + b"\n")
    typer.echo(base64.b64encode(bytes(key.public_key)).decode())


@app.command()
def request(
    grant: Annotated[str, typer.Option(help="The grant the department gave you (cg1_…).")],
    node: Annotated[str, typer.Option(help="The department node's address (host:port).")],
    identity: IdentityOpt,
    key_file: KeyFileOpt,
    out_file: Annotated[Path, typer.Option("--out", help="Where to save the sealed extract.")],
    server_name: ServerNameOpt = None,
    timeout: TimeoutOpt = 30.0,
) -> None:
    """Fetch a child's extract with a grant and save it sealed (open it with `open`)."""
    public = bytes(read_private_key(key_file).public_key)
    endpoint = Endpoint(node, identity, server_name, timeout)
    try:
        with endpoint.channel() as channel:
            stub = cpb_grpc.ExtractServiceStub(channel)
            reply = stub.GetExtract(
                cpb.ExtractRequest(grant=grant.strip(), recipient_key=public), timeout=timeout
            )
    except grpc.RpcError as err:
        raise rpc_failure(err, "extract", node) from None
    out_file.parent.mkdir(parents=True, exist_ok=True)
    write_private(out_file, reply.sealed)  # sealed, but still the school's business only
    typer.echo(f"saved the sealed extract to {out_file} ({len(reply.sealed)} bytes)")


@app.command("open")
def open_cmd(
    file: Annotated[Path, typer.Argument(help="A sealed extract saved by `request`.")],
    key_file: KeyFileOpt,
    node_key: Annotated[str, typer.Option(help="The node's extract key (base64).")],
    audience: Annotated[
        str,
        typer.Option(
            help="Your school's identity (spiffe://…/school/…): an extract addressed to "
            "another school is refused."
        ),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Verify an extract against the node's key and print it (refuses foreign or expired)."""
    try:
        sealed = file.read_bytes()
    except OSError:
        raise InvalidInput(f"cannot read {file}") from None
    body = open_extract(
        sealed, read_private_key(key_file), _node_key(node_key), audience, dt.datetime.now(dt.UTC)
    )
    if as_json:
        typer.echo(json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False))
        return
    out.print(_table(body))


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        parts = [f"{v['domain']}: {v['level']}" if isinstance(v, dict) else str(v) for v in value]
        return "\n".join(parts) if parts else "—"
    return str(value)


def _table(body: dict[str, Any]) -> Table:
    table = Table(title="Verified extract", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key in ("purpose", "audience", "node", "grant_ref", "issued_at", "expires_at"):
        table.add_row(key, _text(body.get(key)))
    for key, value in sorted(body["child"].items()):
        table.add_row(key, _text(value))
    return table
