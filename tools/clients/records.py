"""Department staff's calls to their node's RecordsService over mutual TLS (what `childreg
child …` and `childreg node show-child` run).

Why here: the command line takes nothing from the node but its composition root and
configuration (tests/unit/test_architecture.py); the client side of the node's messages
lives with the other clients. One function per RPC; each turns a failed call into a
:class:`~tools.clients.client.CliError` and validates what the node answers.

What a person typed is sent as typed (the ``…Fields`` dictionaries, protobuf's field
names, "" or absent for not given): the node validates every value, codes included, with
its own country profile, and a refusal comes back naming each bad field. The client does
not check codes against a list of its own, which could differ from the node's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict, TypeVar

import grpc

from childreg.history import ChildHistory
from childreg.models import ChildView
from childreg.search import Registration, SearchPage
from childreg.v1 import records_pb2 as pb
from childreg.v1 import records_pb2_grpc as pb_grpc
from node.rpc import convert, convert_history
from tools.clients.client import Endpoint, call
from tools.clients.receipts import write_receipt


class ChildFields(TypedDict, total=False):
    """A child's identifying record as typed (the Child message's fields)."""

    child_id: str
    national_id: str
    given_name: str
    family_name: str
    date_of_birth: str
    sex: str
    district: str
    guardian_name: str
    guardian_phone: str


class SearchFields(TypedDict, total=False):
    """A search as typed (the SearchRequest message's fields; at least one criterion)."""

    name: str
    date_of_birth: str
    district: str
    school: str
    national_id: str
    include_closed: bool
    page_size: int
    page_token: str


class AssessmentFields(TypedDict, total=False):
    """A PMPC assessment as typed (the Assessment message's fields but functioning)."""

    child_id: str
    assessment_date: str
    commission: str
    impairment_band: str
    icf_codes: Sequence[str]
    diagnoses: Sequence[str]
    recommended_form: str
    supports: Sequence[str]
    accommodations: Sequence[str]
    next_review: str


class PlacementFields(TypedDict, total=False):
    """A year's placement as typed (the Placement message's fields)."""

    child_id: str
    academic_year: str
    education_form: str
    institution: str
    reason: str  # why a placement recorded for that year is changed


class CareFields(TypedDict, total=False):
    """A care setting as typed (the CareSetting message's fields)."""

    child_id: str
    care_setting: str
    since: str
    reason: str  # why the setting recorded from that date is changed


Q = TypeVar("Q")
R = TypeVar("R")


def _records(
    endpoint: Endpoint,
    what: str,
    method: Callable[[pb_grpc.RecordsServiceStub], grpc.UnaryUnaryMultiCallable[Q, R]],
    request: Q,
) -> R:
    """One RecordsService call on a channel of its own (see :func:`call`)."""
    with endpoint.channel() as channel:
        return call(endpoint, what, method(pb_grpc.RecordsServiceStub(channel)), request)


def read_child(endpoint: Endpoint, child_id: str) -> ChildView:
    """Everything the node holds about one child."""
    record = _records(
        endpoint, "show-child", lambda stub: stub.GetChild, pb.ChildRef(child_id=child_id)
    )
    return convert.child_view_from_proto(record)


def find_children(endpoint: Endpoint, query: SearchFields) -> SearchPage:
    """One page of the children matching ``query``, best first."""
    reply = _records(endpoint, "find", lambda stub: stub.FindChildren, pb.SearchRequest(**query))
    return convert.search_page_from_proto(reply)


def register_child(
    endpoint: Endpoint, child: ChildFields, *, not_duplicate_reason: str | None = None
) -> Registration:
    """Register ``child``. Held back (``registered`` False, nothing written, the likely
    duplicates listed) when the node finds children it may be and no reason says it is
    none of them."""
    request = pb.RegisterChildRequest(
        child=pb.Child(**child), not_duplicate_reason=not_duplicate_reason or ""
    )
    reply = _records(endpoint, "register", lambda stub: stub.RegisterChild, request)
    return convert.registration_from_proto(reply)


def record_assessment(
    endpoint: Endpoint,
    assessment: AssessmentFields,
    functioning: Sequence[tuple[str, str]] = (),
) -> None:
    """Record a PMPC assessment; ``functioning`` is (domain, difficulty level) pairs."""
    request = pb.Assessment(
        **assessment, functioning=[pb.Functioning(domain=d, level=lv) for d, lv in functioning]
    )
    _records(endpoint, "assess", lambda stub: stub.RecordAssessment, request)


def record_placement(endpoint: Endpoint, placement: PlacementFields) -> None:
    """Record where a child is educated in an academic year."""
    _records(endpoint, "place", lambda stub: stub.RecordPlacement, pb.Placement(**placement))


def record_care_setting(endpoint: Endpoint, care: CareFields) -> None:
    """Record a change of a child's care setting, from its date."""
    _records(endpoint, "care", lambda stub: stub.RecordCareSetting, pb.CareSetting(**care))


class CorrectionFields(TypedDict, total=False):
    """A correction as typed (the Correction message's fields; "" or absent: unchanged)."""

    child_id: str
    reason: str
    given_name: str
    family_name: str
    national_id: str
    date_of_birth: str
    sex: str
    district: str
    guardian_name: str
    guardian_phone: str
    clear: Sequence[str]


class ClosureFields(TypedDict, total=False):
    """A closing as typed (the Closure message's fields)."""

    child_id: str
    closed_on: str
    reason: str
    note: str


def correct_child(endpoint: Endpoint, correction: CorrectionFields) -> None:
    """Correct some fields of a child's record, with the reason (kept in its history)."""
    _records(endpoint, "correct", lambda stub: stub.CorrectChild, pb.Correction(**correction))


def close_child(endpoint: Endpoint, closure: ClosureFields) -> None:
    """Close a child's record from a date on, with the reason."""
    _records(endpoint, "close", lambda stub: stub.CloseChild, pb.Closure(**closure))


@dataclass(frozen=True)
class Erased:
    """What the node answered to an erasure: the pseudonym, when, the receipt files."""

    child_id: str
    pseudonym: str
    erased_at: str
    files: list[str]


def erase_child(
    endpoint: Endpoint, child_id: str, reason: str, receipt_dir: Path | None, language: str = ""
) -> Erased:
    """Erase a child's record (crypto-shredding); the guardian's receipt, in ``language``
    ("" for the profile's first), is written as ``erasure-<pseudonym>.html``, ``.pdf`` and
    ``.json`` into ``receipt_dir`` (the default receipt directory when None)."""
    reply = _records(
        endpoint,
        "erase",
        lambda stub: stub.EraseChild,
        pb.Erasure(child_id=child_id, reason=reason, language=language),
    )
    files = write_receipt(
        receipt_dir,
        f"erasure-{reply.pseudonym}",
        reply.receipt_html,
        reply.receipt_pdf,
        reply.receipt_json,
    )
    return Erased(child_id, reply.pseudonym, reply.erased_at, files)


def read_history(endpoint: Endpoint, child_id: str) -> ChildHistory:
    """Every recorded step of a child's record, oldest first."""
    reply = _records(
        endpoint, "history", lambda stub: stub.GetHistory, pb.ChildRef(child_id=child_id)
    )
    return convert_history.history_from_proto(reply)
