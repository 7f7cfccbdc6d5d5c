"""`childreg stats roster …`: sign, show and check the secure-aggregation roster.

Secure aggregation (docs/secure-aggregation.md) needs every node and the coordinator to
agree on who takes part and on each department's masking and upload keys. The statistics
authority collects each department's `childreg node roster-entry` output into a roster file,
signs it offline with the same key as the catalogue, and gives the signed file to the
coordinator; nodes check it on every round against their pinned ``authority.pub``. The
commands are a few lines over :mod:`childreg.secagg.roster` and :mod:`tools.clients.authority`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from childreg.catalogue import load_verify_key
from childreg.secagg.roster import read_signed_roster
from childreg.signed import key_id
from tools.cli.catalogue import AuthorityOpt, FederationOpt, SecretKeyOpt, SignedOutOpt
from tools.cli.console import err, out
from tools.cli.options import JsonOpt
from tools.clients import authority as auth

app = typer.Typer(
    help="The signed secure-aggregation roster: which departments take part, with their keys.",
    no_args_is_help=True,
)

SignedRosterArg = Annotated[
    Path, typer.Argument(help="The signed roster file (roster.signed.json).", dir_okay=False)
]


@app.command()
def sign(
    source: Annotated[
        Path, typer.Argument(help="The authored roster (.toml, .yaml or .yml).", dir_okay=False)
    ],
    key: SecretKeyOpt,
    out_file: SignedOutOpt,
) -> None:
    """Validate a roster and sign it with the statistics authority's key (deterministic)."""
    roster, signer = auth.sign_roster_file(source, key, out_file)
    err.print(
        f"signed roster {roster.federation} version {roster.version} for snapshots "
        f"{roster.first_snapshot} to {roster.last_snapshot}: "
        f"{len(roster.members)} departments, {roster.colluders} assumed colluding; "
        f"key id {signer}; wrote {out_file}",
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
    with auth.cli_errors("roster", auth.ROSTER_DOC):
        roster = read_signed_roster(file, load_verify_key(authority), federation=federation)
    if as_json:
        typer.echo(json.dumps(roster.canonical_object(), indent=2))  # what was signed
        return
    out.print(auth.roster_table(roster))


@app.command()
def verify(
    file: SignedRosterArg,
    authority: AuthorityOpt,
    federation: FederationOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a signed roster's signature and content; exit 0 only if it is valid."""
    with auth.cli_errors("roster", auth.ROSTER_DOC):
        verify_key = load_verify_key(authority)
        roster = read_signed_roster(file, verify_key, federation=federation)
    summary = auth.roster_validity(roster, key_id(verify_key))
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(
        f"valid: roster {roster.federation} version {roster.version} for snapshots "
        f"{roster.first_snapshot} to {roster.last_snapshot}, {len(roster.members)} "
        f"departments, {roster.colluders} assumed colluding, signed by key id "
        f"{summary['key_id']}"
    )
