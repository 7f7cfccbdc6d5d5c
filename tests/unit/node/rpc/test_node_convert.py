"""The node's protobuf <-> model conversions round-trip and validate at the boundary."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from childreg.errors import InvalidInput
from childreg.models import ChildIn, ChildView, ImportRecord
from childreg.search import DuplicateCandidate, Registration, SearchHit, SearchPage, SearchQuery
from childreg.v1 import records_pb2 as pb
from childreg.v1 import statistics_pb2 as spb
from node.rpc import convert
from tests import strategies as s


@given(s.children())
def test_child_round_trip(child: ChildIn) -> None:
    """child -> proto -> child is the identity."""
    assert convert.child_from_proto(convert.child_to_proto(child)) == child


@given(s.import_records())
@settings(max_examples=150)
def test_import_record_round_trip(record: ImportRecord) -> None:
    """import record -> proto (over the wire bytes) -> import record is the identity."""
    wire = convert.import_record_to_proto(record).SerializeToString()
    assert convert.import_record_from_proto(pb.ImportRecord.FromString(wire)) == record


@given(s.children(), st.data())
def test_child_view_round_trip(child: ChildIn, data: st.DataObject) -> None:
    """A full child record survives proto and back."""
    cid = child.child_id
    view = ChildView(
        child=child,
        placements=tuple(data.draw(st.lists(s.placements(cid), max_size=2))),
        care_settings=tuple(data.draw(st.lists(s.care_settings(cid), max_size=2))),
        assessments=tuple(data.draw(st.lists(s.assessments(cid), max_size=2))),
    )
    assert convert.child_view_from_proto(convert.child_view_to_proto(view)) == view


def test_bad_import_record_becomes_violations_with_its_line() -> None:
    """A malformed streamed record yields violations naming its line and fields, no values."""
    msg = pb.ImportRecord(
        line=12,
        child=pb.Child(child_id="c1", given_name="Secretname", family_name="X",
                       date_of_birth="2010-02-30", sex="x", district="baku"),
        placement=pb.Placement(child_id="c1", academic_year="2023/25", education_form="school"),
    )  # fmt: skip
    out = convert.import_record_from_proto(msg)
    assert isinstance(out, list)
    fields = {v.field for v in out}
    assert {"child.date_of_birth", "child.sex", "child.district"} <= fields
    assert {"placement.academic_year", "placement.education_form"} <= fields
    assert all(v.line == 12 for v in out)
    assert not any("Secretname" in str(v) or "2010-02-30" in str(v) for v in out)


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"table_id": "Bad Id!", "academic_year": "2023/24"}, "table_id"),
        ({"table_id": "education_form", "academic_year": "2023/25"}, "academic_year"),
        (
            {"table_id": "education_form", "academic_year": "2023/24", "catalogue": b""},
            "signed_catalogue",
        ),
    ],
)
def test_malformed_noisy_table_request_is_invalid_input(
    request_fields: dict[str, object], field: str
) -> None:
    """The coordinator's question is validated field by field before anything else."""
    catalogue = request_fields.pop("catalogue", b"{}")
    with pytest.raises(InvalidInput) as info:
        convert.noisy_question_from_proto(
            spb.NoisyTableRequest(signed_catalogue=catalogue, **request_fields)  # type: ignore[arg-type]
        )
    assert info.value.violations[0].field == field


def stream_of(records: list[ImportRecord], size: int = 2) -> list[pb.ImportBatch]:
    return list(convert.import_batches(records, size=size))


@given(st.lists(s.import_records(), max_size=7), st.integers(1, 4))
@settings(max_examples=40)
def test_batched_stream_round_trips_and_ends_properly(
    records: list[ImportRecord], size: int
) -> None:
    """Any number of records, in any batch size, arrive in order with exactly one last batch."""
    batches = stream_of(records, size)
    assert [b.last for b in batches] == [False] * (len(batches) - 1) + [True]
    assert batches[-1].total_records == len(records)
    assert list(convert.records_from_import_stream(batches)) == records


@pytest.mark.parametrize("damage", ["no_last", "after_last", "count"])
@given(records=st.lists(s.import_records(), min_size=1, max_size=5))
@settings(max_examples=10)
def test_badly_ended_streams_raise_after_their_records(
    damage: str, records: list[ImportRecord]
) -> None:
    """A stream without its last batch, with batches after it, or with a wrong count raises."""
    batches = stream_of(records)
    if damage == "no_last":
        batches[-1].last = False
    elif damage == "after_last":
        batches.append(pb.ImportBatch())
    else:
        batches[-1].total_records += 1
    seen: list[object] = []
    with pytest.raises(InvalidInput) as info:
        seen.extend(convert.records_from_import_stream(batches))
    assert "nothing was imported" in str(info.value)
    assert len(seen) == len(records)  # the raise comes after the records: inside the transaction


def test_search_query_round_trip_and_empty_means_not_given() -> None:
    """A query survives proto and back; empty strings are criteria not given, page size 0
    the default."""
    q = SearchQuery(name="Aysel", date_of_birth=dt.date(2016, 4, 2), page_size=5, page_token="p1")
    assert convert.search_query_from_proto(convert.search_query_to_proto(q)) == q
    only_name = convert.search_query_from_proto(pb.SearchRequest(name="Aysel"))
    assert only_name == SearchQuery(name="Aysel")


def test_bad_search_names_each_field() -> None:
    """A bad birth date and page size are InvalidInput naming each; none at all is refused."""
    with pytest.raises(InvalidInput) as info:
        convert.search_query_from_proto(
            pb.SearchRequest(name="A", date_of_birth="2016-04-02T00:00:00", page_size=1000)
        )
    assert sorted(v.field for v in info.value.violations) == ["date_of_birth", "page_size"]
    with pytest.raises(InvalidInput):
        convert.search_query_from_proto(pb.SearchRequest(include_closed=True))


def test_registration_round_trip() -> None:
    """A held registration and its candidates survive proto and back."""
    hit = SearchHit(
        child_id="C1", given_name="Aysel", family_name="Məmmədova",
        date_of_birth=dt.date(2016, 4, 2), district="nasimi", score=0.97,
    )  # fmt: skip
    held = Registration(
        registered=False, duplicates=(DuplicateCandidate(hit=hit, reasons=("same name",)),)
    )
    assert convert.registration_from_proto(convert.registration_to_proto(held)) == held
    page = SearchPage(hits=(hit,), next_page_token="p1")
    assert convert.search_page_from_proto(convert.search_page_to_proto(page)) == page


def test_a_registration_request_names_bad_child_fields_and_a_short_reason() -> None:
    """Bad child fields and a too-short reason are reported together, each by its field."""
    request = pb.RegisterChildRequest(child=pb.Child(child_id="C1"), not_duplicate_reason="no")
    with pytest.raises(InvalidInput) as info:
        convert.registration_request_from_proto(request)
    fields = {v.field for v in info.value.violations}
    assert {"not_duplicate_reason", "given_name", "date_of_birth"} <= fields
    assert "no" not in str(info.value)


def test_a_client_reads_a_record_of_a_district_its_own_profile_lacks() -> None:
    """A child record from a Kazakh node opens at a client holding only the embedded
    (Azerbaijan) profile: the node checked the district against its own."""
    record = pb.ChildRecord(
        child=pb.Child(child_id="K1", given_name="Aruzhan", family_name="Seitkali",
                        date_of_birth="2016-04-02", sex="female", district="almaty_medeu")
    )  # fmt: skip
    assert convert.child_view_from_proto(record).child.district == "almaty_medeu"
