"""`childreg child correct | close | erase | history`: a record's life after registration.

Kept apart from tools/cli/child.py (finding, registering and recording) so each module
stays readable; the commands are added to the same `child` group (:func:`add_to`). Each
is a few lines over one client function of tools/clients/records.py and one audit leaf
at the node. A correction and a closing always say why; an erasure says why with a code
and gives the guardian a receipt; the history shows every version of every field with
who changed it, when and why.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer

from childreg.history import ChildHistory
from tools.cli.child import IdArg, Opt, ask, done
from tools.cli.console import err
from tools.cli.options import IdentityOpt, JsonOpt, NodeOpt, ServerNameOpt, TimeoutOpt
from tools.clients import records
from tools.clients.client import Endpoint

WhyOpt = Annotated[
    str | None,
    typer.Option(
        "--reason", help="Why (required; kept sealed in the child's history).", show_default=False
    ),
]


def correct(
    node: NodeOpt,
    identity: IdentityOpt,
    child_id: IdArg = None,
    reason: WhyOpt = None,
    given_name: Opt = None,
    family_name: Opt = None,
    national_id: Opt = None,
    born: Annotated[str | None, typer.Option(help="Date of birth, YYYY-MM-DD.")] = None,
    sex: Opt = None,
    district: Opt = None,
    guardian_name: Opt = None,
    guardian_phone: Opt = None,
    clear: Annotated[
        list[str] | None,
        typer.Option(
            help="Make an optional field not given: national_id, guardian_name, "
            "guardian_phone (repeatable).",
            show_default=False,
        ),
    ] = None,
    server_name: ServerNameOpt = None,
    timeout: TimeoutOpt = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """Correct fields of a child's record, saying why; fields not given stay as they are.

    The old values stay in the child's history (`childreg child history ID`).

    \b
    Example:
      childreg child correct C000124 --family-name "Məmmədova" \\
          --reason "spelling on the birth certificate"
    """
    need = ask(child_id=child_id, reason=reason)
    fields: records.CorrectionFields = {
        "child_id": need["child_id"], "reason": need["reason"], "clear": clear or [],
    }  # fmt: skip
    typed = {
        "given_name": given_name, "family_name": family_name, "national_id": national_id,
        "date_of_birth": born, "sex": sex, "district": district,
        "guardian_name": guardian_name, "guardian_phone": guardian_phone,
    }  # fmt: skip
    fields.update({k: v for k, v in typed.items() if v})  # type: ignore[typeddict-item]
    records.correct_child(Endpoint(node, identity, server_name, timeout), fields)
    done(as_json, "correction", need["child_id"])


def close(
    node: NodeOpt,
    identity: IdentityOpt,
    child_id: IdArg = None,
    on: Annotated[
        str | None, typer.Option("--on", help="Closed from this date on, YYYY-MM-DD.")
    ] = None,
    reason: Annotated[
        str | None,
        typer.Option(help="aged_out, moved_abroad, deceased or other.", show_default=False),
    ] = None,
    note: Annotated[
        str | None, typer.Option(help="Why, in words (required for other).", show_default=False)
    ] = None,
    server_name: ServerNameOpt = None,
    timeout: TimeoutOpt = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """Close a child's record from a date on, with the reason.

    A closed record stays for audit and history and takes no more changes; the child
    counts in every snapshot whose reference date falls before the closing date, in none
    on or after it.

    \b
    Example:
      childreg child close C000124 --on 2025-06-30 --reason moved_abroad
    """
    need = ask(child_id=child_id, on=on, reason=reason)
    fields: records.ClosureFields = {
        "child_id": need["child_id"], "closed_on": need["on"], "reason": need["reason"],
        "note": note or "",
    }  # fmt: skip
    records.close_child(Endpoint(node, identity, server_name, timeout), fields)
    done(as_json, "closing", need["child_id"])


def erase(
    node: NodeOpt,
    identity: IdentityOpt,
    child_id: IdArg = None,
    reason: Annotated[
        str | None,
        typer.Option(
            help="guardian_request, registered_in_error, legal_order, "
            "retention_after_closed or retention_after_age.",
            show_default=False,
        ),
    ] = None,
    receipt_dir: Annotated[
        Path | None,
        typer.Option(
            "--receipt-dir",
            file_okay=False,
            help="Write the guardian's erasure receipt (.html, .pdf, .json) here "
            "[default: $XDG_DATA_HOME/childreg/receipts, i.e. ~/.local/share/childreg/receipts].",
        ),
    ] = None,
    language: Annotated[
        str,
        typer.Option(
            "--language",
            help="The guardian's language for the receipt: en, ru, az or kk "
            "[default: the country profile's first language].",
        ),
    ] = "",
    server_name: ServerNameOpt = None,
    timeout: TimeoutOpt = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """Erase a child's record for good (crypto-shredding): it cannot be undone.

    The child's data key is destroyed and every row of it overwritten; only its
    pseudonym stays, marked erased, with the audit log's entries naming it. Every read
    of the child answers "erased" afterwards, and tables computed from now on do not
    count it (tables already published stay as published).

    \b
    Example:
      childreg child erase C000124 --reason guardian_request --receipt-dir receipts/
    """
    need = ask(child_id=child_id, reason=reason)
    endpoint = Endpoint(node, identity, server_name, timeout)
    erased = records.erase_child(endpoint, need["child_id"], need["reason"], receipt_dir, language)
    if as_json:
        typer.echo(json.dumps({**dataclasses.asdict(erased), "erased": True}))
        return
    err.print(f"erased the record of {erased.child_id}; its pseudonym is {erased.pseudonym}")
    for path in erased.files:
        err.print(f"wrote the guardian's erasure receipt {path}")


def history(
    node: NodeOpt,
    identity: IdentityOpt,
    child_id: IdArg = None,
    server_name: ServerNameOpt = None,
    timeout: TimeoutOpt = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """Show every step of a child's record: who, when, what changed (before → after), why.

    \b
    Example:
      childreg child history C000124
      childreg child history C000124 --json
    """
    cid = ask(child_id=child_id)["child_id"]
    book = records.read_history(Endpoint(node, identity, server_name, timeout), cid)
    if as_json:
        typer.echo(book.model_dump_json(indent=2))
        return
    typer.echo(history_text(book))


def history_text(book: ChildHistory) -> str:
    """A history as text: one block per step (who, when, what), each change and the reason
    on lines of their own, so long names and reasons are never cut."""
    closed = f", closed {book.closed_on} ({book.close_reason})" if book.closed_on else ""
    lines = [f"History of {book.child_id}{closed}"]
    for e in book.entries:
        lines.append(f"#{e.seq}  {e.at}  {e.kind} {e.scope}".rstrip() + f"  by {e.actor}")
        lines += [f"    {c.field}: {_shown(c.before)} → {_shown(c.after)}" for c in e.changes]
        if e.reason:
            lines.append(f"    why: {e.reason}")
    return "\n".join(lines)


def _shown(value: str | None) -> str:
    return "—" if value is None else value


def add_to(app: typer.Typer) -> None:
    """Add these commands to the `child` group."""
    app.command("correct")(correct)
    app.command("close")(close)
    app.command("erase")(erase)
    app.command("history")(history)
