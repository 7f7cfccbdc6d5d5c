"""What a published national table says, as plain values, and how it is kept as bytes.

Why: the publisher decides every number of a table — values, margins, flags, the privacy
statement — but the bytes it stores and returns are the wire format a statistician's client
reads (a deterministic serialized ``childreg.v1.PublishedTable``), so that a table asked
for again is returned byte-identical. The publisher builds these values and hands them to
a :class:`TableCodec`; the protobuf lives in ``coordinator/rpc/convert.py``, and this
package sees neither protobuf nor gRPC (docs/design/architecture.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

from childreg.catalogue import Catalogue, CatalogueTable
from childreg.dp import zcdp
from coordinator.rounds.federation import PER_DEPARTMENT, SECURE_AGGREGATION, StatementPieces

_STAGE_ONE = StatementPieces(PER_DEPARTMENT)


@dataclass(frozen=True)
class PrivacyStatement:
    """The guarantee a table was published under (proto ``PrivacyStatement``)."""

    mechanism: str
    rho: str  # this table's zCDP cost, exact fraction
    sigma_squared: str  # the table's target noise variance per cell, exact
    sigma: float
    epsilon: float  # equivalent ε at ``delta``
    delta: float
    snapshot_rho: str  # the snapshot's cap
    snapshot_epsilon: float
    display_threshold: int
    participants: int = 0  # secure aggregation only: n, c and n·σ²/(t−c)
    colluders: int = 0
    share_sigma_squared: str = ""


@dataclass(frozen=True)
class AreaTotal:
    """A published sum of some cells (e.g. the forms of special provision)."""

    name: str
    value: int
    margin: int  # 95 % margin of the sum
    confidential: bool


@dataclass(frozen=True)
class AreaValues:
    """One geography of a published table: the nation or a region."""

    area: str
    departments: tuple[str, ...]
    values: tuple[int, ...]
    margins: tuple[int, ...]
    confidential: tuple[bool, ...]
    totals: tuple[AreaTotal, ...] = ()


@dataclass(frozen=True)
class PublishedTable:
    """A national table as published (proto ``PublishedTable``)."""

    academic_year: str
    reference_date: str  # ISO date the counts refer to
    catalogue_version: int
    table_id: str
    title: str
    dimensions: tuple[str, ...]  # canonical order (codes.DIMENSIONS)
    privacy: PrivacyStatement
    areas: tuple[AreaValues, ...]  # national first, then regions in code-list order
    published_at: str
    release_key: str
    missing_departments: tuple[str, ...] = ()


class TableCodec(Protocol):
    """How a published table is kept and returned as bytes (the wire format)."""

    def encode(self, table: PublishedTable) -> bytes:
        """The table's bytes, deterministic: the same table gives the same bytes."""
        ...

    def decode(self, body: bytes) -> PublishedTable:
        """A table from bytes that :meth:`encode` wrote."""
        ...


def privacy_statement(
    table: CatalogueTable,
    catalogue: Catalogue,
    pieces: StatementPieces = _STAGE_ONE,
) -> PrivacyStatement:
    """What every published table says about its guarantee (σ² is the table's target)."""
    sigma2 = zcdp.sigma_squared(table.rho)
    return PrivacyStatement(
        mechanism=pieces.mechanism,
        rho=str(table.rho),
        sigma_squared=str(sigma2),
        sigma=float(sigma2) ** 0.5,
        epsilon=zcdp.epsilon(table.rho, catalogue.delta),
        delta=catalogue.delta,
        snapshot_rho=str(catalogue.snapshot_rho),
        snapshot_epsilon=zcdp.epsilon(catalogue.snapshot_rho, catalogue.delta),
        display_threshold=catalogue.display_threshold,
        participants=pieces.participants,
        colluders=pieces.colluders,
        share_sigma_squared=pieces.share_sigma_squared,
    )


def unit_variance(statement: PrivacyStatement) -> Fraction:
    """The per-cell noise variance of one unit of a published table, from its statement.

    Stage 1: σ², added by each department (an area holds one unit per department).
    Stage 2: n·σ²/(t−c), the whole national sum's (its one area holds one unit).
    """
    if statement.mechanism == SECURE_AGGREGATION:
        return statement.participants * Fraction(statement.share_sigma_squared)
    return Fraction(statement.sigma_squared)
