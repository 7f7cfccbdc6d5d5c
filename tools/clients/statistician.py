"""The national statistician's side of the coordinator: tables, the budget, the catalogue.

Every table comes from the coordinator's release store: the first question about a
catalogue table at a snapshot publishes it (spending budget), every later one is free and
byte-identical. A coordinator that could not hear from every department in time answers
UNAVAILABLE with a message starting "incomplete"; that is a result of its own (exit 3),
not an unreachable server.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import grpc
from rich.table import Table

from childreg.catalogue import Catalogue, load_verify_key, verify_catalogue
from childreg.models import TableQuery, parse
from childreg.v1 import statistics_pb2 as spb
from childreg.v1 import statistics_pb2_grpc as spb_grpc
from tools.clients.client import EXIT_INCOMPLETE, CliError, Endpoint, rpc_failure
from tools.clients.published import PublishedView

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


def table_query(year: str, dimensions: list[str] | tuple[str, ...]) -> TableQuery:
    """A table question, validated before anything is sent."""
    return parse(TableQuery, {"academic_year": year, "dimensions": tuple(dimensions)}, what="table")


def fetch_table(endpoint: Endpoint, query: TableQuery) -> PublishedView:
    """Ask the coordinator for a published table (publishing it on first request)."""
    request = spb.TableRequest(academic_year=query.academic_year, dimensions=list(query.dimensions))
    reply = _call(
        endpoint,
        "national table",
        lambda stub: stub.PublishedTable(request, timeout=endpoint.timeout),
    )
    return PublishedView.from_proto(reply)


def fetch_budget(endpoint: Endpoint, year: str) -> dict[str, Any]:
    """The caller's sub-budget for a snapshot, all statisticians' spending, what is published."""
    parse(TableQuery, {"academic_year": year, "dimensions": ("sex",)}, what="budget")
    report = _call(
        endpoint,
        "budget",
        lambda stub: stub.Budget(spb.BudgetRequest(academic_year=year), timeout=endpoint.timeout),
    )
    return {
        "academic_year": report.academic_year,
        "statistician": report.statistician,
        "statistician_rho": report.statistician_rho,
        "statistician_spent": report.statistician_spent,
        "snapshot_rho": report.snapshot_rho,
        "snapshot_spent": report.snapshot_spent,
        "published_tables": list(report.published_tables),
    }


def budget_table(data: dict[str, Any]) -> Table:
    """The budget of :func:`fetch_budget` as a table for a person."""
    shown = Table(title=f"Privacy budget (zCDP ρ), snapshot {data['academic_year']}")
    shown.add_column("")
    shown.add_column("spent", justify="right")
    shown.add_column("of", justify="right")
    shown.add_row(
        f"you ({data['statistician']})", data["statistician_spent"], data["statistician_rho"]
    )
    shown.add_row("all statisticians", data["snapshot_spent"], data["snapshot_rho"])
    shown.caption = "published (free to ask again): " + (
        ", ".join(data["published_tables"]) or "none yet"
    )
    return shown


def fetch_catalogue(endpoint: Endpoint, authority: Path, out_file: Path | None) -> Catalogue:
    """The coordinator's signed catalogue, verified against the authority's key (and saved
    to ``out_file`` once it verified, if given)."""
    reply = _call(
        endpoint,
        "catalogue",
        lambda stub: stub.Catalogue(spb.CatalogueRequest(), timeout=endpoint.timeout),
    )
    catalogue = verify_catalogue(reply.signed_catalogue, load_verify_key(authority))
    if out_file is not None:
        out_file.write_bytes(reply.signed_catalogue)
    return catalogue
