"""`childreg audit …`: what an auditor runs against a node's tamper-evident access log.

Each command is a few lines over :mod:`tools.clients.auditor` (fetch, verify against the
pinned key, the state directory, witnesses, selection and the access report) and
:mod:`tools.clients.audit_views` (how the results look).

Exit codes: those of docs/cli.md, and EXIT_UNVERIFIED (8) when a log or an evidence
bundle does not verify (the report printed says why).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from childreg.audit.leaf import ACTIONS
from childreg.audit.verify import VerificationReport, verify_bundle
from tools.cli.console import err, out
from tools.cli.options import IdentityOpt, JsonOpt, NodeOpt, ServerNameOpt, TimeoutOpt
from tools.clients import audit_bundle, auditor
from tools.clients.audit_views import access_tables, event_table, verdict
from tools.clients.client import Endpoint

app = typer.Typer(
    help="Auditors' tools: verify a node's access log, search it, report, keep evidence.",
    no_args_is_help=True,
)

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

WitnessOpt = Annotated[
    list[str] | None,
    typer.Option(help="A witness's address (repeatable; with --witness-key each)."),
]
WitnessKeyOpt = Annotated[
    list[str] | None,
    typer.Option(help="That witness's pinned verifier key string, in the same order."),
]
WitnessNameOpt = Annotated[
    list[str] | None,
    typer.Option(help="That witness's certificate DNS name, in the same order."),
]


def checked(
    endpoint: Endpoint, node_key: str, state: Path | None, as_json: bool, *, show_ok: bool,
    witnesses: list[auditor.WitnessRef] | None = None,
) -> VerificationReport:  # fmt: skip
    """Fetch and verify; print the verdict (always when it failed), exit if it failed."""
    found = auditor.fetch_verified(
        endpoint, auditor.pinned(node_key), state, witnesses or [], progress=err
    )
    if show_ok or not found.report.ok:
        if as_json:
            typer.echo(json.dumps(auditor.report_json(found.report, found.evidence), indent=2))
        else:
            out.print(verdict(found.report, found.evidence))
    auditor.finish(found.report, f"the audit log of {found.report.origin}")
    return found.report


@app.command()
def verify(
    node: NodeOpt,
    node_key: NodeKeyOpt,
    identity: IdentityOpt,
    server_name: ServerNameOpt = None,
    state: StateOpt = None,
    witness: WitnessOpt = None,
    witness_key: WitnessKeyOpt = None,
    witness_server_name: WitnessNameOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 60.0,
) -> None:
    """Fetch the whole log, verify signature, root, leaves and (with --state) consistency;
    with --witness, also that the node showed the history its witnesses cosigned."""
    refs = auditor.witness_refs(
        witness or [], witness_key or [], witness_server_name, identity, timeout
    )
    endpoint = Endpoint(node, identity, server_name, timeout)
    checked(endpoint, node_key, state, as_json, show_ok=True, witnesses=refs)


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
    wanted = auditor.filters(subject, actor, action, since, until)
    endpoint = Endpoint(node, identity, server_name, timeout)
    report = checked(endpoint, node_key, state, as_json, show_ok=False)
    found = auditor.select(report.events, wanted)
    if as_json:
        data = {"verification": report.to_dict(), "matches": [asdict(e) for e in found]}
        typer.echo(json.dumps(data, indent=2))
        return
    out.print(verdict(report))
    out.print(event_table(f"{len(found)} matching leaves of {report.size}", found))


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
    endpoint = Endpoint(node, identity, server_name, timeout)
    verified = checked(endpoint, node_key, state, as_json, show_ok=False)
    data = auditor.access_report(verified.events, school_limit)
    if as_json:
        typer.echo(json.dumps({"verification": verified.to_dict(), **data}, indent=2))
        return
    out.print(verdict(verified))
    out.print(access_tables(data))


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
    witness: WitnessOpt = None,
    witness_key: WitnessKeyOpt = None,
    witness_server_name: WitnessNameOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 60.0,
) -> None:
    """Write an evidence bundle that `audit verify-bundle` checks offline (even if it fails):
    the log, inclusion proofs of the leaves asked for, and consistency proofs linking it to
    the checkpoint verified before (--state) and to those the witnesses hold (--witness)."""
    verifier = auditor.pinned(node_key)
    refs = auditor.witness_refs(
        witness or [], witness_key or [], witness_server_name, identity, timeout
    )
    endpoint = Endpoint(node, identity, server_name, timeout)
    made = audit_bundle.write_bundle(
        endpoint, verifier, state, leaf or [], out_file, witnesses=refs, progress=err
    )
    report = made.verified.report
    if as_json:
        typer.echo(json.dumps(report.to_dict() | {"bundle": str(out_file)}, indent=2))
    else:
        out.print(verdict(report, made.verified.evidence))
        out.print(
            f"evidence bundle written to {out_file} ({made.leaves} leaves, {made.proofs} "
            f"inclusion proofs, {made.consistency} consistency proofs)"
        )
    auditor.finish(report, f"the audit log of {report.origin}")


@app.command("verify-bundle")
def verify_bundle_command(
    file: Annotated[Path, typer.Argument(help="An evidence bundle.", exists=True, dir_okay=False)],
    node_key: NodeKeyOpt,
    as_json: JsonOpt = False,
) -> None:
    """Verify an evidence bundle offline against the node's pinned key (no network)."""
    verified = verify_bundle(file.read_bytes(), auditor.pinned(node_key))
    if as_json:
        typer.echo(json.dumps(verified.to_dict(), indent=2))
    else:
        out.print(verdict(verified))
    auditor.finish(verified, f"the evidence bundle {file.name}")
