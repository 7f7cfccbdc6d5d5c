"""`childreg audit …`: what an auditor runs against a node's tamper-evident access log.

Why: "who read this child's record, when and why" is only an answer if the auditor can
check it was not edited afterwards. Every command fetches the node's signed checkpoint
and every leaf, and trusts none of it until ``childreg.audit.verify`` has checked the
signature against the node's pinned key and recomputed the root from the leaf bytes;
with ``--state DIR`` it also proves that the log only grew since the last check, and
keeps both signed checkpoints as evidence when it did not. The judgement lives in
``childreg.audit.verify``; this module fetches, keeps the state directory, filters and
summarises verified leaves, and prints.

Exit codes: those of docs/cli.md, and EXIT_UNVERIFIED (8) when a log or an evidence
bundle does not verify (the report printed says why).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Annotated, Any, TypeVar

import grpc
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from childreg.audit.checkpoint import Checkpoint
from childreg.audit.leaf import ACTIONS, AuditEvent, utc_now
from childreg.audit.note import NoteVerifier, note_text
from childreg.audit.verify import (
    Problem,
    VerificationReport,
    bundle_text,
    check_witnessed,
    make_bundle,
    verify_bundle,
    verify_log,
)
from childreg.errors import InvalidInput
from childreg.pki import SpiffeId
from childreg.v1 import audit_pb2 as apb
from childreg.v1 import audit_pb2_grpc as apb_grpc
from tools.cli.options import IdentityOpt, JsonOpt, ServerNameOpt, TimeoutOpt
from tools.clients.client import EXIT_UNVERIFIED, EXIT_USAGE, CliError, Endpoint, rpc_failure

app = typer.Typer(
    help="Auditors' tools: verify a node's access log, search it, report, keep evidence.",
    no_args_is_help=True,
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

#: Exit code when a log or an evidence bundle does not verify.
#: Leaves asked for per GetEntries call (the node's limit).
PAGE = 1000

NodeOpt = Annotated[
    str, typer.Option("--node", envvar="CHILDREG_NODE", help="The node's address, host:port.")
]
NodeKeyOpt = Annotated[
    str,
    typer.Option(
        "--node-key", envvar="CHILDREG_NODE_KEY",
        help="The node's pinned audit-log verifier key (<origin>+<key id>+<base64 key>).",
    ),
]  # fmt: skip
StateOpt = Annotated[
    Path | None,
    typer.Option(
        "--state", file_okay=False,
        help="Directory keeping the last verified checkpoint per log (and any evidence).",
    ),
]  # fmt: skip

Q = TypeVar("Q")
R = TypeVar("R")


def pinned(key: str) -> NoteVerifier:
    """The node's verifier from its key string; a usage error if malformed."""
    try:
        return NoteVerifier.from_key_string(key.strip())
    except InvalidInput as exc:
        raise CliError(
            f"--node-key: {exc}",
            code=EXIT_USAGE,
            hint="ask the node's operator for the log's verifier key (<origin>+<id>+<key>)",
        ) from None


@dataclass(frozen=True)
class Fetched:
    """What the node served: its checkpoint, the leaves under it, a consistency proof."""

    note: str
    leaves: list[bytes]
    consistency: list[bytes] | None = None


def _size_of(note: str) -> int | None:
    """A note's tree size WITHOUT verifying it: only to decide what to fetch."""
    try:
        return Checkpoint.parse(note_text(note)).size
    except InvalidInput:
        return None


def _call(
    endpoint: Endpoint, what: str, method: grpc.UnaryUnaryMultiCallable[Q, R], request: Q
) -> R:
    """One call with the endpoint's deadline, its failure turned into advice."""
    try:
        return method(request, timeout=endpoint.timeout)
    except grpc.RpcError as exc:
        raise rpc_failure(exc, what, endpoint.address) from None


def fetch(endpoint: Endpoint, previous: str | None) -> Fetched:
    """The latest checkpoint, all its leaves (pages of PAGE), the proof from ``previous``."""
    with endpoint.channel() as channel:
        stub = apb_grpc.AuditLogServiceStub(channel)
        reply = _call(endpoint, "checkpoint", stub.LatestCheckpoint, apb.CheckpointRequest())
        size = _size_of(reply.note) or 0
        leaves: list[bytes] = []
        with Progress(console=err, transient=True, disable=size <= PAGE) as bar:
            task = bar.add_task("fetching leaves", total=size)
            while len(leaves) < size:
                request = apb.EntriesRequest(start=len(leaves), end=min(size, len(leaves) + PAGE))
                page = _call(endpoint, "entries", stub.GetEntries, request)
                if page.start != request.start or not page.leaves:
                    break  # a short log: verification names it
                leaves += page.leaves[: request.end - request.start]
                bar.update(task, completed=len(leaves))
        old = None if previous is None else _size_of(previous)
        proof = None
        if old is not None and old <= size:
            asked = apb.ConsistencyRequest(old_size=old, new_size=size)
            proof = list(_call(endpoint, "consistency", stub.ConsistencyProof, asked).hashes)
    return Fetched(reply.note, leaves, proof)


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


def witnessed_problems(
    witnesses: Sequence[WitnessRef], fetched: Fetched, verifier: NoteVerifier
) -> tuple[list[Problem], str | None]:
    """What each witness holds, checked against the leaves the node served."""
    problems: list[Problem] = []
    contradicted: str | None = None
    for w in witnesses:
        with w.endpoint.channel() as channel:
            state = _call(
                w.endpoint,
                "witness state",
                apb_grpc.WitnessServiceStub(channel).GetState,
                apb.WitnessStateRequest(origin=verifier.name),
            )
        if not state.note:
            continue
        found = check_witnessed(fetched.leaves, state.note, verifier, w.verifier)
        if found and contradicted is None:
            contradicted = state.note
        problems += found
    return problems, contradicted


def fetch_verified(
    endpoint: Endpoint,
    verifier: NoteVerifier,
    state: Path | None,
    witnesses: Sequence[WitnessRef] = (),
) -> tuple[VerificationReport, Fetched, Path | None]:
    """Fetch and verify the whole log (against the saved state and what the witnesses hold,
    if any); update the state."""
    held = None if state is None else StateDir(state, verifier.name)
    previous = None if held is None else held.previous()
    fetched = fetch(endpoint, previous)
    report = verify_log(
        fetched.note, fetched.leaves, verifier, previous=previous, consistency=fetched.consistency
    )
    extra, witnessed = witnessed_problems(witnesses, fetched, verifier)
    if extra:
        report = replace(report, problems=(*report.problems, *extra))
    evidence = None
    if held is not None and witnessed is not None:
        evidence = held.keep_evidence(witnessed, fetched.note, report)
    elif held is not None and previous is not None and report.rewritten:
        evidence = held.keep_evidence(previous, fetched.note, report)
    elif held is not None and report.ok:
        held.save(fetched.note)
    return report, fetched, evidence


def show_report(report: VerificationReport, evidence: Path | None = None) -> None:
    """Print the verdict for a person."""
    verdict = "[green]OK[/]" if report.ok else "[red]FAILED[/]"
    out.print(f"{verdict} audit log {escape(report.origin)}")
    if report.size is not None:
        out.print(f"  checkpoint: {report.size} leaves, root {report.to_dict()['root']}")
    if report.previous_size is not None:
        out.print(f"  previously verified: {report.previous_size} leaves")
    for p in report.problems:
        out.print(f"  [red]{p.code}[/]: {escape(p.message)}")
    if evidence is not None:
        out.print(f"  evidence kept in {evidence}")


def finish(report: VerificationReport, what: str) -> None:
    """Exit EXIT_UNVERIFIED (with one line on standard error) unless ``report`` is ok."""
    if not report.ok:
        reasons = ", ".join(dict.fromkeys(p.code for p in report.problems))
        hint = "keep the evidence; the node's operator and the supervisory authority must know"
        raise CliError(f"{what} did not verify ({reasons})", code=EXIT_UNVERIFIED, hint=hint)


def checked(
    node: str, node_key: str, identity: Path, server_name: str | None, timeout: float,
    state: Path | None, as_json: bool, *, show_ok: bool, witnesses: Sequence[WitnessRef] = (),
) -> VerificationReport:  # fmt: skip
    """Fetch and verify; print the verdict (always when it failed), exit if it failed."""
    endpoint = Endpoint(node, identity, server_name, timeout)
    report, _, evidence = fetch_verified(endpoint, pinned(node_key), state, witnesses)
    if show_ok or not report.ok:
        if as_json:
            data = report.to_dict() | {"evidence": None if evidence is None else str(evidence)}
            typer.echo(json.dumps(data, indent=2))
        else:
            show_report(report, evidence)
    finish(report, f"the audit log of {report.origin}")
    return report


@app.command()
def verify(
    node: NodeOpt,
    node_key: NodeKeyOpt,
    identity: IdentityOpt,
    server_name: ServerNameOpt = None,
    state: StateOpt = None,
    witness: Annotated[
        list[str] | None,
        typer.Option(help="A witness's address (repeatable; with --witness-key each)."),
    ] = None,
    witness_key: Annotated[
        list[str] | None,
        typer.Option(help="That witness's pinned verifier key string, in the same order."),
    ] = None,
    witness_server_name: Annotated[
        list[str] | None,
        typer.Option(help="That witness's certificate DNS name, in the same order."),
    ] = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 60.0,
) -> None:
    """Fetch the whole log, verify signature, root, leaves and (with --state) consistency;
    with --witness, also that the node showed the history its witnesses cosigned."""
    addresses, keys = witness or [], witness_key or []
    names: list[str | None] = (
        list(witness_server_name) if witness_server_name else [None] * len(addresses)
    )
    if not (len(addresses) == len(keys) == len(names)):
        raise CliError(
            "give one --witness-key (and --witness-server-name, if any) per --witness",
            code=EXIT_USAGE,
        )
    refs = [
        WitnessRef(Endpoint(a, identity, n, timeout), pinned(k))
        for a, k, n in zip(addresses, keys, names, strict=True)
    ]
    checked(
        node, node_key, identity, server_name, timeout, state, as_json, show_ok=True,
        witnesses=refs,
    )  # fmt: skip


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


def select(
    events: Sequence[AuditEvent],
    *,
    subject: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> list[AuditEvent]:
    """The events matching every filter given (times inclusive, in UTC)."""
    return [
        e
        for e in events
        if (subject is None or e.subject == subject)
        and (actor is None or e.actor == actor)
        and (action is None or e.action == action)
        and (since is None or _leaf_time(e) >= since)
        and (until is None or _leaf_time(e) <= until)
    ]


def event_table(title: str, events: Sequence[AuditEvent]) -> Table:
    """Events as a readable table (the pseudonym shortened; --json gives it whole)."""
    table = Table(title=title)
    grants = any(e.grant for e in events)
    columns = ("seq", "time", "actor", "action", "purpose", "grant", "subject", "outcome")
    for column in columns if grants else tuple(c for c in columns if c != "grant"):
        table.add_column(column, overflow="fold")
    for e in events:
        subject = f"{e.subject[:12]}…" if e.subject else ""
        row = [str(e.seq), e.time, e.actor, e.action, e.purpose, e.grant, subject, e.outcome]
        table.add_row(*(row if grants else row[:5] + row[6:]))
    return table


@app.command()
def search(
    node: NodeOpt,
    node_key: NodeKeyOpt,
    identity: IdentityOpt,
    subject: Annotated[
        str | None, typer.Option(help="A child's pseudonym (64 hex digits, from the department).")
    ] = None,
    actor: Annotated[str | None, typer.Option(help="A caller's SPIFFE id.")] = None,
    action: Annotated[
        str | None, typer.Option(help=f"One of: {', '.join(sorted(ACTIONS))}.")
    ] = None,
    since: Annotated[str | None, typer.Option(help="From this ISO time (UTC if no zone).")] = None,
    until: Annotated[str | None, typer.Option(help="Up to this ISO time (inclusive).")] = None,
    server_name: ServerNameOpt = None,
    state: StateOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 60.0,
) -> None:
    """Verify the log, then list the leaves about a child, a caller, an action or a period."""
    if subject is not None and not re.fullmatch(r"[0-9a-f]{64}", subject.lower()):
        raise CliError("--subject: a pseudonym is 64 hexadecimal digits", code=EXIT_USAGE)
    if action is not None and action not in ACTIONS:
        raise CliError(f"--action: not an audit action: {action}", code=EXIT_USAGE)
    start, end = _time(since, "--since"), _time(until, "--until")
    report = checked(node, node_key, identity, server_name, timeout, state, as_json, show_ok=False)
    found = select(
        report.events,
        subject=None if subject is None else subject.lower(),
        actor=actor,
        action=action,
        since=start,
        until=end,
    )
    if as_json:
        data = {"verification": report.to_dict(), "matches": [asdict(e) for e in found]}
        typer.echo(json.dumps(data, indent=2))
        return
    show_report(report)
    out.print(event_table(f"{len(found)} matching leaves of {report.size}", found))


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


@app.command("report")
def report_command(
    node: NodeOpt,
    node_key: NodeKeyOpt,
    identity: IdentityOpt,
    school_limit: Annotated[
        int, typer.Option(help="Flag a school reading more distinct children than this.", min=0)
    ] = 20,
    server_name: ServerNameOpt = None,
    state: StateOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 60.0,
) -> None:
    """Verify the log, then summarise: accesses per caller and purpose, denials, anomalies."""
    verified = checked(
        node, node_key, identity, server_name, timeout, state, as_json, show_ok=False
    )
    data = access_report(verified.events, school_limit)
    if as_json:
        typer.echo(json.dumps({"verification": verified.to_dict(), **data}, indent=2))
        return
    show_report(verified)
    table = Table(title="Accesses per caller, action and purpose")
    for column in ("actor", "action", "purpose", "count"):
        table.add_column(column, overflow="fold", justify="right" if column == "count" else "left")
    for row in data["accesses"]:
        table.add_row(row["actor"], row["action"], row["purpose"] or "-", str(row["count"]))
    out.print(table)
    denials = [AuditEvent(**d) for d in data["denials"]]
    out.print(event_table(f"Denials ({len(denials)})", denials))
    anomalies = Table(title=f"Anomalies ({len(data['anomalies'])})")
    anomalies.add_column("kind")
    anomalies.add_column("detail", overflow="fold")
    for a in data["anomalies"]:
        if a["kind"] == "breakglass":
            detail = f"leaf {a['seq']} at {a['time']} by {a['actor']}, purpose {a['purpose']!r}"
        else:
            detail = f"{a['actor']} read {a['subjects']} children (limit {a['limit']})"
        anomalies.add_row(a["kind"], detail)
    out.print(anomalies)


@app.command()
def bundle(
    node: NodeOpt,
    node_key: NodeKeyOpt,
    identity: IdentityOpt,
    out_file: Annotated[Path, typer.Option("--out", help="The evidence bundle to write (JSON).")],
    leaf: Annotated[
        list[int] | None, typer.Option(help="Add this leaf's inclusion proof (repeatable).")
    ] = None,
    server_name: ServerNameOpt = None,
    state: StateOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 60.0,
) -> None:
    """Write an evidence bundle that `audit verify-bundle` checks offline (even if it fails)."""
    verifier = pinned(node_key)
    endpoint = Endpoint(node, identity, server_name, timeout)
    verified, fetched, evidence = fetch_verified(endpoint, verifier, state)
    size = len(fetched.leaves)
    wanted = sorted(set(leaf or []))
    if any(not 0 <= i < size for i in wanted):
        raise CliError(f"--leaf: the log holds {size} leaves, numbered from 0", code=EXIT_USAGE)
    proofs: dict[int, list[bytes]] = {}
    with endpoint.channel() as channel:
        stub = apb_grpc.AuditLogServiceStub(channel)
        for i in wanted:
            asked = apb.InclusionRequest(index=i, tree_size=size)
            proofs[i] = list(_call(endpoint, "inclusion proof", stub.InclusionProof, asked).hashes)
    made = make_bundle(fetched.note, fetched.leaves, verifier, created=utc_now(), proofs=proofs)
    tmp = out_file.with_name(out_file.name + ".tmp")
    tmp.write_text(bundle_text(made), encoding="utf-8")
    os.replace(tmp, out_file)
    if as_json:
        typer.echo(json.dumps(verified.to_dict() | {"bundle": str(out_file)}, indent=2))
    else:
        show_report(verified, evidence)
        out.print(f"evidence bundle written to {out_file} ({size} leaves, {len(proofs)} proofs)")
    finish(verified, f"the audit log of {verified.origin}")


@app.command("verify-bundle")
def verify_bundle_command(
    file: Annotated[Path, typer.Argument(help="An evidence bundle.", exists=True, dir_okay=False)],
    node_key: NodeKeyOpt,
    as_json: JsonOpt = False,
) -> None:
    """Verify an evidence bundle offline against the node's pinned key (no network)."""
    verified = verify_bundle(file.read_bytes(), pinned(node_key))
    if as_json:
        typer.echo(json.dumps(verified.to_dict(), indent=2))
    else:
        show_report(verified)
    finish(verified, f"the evidence bundle {file.name}")
