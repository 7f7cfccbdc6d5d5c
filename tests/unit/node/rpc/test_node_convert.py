"""The node's protobuf <-> model conversions round-trip and validate at the boundary."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from childreg.errors import InvalidInput
from childreg.models import ChildIn, ChildView, ImportRecord
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
