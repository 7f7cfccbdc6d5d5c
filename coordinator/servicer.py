"""The coordinator's gRPC servicer for national statisticians (thin: proto <-> domain)."""

from __future__ import annotations

import grpc

from childreg.models import TableQuery, parse
from childreg.v1 import statistics_pb2 as spb
from childreg.v1 import statistics_pb2_grpc as spb_grpc
from coordinator.federation import Federation


class NationalStatisticsServicer(spb_grpc.NationalStatisticsServiceServicer):
    """National tables summed over the federation's departments."""

    def __init__(self, federation: Federation) -> None:
        self._federation = federation

    def NationalTable(
        self, request: spb.TableRequest, context: grpc.ServicerContext
    ) -> spb.NationalTable:
        query = parse(
            TableQuery,
            {"academic_year": request.academic_year, "dimensions": tuple(request.dimensions)},
            what="table request",
        )
        result = self._federation.national_table(query)
        return spb.NationalTable(
            table=spb.CountTable(
                academic_year=query.academic_year,
                dimensions=list(query.dimensions),
                counts=result.counts,
            ),
            answered_departments=list(result.answered),
            missing_departments=list(result.missing),
            complete=result.complete,
        )
