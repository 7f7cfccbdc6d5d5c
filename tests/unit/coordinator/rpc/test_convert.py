"""The publication codec: a published table's bytes are its PublishedTable message."""

from __future__ import annotations

from childreg.v1 import statistics_pb2 as spb
from coordinator.publication.published import (
    AreaTotal,
    AreaValues,
    PrivacyStatement,
    PublishedTable,
)
from coordinator.rpc.convert import PUBLISHED_TABLES

PRIVACY = PrivacyStatement(
    mechanism="discrete_gaussian/zcdp/secure-aggregation",
    rho="1/32",
    sigma_squared="16",
    sigma=4.0,
    epsilon=1.25,
    delta=1e-9,
    snapshot_rho="1/4",
    snapshot_epsilon=3.5,
    display_threshold=10,
    participants=4,
    colluders=1,
    share_sigma_squared="16/3",
)
TABLE = PublishedTable(
    academic_year="2023/24",
    reference_date="2023-10-01",
    catalogue_version=2,
    table_id="form",
    title="By form",
    dimensions=("education_form",),
    privacy=PRIVACY,
    areas=(
        AreaValues(
            area="national",
            departments=("d00", "d01"),
            values=(120, 3),
            margins=(9, 9),
            confidential=(False, True),
            totals=(AreaTotal("special", 123, 13, False),),
        ),
    ),
    published_at="2024-01-01T00:00:00+00:00",
    release_key="2023/24|v2|education_form",
    missing_departments=("d02",),
)


def test_a_table_is_its_message_serialized_deterministically() -> None:
    """The bytes are exactly the PublishedTable message a client parses, field for field."""
    expected = spb.PublishedTable(
        academic_year="2023/24",
        reference_date="2023-10-01",
        catalogue_version=2,
        table_id="form",
        title="By form",
        dimensions=["education_form"],
        privacy=spb.PrivacyStatement(
            mechanism="discrete_gaussian/zcdp/secure-aggregation",
            rho="1/32",
            sigma_squared="16",
            sigma=4.0,
            epsilon=1.25,
            delta=1e-9,
            snapshot_rho="1/4",
            snapshot_epsilon=3.5,
            display_threshold=10,
            participants=4,
            colluders=1,
            share_sigma_squared="16/3",
        ),
        areas=[
            spb.AreaValues(
                area="national",
                departments=["d00", "d01"],
                values=[120, 3],
                margins=[9, 9],
                confidential=[False, True],
                totals=[spb.AreaTotal(name="special", value=123, margin=13, confidential=False)],
            )
        ],
        published_at="2024-01-01T00:00:00+00:00",
        release_key="2023/24|v2|education_form",
        missing_departments=["d02"],
    )
    assert PUBLISHED_TABLES.encode(TABLE) == expected.SerializeToString(deterministic=True)


def test_decoding_gives_back_the_table_and_its_bytes() -> None:
    """A stored table decodes to the same values, which encode to the same bytes again."""
    body = PUBLISHED_TABLES.encode(TABLE)
    assert PUBLISHED_TABLES.decode(body) == TABLE
    assert PUBLISHED_TABLES.encode(PUBLISHED_TABLES.decode(body)) == body
