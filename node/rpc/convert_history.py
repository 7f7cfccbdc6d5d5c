"""Protobuf <-> validated models for a record's life: corrections, closings, histories.

Apart from node/rpc/convert.py (which keeps the records' own messages) so each stays a
readable size; the same rules hold: a request is validated into its model (InvalidInput
naming every bad field, never echoing a value), empty strings are "not given", and clients
use the ``*_to_proto`` / ``*_from_proto`` pairs to speak the same messages.
"""

from __future__ import annotations

from typing import Any

from childreg.history import CORRECTABLE, ChildHistory, Closure, Correction, ErasureIn
from childreg.models import Model, parse
from childreg.search import Reason
from childreg.v1 import records_pb2 as pb


def _opt(value: str) -> str | None:
    return value if value != "" else None


class _Why(Model):
    """Why a placement or care setting already recorded is changed."""

    reason: Reason | None = None


def change_reason_from_proto(reason: str) -> str | None:
    """The reason of a RecordPlacement or RecordCareSetting (None when not given)."""
    return parse(_Why, {"reason": _opt(reason)}, what="reason").reason


def correction_from_proto(m: pb.Correction) -> Correction:
    """Validate a Correction message."""
    data: dict[str, Any] = {"child_id": m.child_id, "reason": m.reason, "clear": tuple(m.clear)}
    data.update({f: _opt(getattr(m, f)) for f in CORRECTABLE})
    return parse(Correction, data, what="correction")


def correction_to_proto(c: Correction) -> pb.Correction:
    """Render a correction (a client's request)."""
    fields = {f: "" if getattr(c, f) is None else str(getattr(c, f)) for f in CORRECTABLE}
    return pb.Correction(child_id=c.child_id, reason=c.reason, clear=list(c.clear), **fields)


def closure_from_proto(m: pb.Closure) -> Closure:
    """Validate a Closure message."""
    data = {
        "child_id": m.child_id,
        "closed_on": m.closed_on,
        "reason": m.reason,
        "note": _opt(m.note),
    }
    return parse(Closure, data, what="closure")


def erasure_from_proto(m: pb.Erasure) -> ErasureIn:
    """Validate an Erasure message."""
    return parse(ErasureIn, {"child_id": m.child_id, "reason": m.reason}, what="erasure")


def erasure_to_proto(e: ErasureIn) -> pb.Erasure:
    """Render an erasure (a client's request)."""
    return pb.Erasure(child_id=e.child_id, reason=e.reason)


def closure_to_proto(c: Closure) -> pb.Closure:
    """Render a closing (a client's request)."""
    return pb.Closure(
        child_id=c.child_id, closed_on=c.closed_on.isoformat(), reason=c.reason, note=c.note or ""
    )


def history_to_proto(h: ChildHistory) -> pb.History:
    """Render a child's history."""
    return pb.History(
        child_id=h.child_id,
        entries=[
            pb.HistoryEntry(
                seq=e.seq,
                at=e.at,
                actor=e.actor,
                kind=e.kind,
                scope=e.scope,
                reason=e.reason or "",
                changes=[
                    pb.FieldChange(field=c.field, before=c.before, after=c.after) for c in e.changes
                ],
            )
            for e in h.entries
        ],
        closed_on="" if h.closed_on is None else h.closed_on.isoformat(),
        close_reason=h.close_reason or "",
    )


def history_from_proto(m: pb.History) -> ChildHistory:
    """Validate a history (a client reading one)."""
    entries = [
        {
            "seq": e.seq,
            "at": e.at,
            "actor": e.actor,
            "kind": e.kind,
            "scope": e.scope,
            "reason": _opt(e.reason),
            "changes": [
                {
                    "field": c.field,
                    "before": c.before if c.HasField("before") else None,
                    "after": c.after if c.HasField("after") else None,
                }
                for c in e.changes
            ],
        }
        for e in m.entries
    ]
    data = {
        "child_id": m.child_id,
        "entries": entries,
        "closed_on": _opt(m.closed_on),
        "close_reason": _opt(m.close_reason),
    }
    return parse(ChildHistory, data, what="history")
