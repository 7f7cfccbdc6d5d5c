"""Writing and reading a child's history: every step, with who, when, why and what changed.

Why: correcting a record must not lose what it said before, and a closed record must stay
readable — staff, auditors and guardians ask "what did this record say, and who changed
it?". Each step's details (the fields it changed, before and after, its scope and reason)
are canonical JSON sealed under the child's key, bound to the child and to the step's
number, kind, time and actor (context ``history:<seq>:<kind>:<at>:<actor>``), so the
history is exactly as sealed as the record: a name is as hidden in its old versions as in
the current one, no step's details can be moved to another step or child, and a step
relabelled (another kind, time or actor) no longer opens. The store keeps who (the actor
of the action's audit leaf, from :func:`node.audit.actor.acting`), when and what kind of
step in the clear.

A bulk import writes one detail-less ``imported`` step per child (sealing a second copy of
every row would slow imports for nothing): its values are the record's first version,
found by undoing the later corrections, which keep each field's value before and after.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence

from childreg.audit.leaf import utc_now
from childreg.errors import KeyProblem
from childreg.history import ChildHistory, FieldChange, HistoryEntry
from node.audit.actor import acting
from node.crypto.keys import Keyring
from node.store.base import RecordStore, StoredEvent

#: A value as a history keeps it: text (dates in ISO form), or None for "not given".
Value = str | None


def context(seq: int, kind: str, actor: str, at: str) -> str:
    """The sealing context of one step's details: they open only for this step number,
    kind, actor and time, so none of the step's clear columns can be changed unnoticed."""
    return f"history:{seq}:{kind}:{at}:{actor}"


def text(value: object) -> Value:
    """A field's value as the history keeps it."""
    if value is None:
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def changed(
    before: Mapping[str, object], after: Mapping[str, object]
) -> dict[str, tuple[Value, Value]]:
    """The fields whose values differ, each with its value before and after."""
    out: dict[str, tuple[Value, Value]] = {}
    for name in dict.fromkeys([*before, *after]):
        old, new = text(before.get(name)), text(after.get(name))
        if old != new:
            out[name] = (old, new)
    return out


class HistoryBook:
    """Appends sealed steps to children's histories and reads them back."""

    def __init__(self, store: RecordStore, keyring: Keyring) -> None:
        self._store = store
        self._keys = keyring

    def record(
        self,
        child_id: str,
        key: bytes,
        kind: str,
        changes: Mapping[str, tuple[Value, Value]],
        *,
        scope: str = "",
        reason: str | None = None,
    ) -> None:
        """Append one step (inside the caller's transaction)."""
        seq = self._store.last_event_seq(child_id) + 1
        details = {
            "changes": [[name, old, new] for name, (old, new) in changes.items()],
            "reason": reason,
            "scope": scope,
        }
        plain = json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        at, actor = utc_now(), acting()
        sealed = self._keys.seal(key, child_id, context(seq, kind, actor, at), plain.encode())
        self._store.add_event(StoredEvent(child_id, seq, at, actor, kind, sealed))

    def imported(self, child_ids: Sequence[str]) -> None:
        """Append the detail-less first step of children just imported."""
        self._store.add_first_events(child_ids, utc_now(), acting(), "imported")

    def read(self, child_id: str, key: bytes, current: Mapping[str, object]) -> ChildHistory:
        """The child's history; ``current`` is its record's fields as they are now."""
        entries = [self._entry(child_id, key, e) for e in self._store.events(child_id)]
        entries = _with_first_version(entries, current)
        closure = self._store.closure(child_id)
        return ChildHistory(
            child_id=child_id,
            entries=tuple(entries),
            closed_on=None if closure is None else closure.closed_on,
            close_reason=None if closure is None else closure.reason,
        )

    def _entry(self, child_id: str, key: bytes, e: StoredEvent) -> HistoryEntry:
        details: dict[str, object] = {"changes": [], "reason": None, "scope": ""}
        if e.sealed is not None:
            where = context(e.seq, e.kind, e.actor, e.at)
            details = json.loads(self._keys.unseal(key, child_id, where, e.sealed))
        elif (e.kind, e.seq) != ("imported", 1):  # only an import's first step has none
            raise KeyProblem("a step of the child's history lost its sealed details")
        changes = details["changes"]
        assert isinstance(changes, list)
        return HistoryEntry(
            seq=e.seq,
            at=e.at,
            actor=e.actor,
            kind=e.kind,  # the store keeps what record() wrote
            scope=str(details["scope"]),
            reason=details["reason"] if isinstance(details["reason"], str) else None,
            changes=tuple(FieldChange(field=f, before=b, after=a) for f, b, a in changes),
        )


def _with_first_version(
    entries: list[HistoryEntry], current: Mapping[str, object]
) -> list[HistoryEntry]:
    """The entries, an ``imported`` step given the record's first version: the current
    values with every later correction undone, newest first."""
    if not entries or entries[0].kind != "imported" or entries[0].changes:
        return entries
    first = {name: text(value) for name, value in current.items()}
    for entry in reversed(entries[1:]):
        if entry.kind == "corrected":
            for change in entry.changes:
                first[change.field] = change.before
    opened = entries[0].model_copy(
        update={
            "changes": tuple(
                FieldChange(field=name, after=value)
                for name, value in first.items()
                if value is not None
            )
        }
    )
    return [opened, *entries[1:]]
