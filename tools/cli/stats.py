"""`childreg stats …`: what national statisticians run against the coordinator.

Every table comes from the coordinator's release store: the first question about a
catalogue table at a snapshot publishes it (spending budget), every later one is free
and byte-identical. ``stats catalogue`` (tools/cli/catalogue.py) says what can be asked
and what it costs; ``stats budget`` what is left.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import grpc
import typer
from rich.console import Console
from rich.table import Table

from childreg import codes
from childreg.catalogue import load_verify_key, verify_catalogue
from childreg.models import TableQuery, parse
from childreg.v1 import statistics_pb2 as spb
from childreg.v1 import statistics_pb2_grpc as spb_grpc
from tools.cli.catalogue import app as catalogue_app
from tools.cli.catalogue import catalogue_summary, render_catalogue
from tools.cli.options import IdentityOpt, JsonOpt, ServerNameOpt, TimeoutOpt
from tools.cli.roster import app as roster_app
from tools.clients.client import EXIT_INCOMPLETE, CliError, Endpoint, rpc_failure
from tools.clients.exports import FORMATS, write_export
from tools.clients.published import NATIONAL, PublishedView

app = typer.Typer(help="National statistics tables with a privacy guarantee.", no_args_is_help=True)
app.add_typer(catalogue_app, name="catalogue")
app.add_typer(roster_app, name="roster")
out = Console(highlight=False)

CoordinatorOpt = Annotated[
    str,
    typer.Option("--coordinator", envvar="CHILDREG_COORDINATOR", help="The coordinator's address."),
]
YearOpt = Annotated[str, typer.Option("--year", help="Academic year (the snapshot).")]

R = TypeVar("R")


def _call(
    endpoint: Endpoint, what: str, fn: Callable[[spb_grpc.NationalStatisticsServiceStub], R]
) -> R:
    """One call to the coordinator, its failure turned into advice."""
    with endpoint.channel() as channel:
        try:
            return fn(spb_grpc.NationalStatisticsServiceStub(channel))
        except grpc.RpcError as err:
            details = err.details() or ""
            if err.code() == grpc.StatusCode.UNAVAILABLE and details.startswith("incomplete"):
                raise CliError(
                    details,
                    code=EXIT_INCOMPLETE,
                    hint="the coordinator's operator can see why in its log; ask again later",
                ) from None
            raise rpc_failure(err, what, endpoint.address) from None


def fetch_table(endpoint: Endpoint, query: TableQuery) -> PublishedView:
    """Ask the coordinator for a published table (publishing it on first request)."""
    request = spb.TableRequest(academic_year=query.academic_year, dimensions=list(query.dimensions))
    reply = _call(
        endpoint,
        "national table",
        lambda stub: stub.PublishedTable(request, timeout=endpoint.timeout),
    )
    return PublishedView.from_proto(reply)


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
    year: YearOpt = "2023/24",
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
    query = parse(TableQuery, {"academic_year": year, "dimensions": tuple(by)}, what="table")
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
    year: YearOpt = "2023/24",
    server_name: ServerNameOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 30.0,
) -> None:
    """Your privacy sub-budget for a snapshot, what all statisticians spent, what is published."""
    parse(TableQuery, {"academic_year": year, "dimensions": ("sex",)}, what="budget")
    endpoint = Endpoint(coordinator, identity, server_name, timeout)
    report = _call(
        endpoint,
        "budget",
        lambda stub: stub.Budget(spb.BudgetRequest(academic_year=year), timeout=timeout),
    )
    data = {
        "academic_year": report.academic_year,
        "statistician": report.statistician,
        "statistician_rho": report.statistician_rho,
        "statistician_spent": report.statistician_spent,
        "snapshot_rho": report.snapshot_rho,
        "snapshot_spent": report.snapshot_spent,
        "published_tables": list(report.published_tables),
    }
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    shown = Table(title=f"Privacy budget (zCDP ρ), snapshot {report.academic_year}")
    shown.add_column("")
    shown.add_column("spent", justify="right")
    shown.add_column("of", justify="right")
    shown.add_row(
        f"you ({report.statistician})", report.statistician_spent, report.statistician_rho
    )
    shown.add_row("all statisticians", report.snapshot_spent, report.snapshot_rho)
    shown.caption = "published (free to ask again): " + (
        ", ".join(report.published_tables) or "none yet"
    )
    out.print(shown)


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
    reply = _call(
        endpoint,
        "catalogue",
        lambda stub: stub.Catalogue(spb.CatalogueRequest(), timeout=timeout),
    )
    catalogue = verify_catalogue(reply.signed_catalogue, load_verify_key(authority))
    if out_file is not None:
        out_file.write_bytes(reply.signed_catalogue)
    if as_json:
        typer.echo(json.dumps(catalogue_summary(catalogue), indent=2))
    else:
        render_catalogue(catalogue, out)
