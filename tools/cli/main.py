"""The `childreg` command line: one entry point, a command group per person.

    childreg node …         department staff: init, serve, import, show a child, make a KEK
    childreg child …        department staff: find, show, register, assess, place, care, correct,
                            close, history
    childreg coordinator …  the national coordinator service
    childreg stats …        national statisticians: tables
    childreg pki …          the federation operator: CA and identities
    childreg audit …        auditors: verify, search, report a node's access log; witnesses
    childreg consent …      department staff: guardians' consents, grants and receipts
    childreg extract …      schools: request and open a child's purpose-limited extract
    childreg synth          synthetic departments modelled on published figures
    childreg demo           a whole local federation, end to end
    childreg bench          measured speed against physical limits

Errors print one line (and a hint) to standard error and exit with a documented code
(docs/cli.md, from the one table in tools/clients/client.py); tracebacks are never shown,
since they could quote data.
"""

from __future__ import annotations

import os
import sys

import typer

from childreg import logsetup
from childreg.errors import ChildregError
from tools.cli import audit as cli_audit
from tools.cli import child as cli_child
from tools.cli import child_life, node_keys, node_retention
from tools.cli import consent as cli_consent
from tools.cli import coordinator as cli_coordinator
from tools.cli import dev as cli_dev
from tools.cli import extract as cli_extract
from tools.cli import node as cli_node
from tools.cli import pki as cli_pki
from tools.cli import stats as cli_stats
from tools.cli import witness as cli_witness
from tools.cli.console import err
from tools.clients.client import EXIT_INTERNAL, CliError, cli_error

app = typer.Typer(
    name="childreg",
    help="A federated, privacy-first registry of children in education and care.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
node_keys.add_to(cli_node.app)
node_retention.add_to(cli_node.app)
app.add_typer(cli_node.app, name="node")
child_life.add_to(cli_child.app)
app.add_typer(cli_child.app, name="child")
app.add_typer(cli_coordinator.app, name="coordinator")
app.add_typer(cli_stats.app, name="stats")
app.add_typer(cli_pki.app, name="pki")
cli_audit.app.add_typer(cli_witness.app, name="witness")
app.add_typer(cli_audit.app, name="audit")
app.add_typer(cli_consent.app, name="consent")
app.add_typer(cli_extract.app, name="extract")
cli_dev.register(app)

VIOLATIONS_SHOWN = 200


def report(message: str, hint: str = "", violations: list[object] | None = None) -> None:
    """Print an error for a person on standard error."""
    err.print(f"error: {message}", markup=False)
    shown = list(violations or [])
    for v in shown[:VIOLATIONS_SHOWN]:
        err.print(f"  {v}", markup=False)
    if len(shown) > VIOLATIONS_SHOWN:
        err.print(f"  … and {len(shown) - VIOLATIONS_SHOWN} more", markup=False)
    if hint:
        err.print(f"hint: {hint}", markup=False)


def main() -> None:
    """Run the CLI, turning every expected failure into one clear message and an exit code."""
    # Warnings of in-process library code (e.g. the bench's rounds) go to standard error,
    # never into a command's --json output; `serve` commands configure their own level.
    logsetup.configure("warning")
    try:
        app()
    except (CliError, ChildregError) as exc:
        failure = exc if isinstance(exc, CliError) else cli_error(exc)
        report(str(failure), failure.hint, list(failure.violations))
        sys.exit(failure.code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # never a traceback: it could quote personal data
        report(
            f"unexpected {type(exc).__name__}",
            "run again with CHILDREG_DEBUG=1 to see the traceback (it may contain data)",
        )
        if os.environ.get("CHILDREG_DEBUG") == "1":
            raise
        sys.exit(EXIT_INTERNAL)


if __name__ == "__main__":
    main()
