"""`childreg node retention`: the retention rules' dry run and their application by hand.

Kept apart from tools/cli/node.py so each module stays readable; the command is added to
the `node` group (:func:`add_to`). It opens the node with its KEK on the node's host
(``node.server.open_operator``), like `access-report`: a dry run leaves one
``retention.review`` leaf and erases nothing; ``--apply`` erases each child due, one
``child.erase`` leaf each naming the operator. Output names children by their audit-log
pseudonym only.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from typing import Annotated

import typer

from childreg.config import load_config
from node.config import NodeConfig
from node.server import open_operator
from tools.cli.console import err, out
from tools.cli.node import _progress
from tools.cli.options import ConfigOpt, JsonOpt
from tools.clients.client import EXIT_USAGE, CliError


def retention(
    config: ConfigOpt,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what is due; erase nothing.")
    ] = False,
    apply: Annotated[
        bool, typer.Option("--apply", help="Erase every child due (cannot be undone).")
    ] = False,
    on: Annotated[
        str | None,
        typer.Option(
            "--on", help="The day to apply the rules for, YYYY-MM-DD (default: today, UTC)."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Apply the node's retention rules ([retention] in its configuration).

    --dry-run lists the children due for erasure, by pseudonym, with the rule that makes
    each due, and the counts; --apply erases them (crypto-shredding, one audit leaf each
    naming the operator). A serving node with rules set runs them by itself every
    run_every_hours.

    \b
    Example:
      childreg node retention --config /etc/childreg/node.toml --dry-run
      childreg node retention --config /etc/childreg/node.toml --apply --json
    """
    if dry_run == apply:
        raise CliError(
            "give exactly one of --dry-run and --apply",
            code=EXIT_USAGE,
            hint="run --dry-run first to see what --apply would erase",
        )
    today = dt.datetime.now(dt.UTC).date()
    day = _day(on) if on else today
    if apply and day > today:
        raise CliError(
            "--on after today is for --dry-run only: records are erased when due, not before",
            code=EXIT_USAGE,
        )
    cfg = load_config(NodeConfig, config)
    with open_operator(cfg) as session:
        if dry_run:
            due = session.retention_review(day)
            listed = [{"pseudonym": d.pseudonym, "rules": list(d.rules)} for d in due]
            counts = Counter(d.rules[0] for d in due)
            data = {"day": day.isoformat(), "due": listed, "counts": _counts(counts, len(due))}
            if as_json:
                typer.echo(json.dumps(data))
                return
            for item in listed:
                out.print(f"{item['pseudonym']}  {', '.join(item['rules'])}")
            err.print(f"{len(due)} records due for erasure on {day} (nothing was erased)")
            return
        with _progress(as_json) as bar:
            task = bar.add_task("erasing records due", total=None)
            outcome = session.retention_apply(
                day, progress=lambda n, total: bar.update(task, completed=n, total=total)
            )
    counts = Counter(d.rules[0] for d in outcome.erased)
    result = {
        "day": day.isoformat(),
        "erased": [{"pseudonym": d.pseudonym, "rule": d.rules[0]} for d in outcome.erased],
        "failed": [{"pseudonym": d.pseudonym, "rule": d.rules[0]} for d in outcome.failed],
        "counts": _counts(counts, len(outcome.erased)),
    }
    if as_json:
        typer.echo(json.dumps(result))
    else:
        err.print(f"erased {len(outcome.erased)} records due on {day}")
    if outcome.failed:
        raise CliError(
            f"{len(outcome.failed)} records due could not be erased",
            hint="their audit leaves give the outcome; run --apply again once it is fixed",
        )


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise CliError("--on: must be a date, YYYY-MM-DD", code=EXIT_USAGE) from None


def _counts(by_rule: Counter[str], total: int) -> dict[str, int]:
    return {
        "retention_after_closed": by_rule["retention_after_closed"],
        "retention_after_age": by_rule["retention_after_age"],
        "total": total,
    }


def add_to(app: typer.Typer) -> None:
    """Add this command to the `node` group."""
    app.command("retention")(retention)
