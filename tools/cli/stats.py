"""`childreg stats …`: what national statisticians run against the coordinator.

Every table comes from the coordinator's release store: the first question about a
catalogue table at a snapshot publishes it (spending budget), every later one is free
and byte-identical. ``stats catalogue`` (tools/cli/catalogue.py) says what can be asked
and what it costs; ``stats budget`` what is left. The commands are a few lines over
:mod:`tools.clients.statistician`.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer

from childreg import codes, profile
from tools.cli.catalogue import app as catalogue_app
from tools.cli.console import out
from tools.cli.options import (
    CoordinatorOpt,
    IdentityOpt,
    JsonOpt,
    ServerNameOpt,
    TimeoutOpt,
    country_profile,
)
from tools.cli.profile import app as profile_app
from tools.cli.roster import app as roster_app
from tools.clients.authority import catalogue_summary, catalogue_table
from tools.clients.client import Endpoint
from tools.clients.exports import FORMATS, write_export
from tools.clients.published import NATIONAL
from tools.clients.statistician import (
    budget_table,
    fetch_budget,
    fetch_catalogue,
    fetch_table,
    table_query,
)

app = typer.Typer(help="National statistics tables with a privacy guarantee.", no_args_is_help=True)
app.add_typer(catalogue_app, name="catalogue")
app.add_typer(roster_app, name="roster")
app.add_typer(profile_app, name="profile")

YearOpt = Annotated[
    str | None,
    typer.Option("--year", help="Academic year (the snapshot); default: the one today falls in."),
]
CountryOpt = Annotated[
    str,
    typer.Option(
        "--country", help="Country profile whose calendar gives the default year: az or kz."
    ),
]


def _year(year: str | None, country: str) -> str:
    """``year``, or the academic year today falls in by ``country``'s profile calendar."""
    if year is not None:
        return year
    return country_profile(country).academic_year(dt.date.today())


@app.command()
def table(
    by: Annotated[
        list[str],
        typer.Option(
            "--by",
            help="Dimension (repeat for more, any order) naming a catalogue table: "
            f"{', '.join(d for d in codes.DIMENSIONS if d not in ('region', 'district'))}.",
        ),
    ],
    coordinator: CoordinatorOpt,
    identity: IdentityOpt,
    year: YearOpt = None,
    country: CountryOpt = profile.DEFAULT_COUNTRY,
    area: Annotated[
        str, typer.Option(help="'national' or a region code (every table has both).")
    ] = NATIONAL,
    server_name: ServerNameOpt = None,
    as_json: JsonOpt = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV only.")] = False,
    out_files: Annotated[
        list[Path] | None,
        typer.Option(
            "--out",
            help=f"Also write the table here (repeatable); format by suffix: {', '.join(FORMATS)}.",
        ),
    ] = None,
    chart: Annotated[Path | None, typer.Option(help="Also draw a PNG bar chart here.")] = None,
    timeout: TimeoutOpt = 120.0,
) -> None:
    """A published national table with its privacy statement, <10 flags and 95 % margins."""
    query = table_query(_year(year, country), by)
    view = fetch_table(Endpoint(coordinator, identity, server_name, timeout), query)
    selected = view.area(area)  # an unknown area is refused, naming the available ones
    for path in out_files or []:
        write_export(view, path)
    if chart is not None:
        write_export(view, chart, fmt="png", area=selected.area)
    if as_json:
        typer.echo(view.to_json_text(selected.area))
    elif as_csv:
        typer.echo(view.to_csv(selected.area), nl=False)
    else:
        out.print(view.to_rich(selected.area))


@app.command()
def budget(
    coordinator: CoordinatorOpt,
    identity: IdentityOpt,
    year: YearOpt = None,
    country: CountryOpt = profile.DEFAULT_COUNTRY,
    server_name: ServerNameOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 30.0,
) -> None:
    """Your privacy sub-budget for a snapshot, what all statisticians spent, what is published."""
    endpoint = Endpoint(coordinator, identity, server_name, timeout)
    data = fetch_budget(endpoint, _year(year, country))
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    out.print(budget_table(data))


@app.command("tables")
def tables(
    coordinator: CoordinatorOpt,
    identity: IdentityOpt,
    authority: Annotated[
        Path,
        typer.Option(help="The statistics authority's public key (authority.pub) to verify with."),
    ],
    server_name: ServerNameOpt = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Save the signed catalogue.")
    ] = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 30.0,
) -> None:
    """The coordinator's signed catalogue, verified: what can be asked and what it costs."""
    endpoint = Endpoint(coordinator, identity, server_name, timeout)
    catalogue = fetch_catalogue(endpoint, authority, out_file)
    if as_json:
        typer.echo(json.dumps(catalogue_summary(catalogue), indent=2))
    else:
        out.print(catalogue_table(catalogue))
