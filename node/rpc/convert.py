"""Conversions between the node's protobuf messages and the validated pydantic models.

The only place in the node that knows both worlds: ``x_from_proto`` validates (raising
:class:`~childreg.errors.InvalidInput` with field-level violations) and ``x_to_proto``
renders. In protobuf an empty string means "not given". :func:`actor_of` turns a call's
verified identity into the actor the audited service names (node/audit/actor.py). The
secure-aggregation messages are converted beside their servicer (node/rpc/statistics.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from typing import Any, Final, NamedTuple, TypeVar

import grpc
from pydantic import ValidationError

from childreg.errors import InvalidInput, Unauthenticated, Violation
from childreg.models import (
    UNITS_CHECKED_BY_NODE,
    AssessmentIn,
    CareSettingIn,
    ChildIn,
    ChildRefIn,
    ChildView,
    ImportRecord,
    Model,
    NoisyTableQuestion,
    PlacementIn,
    parse,
    violations_of,
)
from childreg.rpc import peer_identity
from childreg.search import (
    Reason,
    Registration,
    SearchHit,
    SearchPage,
    SearchQuery,
)
from childreg.v1 import records_pb2 as pb
from childreg.v1 import statistics_pb2 as spb
from node.audit.actor import Actor
from node.statistics.desk import NoisyAnswer

#: Records per BulkImport stream message.
IMPORT_BATCH: Final = 500


def actor_of(context: grpc.ServicerContext) -> Actor:
    """The caller of an admitted call, as its leaves name it: exactly the SPIFFE id of its
    verified certificate (Unauthenticated if it carries none, which the boundary refuses
    before any servicer runs)."""
    try:
        return Actor.machine(peer_identity(context))
    except InvalidInput:
        raise Unauthenticated("the caller presented no childreg identity") from None


def _opt(value: str) -> str | None:
    return value if value != "" else None


def _iso(value: dt.date | None) -> str:
    return value.isoformat() if value is not None else ""


def _child_data(m: pb.Child) -> dict[str, Any]:
    return {
        "child_id": m.child_id,
        "national_id": _opt(m.national_id),
        "given_name": m.given_name,
        "family_name": m.family_name,
        "date_of_birth": m.date_of_birth,
        "sex": m.sex,
        "district": m.district,
        "guardian_name": _opt(m.guardian_name),
        "guardian_phone": _opt(m.guardian_phone),
    }


def _placement_data(m: pb.Placement) -> dict[str, Any]:
    return {
        "child_id": m.child_id,
        "academic_year": m.academic_year,
        "education_form": m.education_form,
        "institution": _opt(m.institution),
    }


def _care_data(m: pb.CareSetting) -> dict[str, Any]:
    return {"child_id": m.child_id, "care_setting": m.care_setting, "since": m.since}


def _functioning_data(m: pb.Assessment) -> tuple[dict[str, str], ...]:
    return tuple({"domain": f.domain, "level": f.level} for f in m.functioning)


def _assessment_data(m: pb.Assessment) -> dict[str, Any]:
    return {
        "child_id": m.child_id,
        "assessment_date": m.assessment_date,
        "commission": m.commission,
        "impairment_band": _opt(m.impairment_band),
        "icf_codes": tuple(m.icf_codes),
        "diagnoses": tuple(m.diagnoses),
        "functioning": _functioning_data(m),
        "recommended_form": _opt(m.recommended_form),
        "supports": tuple(m.supports),
        "accommodations": tuple(m.accommodations),
        "next_review": _opt(m.next_review),
    }


def child_from_proto(m: pb.Child) -> ChildIn:
    """Validate a Child message."""
    return parse(ChildIn, _child_data(m), what="child")


def placement_from_proto(m: pb.Placement) -> PlacementIn:
    """Validate a Placement message."""
    return parse(PlacementIn, _placement_data(m), what="placement")


def care_setting_from_proto(m: pb.CareSetting) -> CareSettingIn:
    """Validate a CareSetting message."""
    return parse(CareSettingIn, _care_data(m), what="care setting")


def assessment_from_proto(m: pb.Assessment) -> AssessmentIn:
    """Validate an Assessment message."""
    return parse(AssessmentIn, _assessment_data(m), what="assessment")


class _NotDuplicate(Model):
    """The reason that confirms a new child is none of the likely duplicates shown."""

    not_duplicate_reason: Reason | None = None


def registration_request_from_proto(m: pb.RegisterChildRequest) -> tuple[ChildIn, str | None]:
    """Validate a RegisterChild request: the child, and the not-duplicate reason if given."""
    problems: list[Violation] = []
    try:
        child: ChildIn | None = child_from_proto(m.child)
    except InvalidInput as exc:
        child, problems = None, list(exc.violations)
    try:
        reason = parse(
            _NotDuplicate, {"not_duplicate_reason": _opt(m.not_duplicate_reason)}
        ).not_duplicate_reason
    except InvalidInput as exc:
        problems += exc.violations
    if child is None or problems:
        raise InvalidInput("invalid registration", problems)
    return child, reason


def search_query_from_proto(m: pb.SearchRequest) -> SearchQuery:
    """Validate a search (empty strings are criteria not given; page size 0 the default)."""
    data: dict[str, Any] = {
        "name": _opt(m.name),
        "date_of_birth": _opt(m.date_of_birth),
        "district": _opt(m.district),
        "school": _opt(m.school),
        "national_id": _opt(m.national_id),
        "include_closed": m.include_closed,
        "page_token": _opt(m.page_token),
    }
    if m.page_size:
        data["page_size"] = m.page_size
    return parse(SearchQuery, data, what="search")


def search_query_to_proto(q: SearchQuery) -> pb.SearchRequest:
    """Render a search (used by clients)."""
    return pb.SearchRequest(
        name=q.name or "",
        date_of_birth=_iso(q.date_of_birth),
        district=q.district or "",
        school=q.school or "",
        national_id=q.national_id or "",
        include_closed=q.include_closed,
        page_size=q.page_size,
        page_token=q.page_token or "",
    )


def search_hit_to_proto(h: SearchHit) -> pb.SearchHit:
    """Render one child found."""
    return pb.SearchHit(
        child_id=h.child_id,
        given_name=h.given_name,
        family_name=h.family_name,
        date_of_birth=h.date_of_birth.isoformat(),
        district=h.district,
        school=h.school or "",
        closed=h.closed,
        score=h.score,
    )


def _hit_data(m: pb.SearchHit) -> dict[str, Any]:
    return {
        "child_id": m.child_id,
        "given_name": m.given_name,
        "family_name": m.family_name,
        "date_of_birth": m.date_of_birth,
        "district": m.district,
        "school": _opt(m.school),
        "closed": m.closed,
        "score": m.score,
    }


def search_page_to_proto(p: SearchPage) -> pb.SearchReply:
    """Render one page of children found."""
    return pb.SearchReply(
        hits=[search_hit_to_proto(h) for h in p.hits], next_page_token=p.next_page_token or ""
    )


def search_page_from_proto(m: pb.SearchReply) -> SearchPage:
    """Validate a page of children found (used by clients)."""
    return parse(
        SearchPage,
        {"hits": [_hit_data(h) for h in m.hits], "next_page_token": _opt(m.next_page_token)},
        what="search reply",
    )


def registration_to_proto(r: Registration) -> pb.RegisterChildReply:
    """Render what a registration came to."""
    return pb.RegisterChildReply(
        registered=r.registered,
        duplicates=[
            pb.DuplicateCandidate(hit=search_hit_to_proto(d.hit), reasons=list(d.reasons))
            for d in r.duplicates
        ],
    )


def registration_from_proto(m: pb.RegisterChildReply) -> Registration:
    """Validate what a registration came to (used by clients)."""
    return parse(
        Registration,
        {
            "registered": m.registered,
            "duplicates": [
                {"hit": _hit_data(d.hit), "reasons": tuple(d.reasons)} for d in m.duplicates
            ],
        },
        what="registration reply",
    )


def import_record_from_proto(m: pb.ImportRecord) -> ImportRecord | list[Violation]:
    """Validate one streamed import record; a bad one becomes its list of violations."""
    data: dict[str, Any] = {
        "line": m.line,
        "child": _child_data(m.child),
        "placement": _placement_data(m.placement),
        "care": _care_data(m.care) if m.HasField("care") else None,
        "assessment": _assessment_data(m.assessment) if m.HasField("assessment") else None,
    }
    try:
        return ImportRecord.model_validate(data)
    except ValidationError as exc:
        return violations_of(exc, line=m.line or None)


def child_ref_from_proto(m: pb.ChildRef) -> str:
    """Validate a reference to a child (the id's shape, before any look-up)."""
    return parse(ChildRefIn, {"child_id": m.child_id}, what="child reference").child_id


def import_batches(
    records: Iterable[ImportRecord], size: int = IMPORT_BATCH
) -> Iterator[pb.ImportBatch]:
    """Group records into stream messages of ``size`` records; the final one says ``last``."""
    batch = pb.ImportBatch()
    total = 0
    for record in records:
        if len(batch.records) >= size:
            yield batch
            batch = pb.ImportBatch()
        batch.records.append(import_record_to_proto(record))
        total += 1
    batch.last = True
    batch.total_records = total
    yield batch


class Received(NamedTuple):
    """A BulkImport stream message as the node received it: its bytes and its parse.

    The node registers BulkImport with :func:`received` as the request deserializer, so
    the stream's digest and the import workers use the bytes that arrived instead of
    serializing each parsed batch again (about 2 µs per child of the node's thread).
    """

    blob: bytes
    batch: pb.ImportBatch


def received(blob: bytes) -> Received:
    """Parse one BulkImport stream message, keeping its bytes (a request deserializer)."""
    return Received(blob, pb.ImportBatch.FromString(blob))


_Batch = TypeVar("_Batch", pb.ImportBatch, Received)


def batch_of(item: pb.ImportBatch | Received) -> pb.ImportBatch:
    """The parsed batch of a stream message, whether it came with its bytes or not."""
    return item.batch if isinstance(item, Received) else item


def import_stream(batches: Iterable[_Batch]) -> Iterator[_Batch]:
    """The batches of a BulkImport stream, insisting on its proper end.

    Raises InvalidInput — after the last batch, so an enclosing transaction rolls back —
    if the stream ends without a ``last`` batch, has batches after it, or the client's
    count disagrees with what arrived.
    """
    count = 0
    last: pb.ImportBatch | None = None
    for item in batches:
        batch = batch_of(item)
        if last is not None:
            raise InvalidInput(
                "the import stream continued after its last batch; nothing was imported",
                [Violation("last", "set on more than one batch or not on the final one")],
            )
        count += len(batch.records)
        yield item
        if batch.last:
            last = batch
    if last is None:
        raise InvalidInput(
            "the import stream ended before its last batch (the client stopped or was cut "
            "off); nothing was imported",
            [Violation("last", "no batch was marked last")],
        )
    if last.total_records != count:
        raise InvalidInput(
            f"the client announced {last.total_records} records but {count} arrived; "
            "nothing was imported",
            [Violation("total_records", "does not match the records received")],
        )


def records_from_import_stream(
    batches: Iterable[_Batch],
) -> Iterator[ImportRecord | list[Violation]]:
    """Validate a BulkImport stream record by record (see :func:`import_stream`)."""
    for item in import_stream(batches):
        batch = batch_of(item)
        for message in batch.records:
            yield import_record_from_proto(message)


def noisy_question_from_proto(m: spb.NoisyTableRequest) -> NoisyTableQuestion:
    """Validate the coordinator's question (catalogue, table, snapshot)."""
    return parse(
        NoisyTableQuestion,
        {
            "signed_catalogue": m.signed_catalogue,
            "table_id": m.table_id,
            "academic_year": m.academic_year,
        },
        what="table request",
    )


def child_to_proto(c: ChildIn) -> pb.Child:
    """Render a child."""
    return pb.Child(
        child_id=c.child_id,
        national_id=c.national_id or "",
        given_name=c.given_name,
        family_name=c.family_name,
        date_of_birth=c.date_of_birth.isoformat(),
        sex=c.sex,
        district=c.district,
        guardian_name=c.guardian_name or "",
        guardian_phone=c.guardian_phone or "",
    )


def placement_to_proto(p: PlacementIn) -> pb.Placement:
    """Render a placement."""
    return pb.Placement(
        child_id=p.child_id,
        academic_year=p.academic_year,
        education_form=p.education_form,
        institution=p.institution or "",
    )


def care_setting_to_proto(c: CareSettingIn) -> pb.CareSetting:
    """Render a care setting."""
    return pb.CareSetting(child_id=c.child_id, care_setting=c.care_setting, since=_iso(c.since))


def assessment_to_proto(a: AssessmentIn) -> pb.Assessment:
    """Render an assessment."""
    return pb.Assessment(
        child_id=a.child_id,
        assessment_date=_iso(a.assessment_date),
        commission=a.commission,
        impairment_band=a.impairment_band or "",
        icf_codes=list(a.icf_codes),
        diagnoses=list(a.diagnoses),
        functioning=[pb.Functioning(domain=f.domain, level=f.level) for f in a.functioning],
        recommended_form=a.recommended_form or "",
        supports=list(a.supports),
        accommodations=list(a.accommodations),
        next_review=_iso(a.next_review),
    )


def import_record_to_proto(r: ImportRecord) -> pb.ImportRecord:
    """Render an import record (used by the CLI to stream a file)."""
    msg = pb.ImportRecord(
        line=r.line, child=child_to_proto(r.child), placement=placement_to_proto(r.placement)
    )
    if r.care is not None:
        msg.care.CopyFrom(care_setting_to_proto(r.care))
    if r.assessment is not None:
        msg.assessment.CopyFrom(assessment_to_proto(r.assessment))
    return msg


def child_view_to_proto(v: ChildView) -> pb.ChildRecord:
    """Render everything held about a child."""
    return pb.ChildRecord(
        child=child_to_proto(v.child),
        placements=[placement_to_proto(p) for p in v.placements],
        care_settings=[care_setting_to_proto(c) for c in v.care_settings],
        assessments=[assessment_to_proto(a) for a in v.assessments],
        closed_on=_iso(v.closed_on),
        close_reason=v.close_reason or "",
    )


def child_view_from_proto(m: pb.ChildRecord) -> ChildView:
    """Validate a full child record (used by clients reading a child)."""
    return parse(
        ChildView,
        {
            "child": _child_data(m.child),
            "placements": [_placement_data(p) for p in m.placements],
            "care_settings": [_care_data(c) for c in m.care_settings],
            "assessments": [_assessment_data(a) for a in m.assessments],
            "closed_on": _opt(m.closed_on),
            "close_reason": _opt(m.close_reason),
        },
        what="child record",
        context=UNITS_CHECKED_BY_NODE,  # a client may not hold the node's country profile
    )


def noisy_table_to_proto(answer: NoisyAnswer) -> spb.NoisyTable:
    """Render a released noisy table."""
    return spb.NoisyTable(
        catalogue_version=answer.catalogue_version,
        table_id=answer.table.id,
        academic_year=answer.academic_year,
        dimensions=list(answer.table.dimensions),
        counts=answer.counts,
    )
