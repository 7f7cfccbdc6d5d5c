"""The auditor's side of a node's tamper-evident access log: fetch, verify, remember, select.

Why: "who read this child's record, when and why" is only an answer if the auditor can
check it was not edited afterwards. Everything here fetches the node's signed checkpoint
and every leaf, and trusts none of it until ``childreg.audit.verify`` has checked the
signature against the node's pinned key and recomputed the root from the leaf bytes; with
a state directory it also proves that the log only grew since the last check, and keeps
both signed checkpoints as evidence when it did not. The judgement lives in
``childreg.audit.verify``; this module fetches, keeps the state directory, asks the
witnesses, filters and summarises verified leaves. A witness may hold a larger size than
was fetched (the log grew meanwhile, if only by the auditor's own reads): then the node is
asked for the consistency proof up to that size, and only a node that cannot give one is
called a rewriter. Calls the node's per-caller rate limit refuses are retried after a wait
(:func:`paced`). Evidence bundles are written by :mod:`tools.clients.audit_bundle`; what
`childreg audit` prints is made in :mod:`tools.clients.audit_views`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import grpc
from rich.console import Console
from rich.progress import Progress

from childreg.audit.checkpoint import Checkpoint
from childreg.audit.leaf import ACTIONS, AuditEvent
from childreg.audit.note import NoteVerifier, note_text
from childreg.audit.verify import (
    BAD_SIGNATURE,
    Problem,
    VerificationReport,
    check_witnessed,
    verify_log,
)
from childreg.errors import ChildregError, InvalidInput
from childreg.key_transition import LogKeys
from childreg.pki import SpiffeId
from childreg.v1 import audit_pb2 as apb
from childreg.v1 import audit_pb2_grpc as apb_grpc
from tools.clients.client import (
    EXIT_UNVERIFIED,
    EXIT_USAGE,
    CliError,
    Endpoint,
    call,
    rpc_failure,
)

Q = TypeVar("Q")
R = TypeVar("R")

#: Leaves asked for per GetEntries call (the node's limit).
PAGE = 1000
#: Tries of one call the node's rate limit refused (RESOURCE_EXHAUSTED) before giving up;
#: the waits between them double from PACE_FIRST seconds up to PACE_MOST.
PACE_TRIES = 10
PACE_FIRST = 0.05
PACE_MOST = 2.0


def paced(
    endpoint: Endpoint, what: str, method: grpc.UnaryUnaryMultiCallable[Q, R], request: Q
) -> R:
    """:func:`call`, waiting and trying again while the node's per-caller rate limit
    refuses it (childreg/ratelimit.py refills its bucket continuously)."""
    wait = PACE_FIRST
    for _ in range(PACE_TRIES - 1):
        try:
            return method(request, timeout=endpoint.timeout)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise rpc_failure(exc, what, endpoint.address) from None
        time.sleep(wait)
        wait = min(2 * wait, PACE_MOST)
    return call(endpoint, what, method, request)


def pinned(key: str, option: str = "--node-key") -> NoteVerifier:
    """A log's verifier from its key string; a usage error if malformed."""
    try:
        return NoteVerifier.from_key_string(key.strip())
    except InvalidInput as exc:
        raise CliError(
            f"{option}: {exc}",
            code=EXIT_USAGE,
            hint="ask the node's operator for the log's verifier key (<origin>+<id>+<key>)",
        ) from None


@dataclass(frozen=True)
class Fetched:
    """What the node served: its checkpoint, the leaves under it, a consistency proof."""

    note: str
    leaves: list[bytes]
    consistency: list[bytes] | None = None
    transitions: tuple[str, ...] = ()  # the log key's transition statements, oldest first


def size_of(note: str) -> int | None:
    """A note's tree size WITHOUT verifying it: only to decide what to fetch."""
    try:
        return Checkpoint.parse(note_text(note)).size
    except InvalidInput:
        return None


def fetch(endpoint: Endpoint, previous: str | None, progress: Console | None = None) -> Fetched:
    """The latest checkpoint, all its leaves (pages of PAGE), the proof from ``previous``;
    a progress bar on ``progress`` while fetching more than a page."""
    with endpoint.channel() as channel:
        stub = apb_grpc.AuditLogServiceStub(channel)
        reply = paced(endpoint, "checkpoint", stub.LatestCheckpoint, apb.CheckpointRequest())
        size = size_of(reply.note) or 0
        leaves: list[bytes] = []
        disable = progress is None or size <= PAGE
        with Progress(console=progress, transient=True, disable=disable) as bar:
            task = bar.add_task("fetching leaves", total=size)
            while len(leaves) < size:
                request = apb.EntriesRequest(start=len(leaves), end=min(size, len(leaves) + PAGE))
                page = paced(endpoint, "entries", stub.GetEntries, request)
                if page.start != request.start or not page.leaves:
                    break  # a short log: verification names it
                leaves += page.leaves[: request.end - request.start]
                bar.update(task, completed=len(leaves))
        old = None if previous is None else size_of(previous)
        proof = None
        if old is not None and old <= size:
            asked = apb.ConsistencyRequest(old_size=old, new_size=size)
            proof = list(paced(endpoint, "consistency", stub.ConsistencyProof, asked).hashes)
    return Fetched(reply.note, leaves, proof, tuple(reply.key_transitions))


class StateDir:
    """The auditor's memory of one log: the last checkpoint that verified, and evidence."""

    def __init__(self, directory: Path, origin: str) -> None:
        safe = re.sub(r"[^a-z0-9._-]", "_", origin.lower())
        self.directory = directory
        self.stem = f"{safe}-{hashlib.sha256(origin.encode()).hexdigest()[:8]}"
        self.path = directory / f"{self.stem}.checkpoint"

    def previous(self) -> str | None:
        """The last verified checkpoint note, if any."""
        return self.path.read_text(encoding="utf-8") if self.path.exists() else None

    def save(self, note: str) -> None:
        """Keep ``note`` as the last verified checkpoint (atomically)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(note, encoding="utf-8")
        os.replace(tmp, self.path)

    def keep_evidence(self, old: str, new: str, report: VerificationReport) -> Path:
        """Save both signed notes and the report; the stored checkpoint stays the old one."""
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        folder = self.directory / "evidence" / f"{self.stem}-{stamp}"
        folder.mkdir(parents=True)
        (folder / "previous.checkpoint").write_text(old, encoding="utf-8")
        (folder / "new.checkpoint").write_text(new, encoding="utf-8")
        (folder / "report.json").write_text(
            json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8"
        )
        return folder


@dataclass(frozen=True)
class WitnessRef:
    """A witness the auditor asks what it cosigned: where it is and its pinned key."""

    endpoint: Endpoint
    verifier: NoteVerifier


def witness_refs(
    addresses: Sequence[str],
    keys: Sequence[str],
    server_names: Sequence[str] | None,
    identity: Path,
    timeout: float,
) -> list[WitnessRef]:
    """The witnesses named by repeated --witness, --witness-key, --witness-server-name."""
    names: list[str | None] = list(server_names) if server_names else [None] * len(addresses)
    if not (len(addresses) == len(keys) == len(names)):
        raise CliError(
            "give one --witness-key (and --witness-server-name, if any) per --witness",
            code=EXIT_USAGE,
        )
    return [
        WitnessRef(Endpoint(a, identity, n, timeout), pinned(k))
        for a, k, n in zip(addresses, keys, names, strict=True)
    ]


@dataclass(frozen=True)
class Witnessed:
    """What the witnesses hold, checked: the problems, a contradicting note, the sizes."""

    problems: list[Problem]
    contradicted: str | None
    sizes: tuple[int, ...]
    #: Each witnessed note with the node's proof from the fetched size, if it is larger.
    notes: tuple[tuple[str, list[bytes] | None], ...] = ()


def _extension_proof(endpoint: Endpoint, old_size: int, new_size: int) -> list[bytes] | None:
    """The node's consistency proof from ``old_size`` to ``new_size``; None if refused."""
    asked = apb.ConsistencyRequest(old_size=old_size, new_size=new_size)
    try:
        with endpoint.channel() as channel:
            stub = apb_grpc.AuditLogServiceStub(channel)
            return list(paced(endpoint, "consistency", stub.ConsistencyProof, asked).hashes)
    except CliError:
        return None  # a node that cannot prove it: check_witnessed names the rewrite


def witnessed_problems(
    witnesses: Sequence[WitnessRef],
    fetched: Fetched,
    verifier: NoteVerifier,
    endpoint: Endpoint | None = None,
    keys: LogKeys | None = None,
) -> Witnessed:
    """What each witness holds, checked against the leaves the node served; a witnessed
    size beyond them must be proved an extension by the node at ``endpoint``. ``keys``
    gives the node's key for each witnessed size (after a rotation of its log key)."""
    problems: list[Problem] = []
    contradicted: str | None = None
    sizes: list[int] = []
    notes: list[tuple[str, list[bytes] | None]] = []
    for w in witnesses:
        with w.endpoint.channel() as channel:
            state = call(
                w.endpoint,
                "witness state",
                apb_grpc.WitnessServiceStub(channel).GetState,
                apb.WitnessStateRequest(origin=verifier.name),
            )
        if not state.note:
            continue
        held = size_of(state.note)
        proof = None
        if held is not None:
            sizes.append(held)
            if held > len(fetched.leaves) and endpoint is not None:
                proof = _extension_proof(endpoint, len(fetched.leaves), held)
        notes.append((state.note, proof))
        node_key = verifier if keys is None else keys.at_note(state.note)
        found = check_witnessed(fetched.leaves, state.note, node_key, w.verifier, proof)
        if found and contradicted is None:
            contradicted = state.note
        problems += found
    return Witnessed(problems, contradicted, tuple(sizes), tuple(notes))


@dataclass(frozen=True)
class Verified:
    """A verification of a node's whole log: the report, what was fetched, evidence kept."""

    report: VerificationReport
    fetched: Fetched
    evidence: Path | None
    witnessed: Witnessed | None = None
    previous: str | None = None  # the checkpoint verified last time (--state), if any


def fetch_verified(
    endpoint: Endpoint,
    verifier: NoteVerifier,
    state: Path | None,
    witnesses: Sequence[WitnessRef] = (),
    progress: Console | None = None,
) -> Verified:
    """Fetch and verify the whole log (against the saved state and what the witnesses hold,
    if any); update the state."""
    held = None if state is None else StateDir(state, verifier.name)
    previous = None if held is None else held.previous()
    fetched = fetch(endpoint, previous, progress)
    try:  # the pinned key, or the one its transition statements lead to, for each size
        keys = LogKeys(verifier, fetched.transitions)
    except ChildregError as exc:
        problem = Problem(BAD_SIGNATURE, f"the node's key-transition statements: {exc}")
        report = VerificationReport(verifier.name, None, None, (problem,))
        return Verified(report, fetched, None, None, previous)
    report = verify_log(
        fetched.note,
        fetched.leaves,
        keys.at_note(fetched.note),
        origin=verifier.name,
        previous=previous,
        consistency=fetched.consistency,
        previous_verifier=None if previous is None else keys.at_note(previous),
    )
    held_by = witnessed_problems(witnesses, fetched, verifier, endpoint, keys)
    witnessed = held_by.contradicted
    if held_by.problems:
        report = replace(report, problems=(*report.problems, *held_by.problems))
    evidence = None
    if held is not None and witnessed is not None:
        evidence = held.keep_evidence(witnessed, fetched.note, report)
    elif held is not None and previous is not None and report.rewritten:
        evidence = held.keep_evidence(previous, fetched.note, report)
    elif held is not None and report.ok:
        held.save(fetched.note)
    return Verified(report, fetched, evidence, held_by, previous)


def report_json(report: VerificationReport, evidence: Path | None) -> dict[str, Any]:
    """A verification report for ``--json``, with where its evidence was kept."""
    return report.to_dict() | {"evidence": None if evidence is None else str(evidence)}


def finish(report: VerificationReport, what: str) -> None:
    """CliError EXIT_UNVERIFIED (naming the problems' codes) unless ``report`` is ok."""
    if not report.ok:
        reasons = ", ".join(dict.fromkeys(p.code for p in report.problems))
        hint = "keep the evidence; the node's operator and the supervisory authority must know"
        raise CliError(f"{what} did not verify ({reasons})", code=EXIT_UNVERIFIED, hint=hint)


# --- selecting and summarising verified leaves --------------------------------------------


@dataclass(frozen=True)
class Filters:
    """What `audit search` looks for; every field None means any (times inclusive, UTC)."""

    subject: str | None = None
    actor: str | None = None
    action: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def filters(
    subject: str | None, actor: str | None, action: str | None, since: str | None,
    until: str | None,
) -> Filters:  # fmt: skip
    """The options of `audit search`, checked (a usage error names the bad option)."""
    if subject is not None and not re.fullmatch(r"[0-9a-f]{64}", subject.lower()):
        raise CliError("--subject: a pseudonym is 64 hexadecimal digits", code=EXIT_USAGE)
    if action is not None and action not in ACTIONS:
        raise CliError(f"--action: not an audit action: {action}", code=EXIT_USAGE)
    start, end = _time(since, "--since"), _time(until, "--until")
    return Filters(None if subject is None else subject.lower(), actor, action, start, end)


def _time(text: str | None, option: str) -> dt.datetime | None:
    if text is None:
        return None
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"{option}: not an ISO 8601 date or time: {text}", code=EXIT_USAGE) from None
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


def _leaf_time(event: AuditEvent) -> dt.datetime:
    return dt.datetime.strptime(event.time, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


def select(events: Sequence[AuditEvent], wanted: Filters) -> list[AuditEvent]:
    """The events matching every filter given."""
    return [
        e
        for e in events
        if (wanted.subject is None or e.subject == wanted.subject)
        and (wanted.actor is None or e.actor == wanted.actor)
        and (wanted.action is None or e.action == wanted.action)
        and (wanted.since is None or _leaf_time(e) >= wanted.since)
        and (wanted.until is None or _leaf_time(e) <= wanted.until)
    ]


def access_report(events: Sequence[AuditEvent], school_limit: int) -> dict[str, Any]:
    """Accesses per caller, action and purpose; denials; anomalies (as JSON-ready data)."""
    counts = Counter((e.actor, e.action, e.purpose) for e in events)
    subjects: defaultdict[str, set[str]] = defaultdict(set)
    for e in events:
        if e.subject and _role(e.actor) == "school":
            subjects[e.actor].add(e.subject)
    anomalies: list[dict[str, Any]] = [
        {"kind": "school-many-children", "actor": a, "subjects": len(s), "limit": school_limit}
        for a, s in sorted(subjects.items())
        if len(s) > school_limit
    ]
    anomalies += [
        {"kind": "breakglass", **asdict(e)} for e in events if e.action == "breakglass.read"
    ]
    return {
        "accesses": [
            {"actor": a, "action": act, "purpose": p, "count": n}
            for (a, act, p), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "denials": [asdict(e) for e in events if e.outcome != "OK" or e.action == "denied"],
        "anomalies": anomalies,
    }


def _role(actor: str) -> str:
    try:
        return SpiffeId.parse(actor).role
    except InvalidInput:
        return ""
