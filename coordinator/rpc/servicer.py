"""The coordinator's gRPC servicer for national statisticians (thin: proto <-> domain)."""

from __future__ import annotations

from fractions import Fraction

import grpc

from childreg.models import TableQuery, parse
from childreg.pki import SpiffeId
from childreg.rpc import peer_identity
from childreg.v1 import statistics_pb2 as spb
from childreg.v1 import statistics_pb2_grpc as spb_grpc
from coordinator.publication.publisher import Publisher
from coordinator.publication.releases import ReleaseStore


def _statistician(context: grpc.ServicerContext) -> str:
    """The caller's id (the boundary has already checked it is a statistician)."""
    return SpiffeId.parse(peer_identity(context)).ident


class NationalStatisticsServicer(spb_grpc.NationalStatisticsServiceServicer):
    """Published national tables, the caller's budget, and the catalogue."""

    def __init__(self, publisher: Publisher, store: ReleaseStore) -> None:
        self._publisher = publisher
        self._store = store

    def PublishedTable(
        self, request: spb.TableRequest, context: grpc.ServicerContext
    ) -> spb.PublishedTable:
        query = parse(
            TableQuery,
            {"academic_year": request.academic_year, "dimensions": tuple(request.dimensions)},
            what="table request",
        )
        body = self._publisher.table(query, _statistician(context))
        return spb.PublishedTable.FromString(body)

    def Budget(self, request: spb.BudgetRequest, context: grpc.ServicerContext) -> spb.BudgetReport:
        query = parse(
            TableQuery,
            {"academic_year": request.academic_year, "dimensions": ("sex",)},
            what="budget request",
        )
        snapshot = query.academic_year
        me = _statistician(context)
        sub_budget = self._publisher.sub_budget(me)
        charges = self._store.charges(snapshot)
        catalogue = self._publisher.catalogue.catalogue
        return spb.BudgetReport(
            academic_year=snapshot,
            statistician=me,
            statistician_rho=str(sub_budget),
            statistician_spent=str(
                sum((c.rho for c in charges if c.statistician == me), Fraction(0))
            ),
            snapshot_rho=str(catalogue.snapshot_rho),
            snapshot_spent=str(sum((c.rho for c in charges), Fraction(0))),
            published_tables=self._store.published(snapshot),
        )

    def Catalogue(
        self, request: spb.CatalogueRequest, context: grpc.ServicerContext
    ) -> spb.SignedCatalogue:
        return spb.SignedCatalogue(signed_catalogue=self._publisher.catalogue.blob)
