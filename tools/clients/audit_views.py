"""What `childreg audit` shows a person: the verdict on a log, leaves and the access report.

Why separate: :mod:`tools.clients.auditor` decides what is true of a log; this module
only decides how a verified result looks (rich markup and tables), so the commands print
one renderable each and the JSON shapes stay in the auditor's data.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from childreg.audit.leaf import AuditEvent
from childreg.audit.verify import VerificationReport


def verdict(report: VerificationReport, evidence: Path | None = None) -> Group:
    """The verdict for a person: OK or FAILED, the checkpoint, each problem, the evidence."""
    lines = [
        f"{'[green]OK[/]' if report.ok else '[red]FAILED[/]'} audit log {escape(report.origin)}"
    ]
    if report.size is not None:
        lines.append(f"  checkpoint: {report.size} leaves, root {report.to_dict()['root']}")
    if report.previous_size is not None:
        lines.append(f"  previously verified: {report.previous_size} leaves")
    lines += [f"  [red]{p.code}[/]: {escape(p.message)}" for p in report.problems]
    if evidence is not None:
        lines.append(f"  evidence kept in {escape(str(evidence))}")
    return Group(*(Text.from_markup(line) for line in lines))


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


def access_tables(data: dict[str, Any]) -> Group:
    """The access report (:func:`tools.clients.auditor.access_report`) as three tables."""
    table = Table(title="Accesses per caller, action and purpose")
    for column in ("actor", "action", "purpose", "count"):
        table.add_column(column, overflow="fold", justify="right" if column == "count" else "left")
    for row in data["accesses"]:
        table.add_row(row["actor"], row["action"], row["purpose"] or "-", str(row["count"]))
    denials = [AuditEvent(**d) for d in data["denials"]]
    anomalies = Table(title=f"Anomalies ({len(data['anomalies'])})")
    anomalies.add_column("kind")
    anomalies.add_column("detail", overflow="fold")
    for a in data["anomalies"]:
        if a["kind"] == "breakglass":
            detail = f"leaf {a['seq']} at {a['time']} by {a['actor']}, purpose {a['purpose']!r}"
        else:
            detail = f"{a['actor']} read {a['subjects']} children (limit {a['limit']})"
        anomalies.add_row(a["kind"], detail)
    return Group(table, event_table(f"Denials ({len(denials)})", denials), anomalies)
