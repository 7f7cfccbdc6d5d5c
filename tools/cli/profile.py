"""`childreg stats profile …`: the signed country profile (units, calendar, languages).

The statistics authority starts from a shipped country (`export`), adapts the JSON (its
units as they stand, its federation's name), signs it offline with the key that signs the
catalogue (`sign`), and gives the signed file to every node and the coordinator, whose
configurations name it as `profile_file`. Anyone checks one with `show`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from tools.cli.catalogue import AuthorityOpt, FederationOpt, SecretKeyOpt, SignedOutOpt
from tools.cli.console import err, out
from tools.cli.options import JsonOpt
from tools.clients import profiles

app = typer.Typer(
    help="The signed country profile: administrative units, school calendar, languages.",
    no_args_is_help=True,
)


@app.command()
def export(
    country: Annotated[str, typer.Option(help="The shipped country to start from: az or kz.")],
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the JSON source.")],
    federation: Annotated[
        str | None, typer.Option(help="Your federation's name, e.g. kz.childreg.")
    ] = None,
) -> None:
    """Write a shipped country's profile as JSON, to adapt and then sign.

    \b
    Example:
      childreg stats profile export --country kz --federation kz.childreg --out profile.json
    """
    chosen = profiles.export_profile(country, federation, out_file)
    err.print(
        f"wrote the {chosen.country} profile for {chosen.federation} to {out_file}; "
        "check its units against the official classifier, add your departments and schools "
        "to its directory (docs/country-profile.md), then sign it",
        markup=False,
    )


@app.command()
def sign(
    source: Annotated[Path, typer.Argument(help="The profile's JSON source.", dir_okay=False)],
    key: SecretKeyOpt,
    out_file: SignedOutOpt,
) -> None:
    """Validate a profile and sign it with the authority's key (deterministic output).

    \b
    Example:
      childreg stats profile sign profile.json --key authority.key --out profile.signed.json
    """
    chosen, signer = profiles.sign_profile_file(source, key, out_file)
    units = sum(len(r.districts) for r in chosen.regions)
    err.print(f"signed profile {chosen.federation} version {chosen.version}: "
              f"{len(chosen.regions)} regions, {units} districts, "
              f"{len(chosen.directory.departments)} departments and "
              f"{len(chosen.directory.schools)} schools in its directory, times in "
              f"{chosen.timezone}; key id {signer}; wrote {out_file}", markup=False)  # fmt: skip


@app.command()
def show(
    file: Annotated[Path, typer.Argument(help="The signed profile file.", dir_okay=False)],
    authority: AuthorityOpt,
    federation: FederationOpt = None,
    language: Annotated[str, typer.Option(help="Names in this language.")] = "en",
    as_json: JsonOpt = False,
) -> None:
    """Verify a signed profile, then list its regions and districts (and, with --json,
    its directory of departments and schools and its code names).

    \b
    Example:
      childreg stats profile show profile.signed.json --authority authority.pub --language ru
    """
    chosen, signer = profiles.read_profile(file, authority, federation)
    summary = profiles.profile_summary(chosen, language)
    if as_json:
        typer.echo(json.dumps({**summary, "key_id": signer}, indent=2, ensure_ascii=False))
        return
    table = Table(
        title=f"{chosen.federation} ({chosen.country}) version {chosen.version}, signed by "
        f"key id {signer}", box=box.SIMPLE_HEAD, title_justify="left",
    )  # fmt: skip
    for column in ("region", "districts"):
        table.add_column(column, overflow="fold")
    for r in summary["regions"]:
        names = ", ".join(f"{d['name']} ({d['code']})" for d in r["districts"])
        table.add_row(f"{r['name']} ({r['code']})", names)
    table.caption = (
        f"academic year starts {chosen.calendar.year_starts} (MM-DD), census day "
        f"{chosen.calendar.census_day}; languages {', '.join(chosen.languages)}; times in "
        f"{chosen.timezone}; directory: {len(summary['departments'])} department(s), "
        f"{len(summary['schools'])} school(s); names for {len(summary['code_names'])} code "
        "list(s) (--json lists them all)"
    )
    out.print(table)
