"""`childreg extract …`: what a school runs to fetch and open a child's IEP extract.

``keygen`` makes the school's key pair, ``request`` asks the node for the extract with
the grant and saves it sealed, ``open`` verifies and prints it. The commands are a few
lines over :mod:`tools.clients.school`; the format is in docs/extracts.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from tools.cli.console import out
from tools.cli.options import IdentityOpt, JsonOpt, ServerNameOpt, TimeoutOpt
from tools.clients import school
from tools.clients.client import Endpoint

# Re-exported: tests/unit/childreg/test_extract_format.py reads a key through this module.

app = typer.Typer(
    help="Schools' tools: make a key pair, fetch a child's extract with a grant, open it.",
    no_args_is_help=True,
)

KeyFileOpt = Annotated[
    Path, typer.Option("--key-file", help="The school's extract private key (from keygen).")
]


@app.command()
def keygen(
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the private key.")],
) -> None:
    """Make the school's X25519 key pair; print the public key to send with requests."""
    typer.echo(school.keygen(out_file))


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
    endpoint = Endpoint(node, identity, server_name, timeout)
    size = school.request_extract(endpoint, grant, key_file, out_file)
    typer.echo(f"saved the sealed extract to {out_file} ({size} bytes)")


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
    body = school.open_file(file, key_file, node_key, audience)
    if as_json:
        typer.echo(json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False))
        return
    out.print(school.extract_table(body))
