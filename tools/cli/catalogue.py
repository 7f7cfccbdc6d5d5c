"""`childreg stats catalogue …`: make, sign, show and check the signed table catalogue.

The statistics authority runs `authority-init` once and `sign` for every new version, on
an offline machine; statisticians and operators run `show` and `verify` against the
pinned ``authority.pub`` to see which tables may be asked for and what each costs of the
snapshot's privacy budget. The commands are a few lines over :mod:`childreg.catalogue`
and :mod:`tools.clients.authority`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from childreg.catalogue import AUTHORITY_KEY, load_verify_key, read_signed_catalogue
from childreg.signed import key_id
from tools.cli.console import err, out
from tools.cli.options import JsonOpt
from tools.clients import authority as auth

app = typer.Typer(
    help="The signed table catalogue: which tables may be asked for, and what each costs.",
    no_args_is_help=True,
)

AuthorityOpt = Annotated[
    str,
    typer.Option(
        "--authority",
        help="The statistics authority's public key: its authority.pub file, or the text "
        "ed25519:<base64>.",
    ),
]
FederationOpt = Annotated[
    str | None,
    typer.Option(help="Also require the catalogue to be for this federation, e.g. az.childreg."),
]
SignedFileArg = Annotated[
    Path, typer.Argument(help="The signed catalogue file (catalogue.signed.json).", dir_okay=False)
]
SecretKeyOpt = Annotated[
    Path, typer.Option("--key", help=f"The authority's secret key ({AUTHORITY_KEY}).")
]
SignedOutOpt = Annotated[
    Path, typer.Option("--out", help="Where to write the signed file.", dir_okay=False)
]


@app.command("authority-init")
def authority_init(
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out", file_okay=False, help="Directory for authority.key and authority.pub."
        ),
    ],
) -> None:
    """Make the statistics authority's Ed25519 key pair (the secret key is written 0600)."""
    made = auth.init_authority(out_dir)
    err.print(f"created the statistics authority's key pair in {out_dir}", markup=False)
    err.print(
        f"  {made.public.name}: key id {made.key_id}; pin it on every node and give it "
        "to statisticians",
        markup=False,
    )
    err.print(
        f"  {made.secret.name}: SECRET; keep it offline (an offline machine or removable "
        "medium). Whoever holds it decides which tables nodes answer and what they may spend.",
        markup=False,
    )
    typer.echo(made.text)


@app.command()
def sign(
    source: Annotated[
        Path,
        typer.Argument(help="The authored catalogue (.toml, .yaml or .yml).", dir_okay=False),
    ],
    key: SecretKeyOpt,
    out_file: SignedOutOpt,
) -> None:
    """Validate a catalogue and sign it with the authority's key (deterministic output)."""
    catalogue, signer = auth.sign_catalogue_file(source, key, out_file)
    err.print(
        f"signed catalogue {catalogue.federation} version {catalogue.version}: "
        f"{len(catalogue.tables)} tables, total ρ {catalogue.total_rho} "
        f"({float(catalogue.total_rho):.6g}) of the cap {catalogue.snapshot_rho} "
        f"({float(catalogue.snapshot_rho):.6g}); key id {signer}; wrote {out_file}",
        markup=False,
    )


@app.command()
def show(
    file: SignedFileArg,
    authority: AuthorityOpt,
    federation: FederationOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Verify a signed catalogue, then list every table with its cost and precision."""
    with auth.cli_errors("catalogue"):
        catalogue = read_signed_catalogue(file, load_verify_key(authority), federation=federation)
    if as_json:
        typer.echo(json.dumps(auth.catalogue_summary(catalogue), indent=2, ensure_ascii=False))
        return
    out.print(auth.catalogue_table(catalogue))


@app.command()
def verify(
    file: SignedFileArg,
    authority: AuthorityOpt,
    federation: FederationOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a signed catalogue's signature and content; exit 0 only if it is valid."""
    with auth.cli_errors("catalogue"):
        verify_key = load_verify_key(authority)
        catalogue = read_signed_catalogue(file, verify_key, federation=federation)
    summary = auth.catalogue_validity(catalogue, key_id(verify_key))
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(
        f"valid: catalogue {catalogue.federation} version {catalogue.version}, "
        f"{len(catalogue.tables)} tables, signed by key id {summary['key_id']}, "
        f"digest {summary['digest']}"
    )
