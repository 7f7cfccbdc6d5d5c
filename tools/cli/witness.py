"""`childreg audit witness …`: run an independent witness of the nodes' audit logs.

A few lines over :mod:`witness.config` and :mod:`witness.server`: make the witness's key,
serve, and list the evidence it kept when a node contradicted itself (docs/witness.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from childreg import logsetup
from childreg.audit.note import NoteVerifier
from childreg.config import load_config
from tools.cli.console import err, out
from tools.cli.options import ConfigOpt, JsonOpt, ReadyFileOpt

app = typer.Typer(
    help="An independent witness: cosigns nodes' audit-log checkpoints, keeps evidence.",
    no_args_is_help=True,
)


@app.command("keygen")
def keygen(
    key_file: Annotated[
        Path,
        typer.Option("--out", dir_okay=False, help="Where to write the secret key (mode 0600)."),
    ],
    name: Annotated[
        str, typer.Option("--name", help="The witness's key name, e.g. witness.az-ombudsman.")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Make the witness's Ed25519 key; prints the verifier key that others pin.

    Standard output has the verifier key childreg's nodes and auditors pin; standard error
    also gives the same key in the C2SP cosigner form (`tlog-cosignature/v1`), for other
    implementations that check this witness's cosignatures; with --json, both.
    """
    from witness.config import generate_witness_key  # noqa: PLC0415

    verifier = generate_witness_key(key_file, name)
    c2sp = NoteVerifier.from_key_string(verifier).cosignature_key_string()
    err.print(f"wrote the witness's secret key to {key_file} (keep it private)", markup=False)
    if as_json:
        typer.echo(json.dumps({"verifier_key": verifier, "c2sp_cosigner_key": c2sp}))
        return
    err.print(f"C2SP cosigner key (tlog-cosignature/v1): {c2sp}", markup=False, soft_wrap=True)
    typer.echo(verifier)


@app.command("serve")
def serve_cmd(config: ConfigOpt, ready_file: ReadyFileOpt = None) -> None:
    """Run the witness's mutual-TLS gRPC server until SIGTERM/SIGINT."""
    from witness.config import WitnessConfig  # noqa: PLC0415
    from witness.server import serve  # noqa: PLC0415

    cfg = load_config(WitnessConfig, config)
    logsetup.configure(cfg.log_level)
    serve(cfg, ready_file)


@app.command("evidence")
def evidence_cmd(config: ConfigOpt, as_json: JsonOpt = False) -> None:
    """List the evidence kept: pairs of signed checkpoints in which a node contradicts itself."""
    from witness.config import WitnessConfig  # noqa: PLC0415
    from witness.server import read_evidence  # noqa: PLC0415

    cfg = load_config(WitnessConfig, config)
    items = read_evidence(cfg)
    if as_json:
        typer.echo(json.dumps([e.to_json() for e in items], indent=2))
        return
    if not items:
        err.print("no evidence: no node has contradicted itself to this witness", markup=False)
        return
    table = Table(title=f"evidence kept by {cfg.name}")
    for column in ("#", "recorded at", "origin", "kind", "held size", "submitted size"):
        table.add_column(column, overflow="fold")
    for e in items:
        table.add_row(
            str(e.seq), e.recorded_at, e.origin, e.kind, str(e.held_size), str(e.submitted_size)
        )
    out.print(table)
    err.print("the signed notes themselves: --json", markup=False)
