"""Protobuf conversion for the coordinator's publications (the only place they meet proto).

Why: the publisher (coordinator/publication) builds a table as plain values and keeps it as
bytes; those bytes are what a statistician's client parses, a deterministic serialized
``childreg.v1.PublishedTable``, byte-identical every time the table is asked for. This
module is that codec, so the domain package sees no protobuf (docs/design/architecture.md).
"""

from __future__ import annotations

from childreg.v1 import statistics_pb2 as spb
from coordinator.publication.published import (
    AreaTotal,
    AreaValues,
    PrivacyStatement,
    PublishedTable,
)


def privacy_to_proto(p: PrivacyStatement) -> spb.PrivacyStatement:
    """The privacy statement as its message."""
    return spb.PrivacyStatement(
        mechanism=p.mechanism,
        rho=p.rho,
        sigma_squared=p.sigma_squared,
        sigma=p.sigma,
        epsilon=p.epsilon,
        delta=p.delta,
        snapshot_rho=p.snapshot_rho,
        snapshot_epsilon=p.snapshot_epsilon,
        display_threshold=p.display_threshold,
        participants=p.participants,
        colluders=p.colluders,
        share_sigma_squared=p.share_sigma_squared,
    )


def privacy_from_proto(m: spb.PrivacyStatement) -> PrivacyStatement:
    """The privacy statement of a message."""
    return PrivacyStatement(
        mechanism=m.mechanism,
        rho=m.rho,
        sigma_squared=m.sigma_squared,
        sigma=m.sigma,
        epsilon=m.epsilon,
        delta=m.delta,
        snapshot_rho=m.snapshot_rho,
        snapshot_epsilon=m.snapshot_epsilon,
        display_threshold=m.display_threshold,
        participants=m.participants,
        colluders=m.colluders,
        share_sigma_squared=m.share_sigma_squared,
    )


def _area_to_proto(a: AreaValues) -> spb.AreaValues:
    return spb.AreaValues(
        area=a.area,
        departments=list(a.departments),
        values=list(a.values),
        margins=list(a.margins),
        confidential=list(a.confidential),
        totals=[
            spb.AreaTotal(name=t.name, value=t.value, margin=t.margin, confidential=t.confidential)
            for t in a.totals
        ],
    )


def _area_from_proto(m: spb.AreaValues) -> AreaValues:
    return AreaValues(
        area=m.area,
        departments=tuple(m.departments),
        values=tuple(m.values),
        margins=tuple(m.margins),
        confidential=tuple(m.confidential),
        totals=tuple(AreaTotal(t.name, t.value, t.margin, t.confidential) for t in m.totals),
    )


def published_to_proto(t: PublishedTable) -> spb.PublishedTable:
    """The published table as its message."""
    return spb.PublishedTable(
        academic_year=t.academic_year,
        reference_date=t.reference_date,
        catalogue_version=t.catalogue_version,
        table_id=t.table_id,
        title=t.title,
        dimensions=list(t.dimensions),
        privacy=privacy_to_proto(t.privacy),
        areas=[_area_to_proto(a) for a in t.areas],
        published_at=t.published_at,
        release_key=t.release_key,
        missing_departments=list(t.missing_departments),
    )


def published_from_proto(m: spb.PublishedTable) -> PublishedTable:
    """The published table of a message."""
    return PublishedTable(
        academic_year=m.academic_year,
        reference_date=m.reference_date,
        catalogue_version=m.catalogue_version,
        table_id=m.table_id,
        title=m.title,
        dimensions=tuple(m.dimensions),
        privacy=privacy_from_proto(m.privacy),
        areas=tuple(_area_from_proto(a) for a in m.areas),
        published_at=m.published_at,
        release_key=m.release_key,
        missing_departments=tuple(m.missing_departments),
    )


class PublishedTableCodec:
    """A :class:`~coordinator.publication.published.TableCodec`: a table's bytes are its
    ``PublishedTable`` message, serialized deterministically."""

    def encode(self, table: PublishedTable) -> bytes:
        """The serialized message (deterministic: the same table gives the same bytes)."""
        return published_to_proto(table).SerializeToString(deterministic=True)

    def decode(self, body: bytes) -> PublishedTable:
        """The table of a serialized message."""
        return published_from_proto(spb.PublishedTable.FromString(body))


#: The codec the coordinator publishes with.
PUBLISHED_TABLES = PublishedTableCodec()
