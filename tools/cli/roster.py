"""`childreg stats roster …`: sign, show and check the secure-aggregation roster.

Secure aggregation (docs/secure-aggregation.md) needs every node and the coordinator to
agree on who takes part and on each department's masking and upload keys. The statistics
authority collects each department's `childreg node roster-entry` output into a roster file,
signs it offline with the same key as the catalogue, and gives the signed file to the
coordinator; nodes check it on every round against their pinned ``authority.pub``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from childreg.catalogue import AUTHORITY_KEY, load_signing_key, load_verify_key
from childreg.secagg.roster import (
    load_roster,
    read_signed_roster,
    sign_roster,
    verify_roster,
)
from childreg.signed import key_id
from tools.cli.catalogue import AuthorityOpt, FederationOpt, cli_errors, write_signed
from tools.cli.options import JsonOpt

app = typer.Typer(
    help="The signed secure-aggregation roster: which departments take part, with their keys.",
    no_args_is_help=True,
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)
DOC = "docs/secure-aggregation.md"

SignedRosterArg = Annotated[
    Path, typer.Argument(help="The signed roster file (roster.signed.json).", dir_okay=False)
]


@app.command()
def sign(
    source: Annotated[
        Path, typer.Argument(help="The authored roster (.toml, .yaml or .yml).", dir_okay=False)
    ],
    key: Annotated[
        Path, typer.Option("--key", help=f"The authority's secret key ({AUTHORITY_KEY}).")
    ],
    out_file: Annotated[
        Path, typer.Option("--out", help="Where to write the signed file.", dir_okay=False)
    ],
) -> None:
    """Validate a roster and sign it with the statistics authority's key (deterministic)."""
    with cli_errors("sign", DOC):
        roster = load_roster(source)
        signing_key = load_signing_key(key)
        blob = sign_roster(roster, signing_key)
        verify_roster(blob, signing_key.verify_key)  # what we ship must verify
    write_signed(out_file, blob)
    err.print(
        f"signed roster {roster.federation} version {roster.version} for snapshots "
        f"{roster.first_snapshot} to {roster.last_snapshot}: "
        f"{len(roster.members)} departments, {roster.colluders} assumed colluding; "
        f"key id {key_id(signing_key.verify_key)}; wrote {out_file}",
        markup=False,
    )


@app.command()
def show(
    file: SignedRosterArg,
    authority: AuthorityOpt,
    federation: FederationOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Verify a signed roster, then list its departments and their keys."""
    with cli_errors("roster", DOC):
        roster = read_signed_roster(file, load_verify_key(authority), federation=federation)
    if as_json:
        typer.echo(json.dumps(roster.canonical_object(), indent=2))  # what was signed
        return
    table = Table(
        title=f"roster of {roster.federation}, version {roster.version}, snapshots "
        f"{roster.first_snapshot} to {roster.last_snapshot}"
    )
    for column in ("department", "masking key (X25519)", "upload key (Ed25519)"):
        table.add_column(column, overflow="fold")
    for m in roster.members:
        table.add_row(m.department, m.masking_key, m.upload_key)
    table.caption = (
        f"{len(roster.members)} departments; each round assumes up to {roster.colluders} of "
        "them collude with the coordinator, so each adds noise of variance σ²/(n−c)."
    )
    out.print(table)


@app.command()
def verify(
    file: SignedRosterArg,
    authority: AuthorityOpt,
    federation: FederationOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a signed roster's signature and content; exit 0 only if it is valid."""
    with cli_errors("roster", DOC):
        verify_key = load_verify_key(authority)
        roster = read_signed_roster(file, verify_key, federation=federation)
    summary = {
        "valid": True,
        "federation": roster.federation,
        "version": roster.version,
        "first_snapshot": roster.first_snapshot,
        "last_snapshot": roster.last_snapshot,
        "members": len(roster.members),
        "colluders": roster.colluders,
        "key_id": key_id(verify_key),
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(
        f"valid: roster {roster.federation} version {roster.version} for snapshots "
        f"{roster.first_snapshot} to {roster.last_snapshot}, {len(roster.members)} "
        f"departments, {roster.colluders} assumed colluding, signed by key id "
        f"{summary['key_id']}"
    )
