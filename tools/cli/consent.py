"""`childreg consent …`: department staff record and withdraw a guardian's consent.

Granting prints the grant the school will hold: it is shown once, never stored in the
clear, so staff must hand it to the school over a secure channel. Grant and withdrawal
both give the guardian a receipt; ``--receipt-dir`` writes it as JSON and printable HTML
(owner-readable only: it names the guardian).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import grpc
import typer
from google.protobuf.json_format import MessageToJson
from rich.console import Console

from childreg.secretfile import write_private
from childreg.v1 import consent_pb2 as cpb
from childreg.v1 import consent_pb2_grpc as cpb_grpc
from tools.cli.options import IdentityOpt, JsonOpt, ServerNameOpt, TimeoutOpt
from tools.clients.client import Endpoint, rpc_failure

app = typer.Typer(help="Record and withdraw guardians' consents.", no_args_is_help=True)
err = Console(stderr=True, highlight=False)

NodeOpt = Annotated[
    str, typer.Option("--node", envvar="CHILDREG_NODE", help="The node's address, host:port.")
]
ReceiptDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--receipt-dir", file_okay=False, help="Write the guardian's receipt (.json, .html) here."
    ),
]
GRANT_NOTICE = (
    "Give this grant to the school over a secure channel (in person or encrypted); it is "
    "shown only now and the node cannot show it again."
)


R = TypeVar("R")


def _call(endpoint: Endpoint, what: str, fn: Callable[[cpb_grpc.ConsentServiceStub], R]) -> R:
    """One call to the node's ConsentService; a failure becomes advice (one place)."""
    with endpoint.channel() as channel:
        try:
            return fn(cpb_grpc.ConsentServiceStub(channel))
        except grpc.RpcError as e:
            raise rpc_failure(e, what, endpoint.address) from None


def _consent_dict(consent: cpb.Consent) -> dict[str, str]:
    return {
        "consent_id": consent.consent_id,
        "child_id": consent.child_id,
        "purpose": consent.purpose,
        "school": consent.school,
        "valid_from": consent.valid_from,
        "valid_until": consent.valid_until,
        "evidence_ref": consent.evidence_ref,
        "granted_at": consent.granted_at,
        "granted_by": consent.granted_by,
        "withdrawn_at": consent.withdrawn_at,
    }


def _write_receipt(directory: Path | None, receipt: cpb.ConsentReceipt, kind: str) -> list[str]:
    if directory is None:
        return []
    stem = f"{receipt.consent.consent_id}-{kind}"
    written = []
    for suffix, text in ((".json", receipt.receipt_json), (".html", receipt.receipt_html)):
        path = directory / (stem + suffix)
        write_private(path, text.encode("utf-8"))
        written.append(str(path))
    return written


@app.command()
def grant(
    node: NodeOpt,
    identity: IdentityOpt,
    child: Annotated[str, typer.Option("--child", help="The child's id at this department.")],
    guardian: Annotated[str, typer.Option("--guardian", help="The consenting guardian's name.")],
    purpose: Annotated[str, typer.Option("--purpose", help="The purpose, e.g. iep_preparation.")],
    school: Annotated[
        str, typer.Option("--school", help="The school: spiffe://<federation>/school/<id>.")
    ],
    valid_from: Annotated[str, typer.Option("--from", help="First valid day (YYYY-MM-DD).")],
    valid_until: Annotated[
        str, typer.Option("--until", help="Last valid day, inclusive (YYYY-MM-DD).")
    ],
    evidence: Annotated[
        str, typer.Option("--evidence", help="Where the signed consent form is filed.")
    ],
    server_name: ServerNameOpt = None,
    receipt_dir: ReceiptDirOpt = None,
    timeout: TimeoutOpt = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """Record a guardian's consent and print the grant to hand to the school."""
    request = cpb.ConsentRequest(
        child_id=child,
        guardian_name=guardian,
        purpose=purpose,
        school=school,
        valid_from=valid_from,
        valid_until=valid_until,
        evidence_ref=evidence,
    )
    receipt = _call(
        Endpoint(node, identity, server_name, timeout),
        "consent grant",
        lambda stub: stub.GrantConsent(request, timeout=timeout),
    )
    files = _write_receipt(receipt_dir, receipt, "grant")
    if as_json:
        data = {"consent": _consent_dict(receipt.consent), "grant": receipt.grant}
        typer.echo(json.dumps({**data, "notice": GRANT_NOTICE, "receipt_files": files}))
        return
    typer.echo(f"consent id: {receipt.consent.consent_id}")
    typer.echo(f"grant:      {receipt.grant}")
    typer.echo(GRANT_NOTICE)
    for path in files:
        err.print(f"wrote the guardian's receipt {path}")


@app.command()
def withdraw(
    consent_id: Annotated[str, typer.Argument(help="The consent id (cns_…).")],
    node: NodeOpt,
    identity: IdentityOpt,
    server_name: ServerNameOpt = None,
    receipt_dir: ReceiptDirOpt = None,
    timeout: TimeoutOpt = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """Withdraw a consent now: its grant stops working immediately."""
    receipt = _call(
        Endpoint(node, identity, server_name, timeout),
        "consent withdraw",
        lambda stub: stub.WithdrawConsent(
            cpb.WithdrawRequest(consent_id=consent_id), timeout=timeout
        ),
    )
    files = _write_receipt(receipt_dir, receipt, "withdrawal")
    if as_json:
        typer.echo(json.dumps({"consent": _consent_dict(receipt.consent), "receipt_files": files}))
        return
    typer.echo(f"withdrew {receipt.consent.consent_id} at {receipt.consent.withdrawn_at}")
    for path in files:
        err.print(f"wrote the guardian's receipt {path}")


@app.command("list")
def list_cmd(
    node: NodeOpt,
    identity: IdentityOpt,
    child: Annotated[str, typer.Option("--child", help="The child's id at this department.")],
    server_name: ServerNameOpt = None,
    timeout: TimeoutOpt = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """List a child's consents, oldest first."""
    reply = _call(
        Endpoint(node, identity, server_name, timeout),
        "consent list",
        lambda stub: stub.ListConsents(cpb.ChildConsentsRequest(child_id=child), timeout=timeout),
    )
    rows = [_consent_dict(c) for c in reply.consents]
    if as_json:
        typer.echo(json.dumps({"consents": rows}))
        return
    if not rows:
        typer.echo("no consents")
    for r in rows:
        state = f"withdrawn {r['withdrawn_at']}" if r["withdrawn_at"] else "standing"
        typer.echo(
            f"{r['consent_id']}  {r['purpose']}  {r['school']}  "
            f"{r['valid_from']}..{r['valid_until']}  {state}"
        )


@app.command()
def show(
    consent_id: Annotated[str, typer.Argument(help="The consent id (cns_…).")],
    node: NodeOpt,
    identity: IdentityOpt,
    server_name: ServerNameOpt = None,
    timeout: TimeoutOpt = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """Show one consent (never its grant: the node does not keep it)."""
    consent = _call(
        Endpoint(node, identity, server_name, timeout),
        "consent show",
        lambda stub: stub.GetConsent(cpb.ConsentRef(consent_id=consent_id), timeout=timeout),
    )
    data = _consent_dict(consent)
    if as_json:
        typer.echo(json.dumps(data))
        return
    for key, value in data.items():
        typer.echo(f"{key}: {value or '-'}")


@app.command("break-glass")
def break_glass(
    child_id: Annotated[str, typer.Argument(help="The child's id at this department.")],
    reason: Annotated[
        str, typer.Option(help="Why this emergency access is needed (20–500 characters).")
    ],
    node: NodeOpt,
    identity: IdentityOpt,
    server_name: ServerNameOpt = None,
    timeout: TimeoutOpt = 10.0,
) -> None:
    """Emergency access to a child's whole record: the reason is kept (sealed) at the node,
    and the access is logged as break-glass for the auditors' report. Prints the record."""
    record = _call(
        Endpoint(node, identity, server_name, timeout),
        "break-glass access",
        lambda stub: stub.BreakGlassRead(
            cpb.BreakGlassRequest(child_id=child_id, reason=reason), timeout=timeout
        ),
    )
    typer.echo(MessageToJson(record, preserving_proto_field_name=True))
