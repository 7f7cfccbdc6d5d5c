"""`childreg stats …`: what national statisticians run against the coordinator."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import grpc
import typer
from rich.console import Console

from childreg import codes
from childreg.models import TableQuery, parse
from childreg.v1 import statistics_pb2 as spb
from childreg.v1 import statistics_pb2_grpc as spb_grpc
from tools.client import EXIT_INCOMPLETE, CliError, Endpoint, rpc_failure
from tools.options import IdentityOpt, JsonOpt, ServerNameOpt, TimeoutOpt
from tools.tables import NationalView

app = typer.Typer(help="National statistics tables.", no_args_is_help=True)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

CoordinatorOpt = Annotated[
    str,
    typer.Option("--coordinator", envvar="CHILDREG_COORDINATOR", help="The coordinator's address."),
]


def fetch_table(endpoint: Endpoint, query: TableQuery) -> NationalView:
    """Ask the coordinator for a national table."""
    request = spb.TableRequest(academic_year=query.academic_year, dimensions=list(query.dimensions))
    with endpoint.channel() as channel:
        try:
            reply = spb_grpc.NationalStatisticsServiceStub(channel).NationalTable(
                request, timeout=endpoint.timeout
            )
        except grpc.RpcError as err:
            raise rpc_failure(err, "national table", endpoint.address) from None
    return NationalView.from_proto(reply)


def incomplete_error(view: NationalView) -> CliError:
    """The refusal to show an incomplete table as if it were whole."""
    return CliError(
        f"incomplete: {len(view.missing)} department(s) did not answer in time: "
        + ", ".join(view.missing),
        code=EXIT_INCOMPLETE,
        hint="try again later, or pass --allow-incomplete to see the partial table, flagged",
    )


@app.command()
def table(
    by: Annotated[
        list[str],
        typer.Option("--by", help=f"Dimension (repeat for more): {', '.join(codes.DIMENSIONS)}."),
    ],
    coordinator: CoordinatorOpt,
    identity: IdentityOpt,
    year: Annotated[str, typer.Option(help="Academic year (the snapshot).")] = "2023/24",
    server_name: ServerNameOpt = None,
    as_json: JsonOpt = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV only.")] = False,
    allow_incomplete: Annotated[
        bool,
        typer.Option(help="Show a table even if departments are missing (flagged)."),
    ] = False,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Also write the table here (.csv or .json).")
    ] = None,
    timeout: TimeoutOpt = 60.0,
) -> None:
    """A national count table by the chosen dimensions, summed over every department."""
    query = parse(TableQuery, {"academic_year": year, "dimensions": tuple(by)}, what="table")
    view = fetch_table(Endpoint(coordinator, identity, server_name, timeout), query)
    if view.missing and not allow_incomplete:
        raise incomplete_error(view)
    if out_file is not None:
        text = view.to_csv() if out_file.suffix == ".csv" else view.to_json_text()
        out_file.write_text(text, encoding="utf-8")
    if as_json:
        typer.echo(view.to_json_text())
    elif as_csv:
        typer.echo(view.to_csv(), nl=False)
    else:
        out.print(view.to_rich())
    if view.missing:
        err.print(
            f"warning: INCOMPLETE table: missing departments {', '.join(view.missing)}",
            markup=False,
        )
        raise typer.Exit(EXIT_INCOMPLETE)
