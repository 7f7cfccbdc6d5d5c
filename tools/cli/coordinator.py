"""`childreg coordinator …`: the national coordinator service.

A few lines over :mod:`coordinator.server`: ``serve`` builds the witness the configuration's
``witness`` section asks for with :mod:`witness.server` and hands it to the coordinator,
which never imports ``witness/`` itself (docs/witness.md).
"""

from __future__ import annotations

import typer

from childreg import logsetup
from childreg.config import load_config
from coordinator.config import CoordinatorConfig
from tools.cli.options import ConfigOpt, ReadyFileOpt

app = typer.Typer(help="Run the national coordinator.", no_args_is_help=True)


@app.command("serve")
def serve_cmd(config: ConfigOpt, ready_file: ReadyFileOpt = None) -> None:
    """Run the coordinator's mutual-TLS gRPC server until SIGTERM/SIGINT."""
    # The server (numpy, scipy for post-processing) is imported only to serve, so other
    # commands, and node processes started through the same command line, stay small.
    from coordinator.server import serve  # noqa: PLC0415
    from witness.server import EmbeddedWitness, embedded_witness  # noqa: PLC0415

    cfg = load_config(CoordinatorConfig, config)
    logsetup.configure(cfg.log_level)
    witness: EmbeddedWitness | None = None
    if cfg.witness is not None:
        witness = embedded_witness(
            cfg.witness_db_path, cfg.witness.signing_key_file, cfg.witness.name,
            cfg.witnessed_logs(),
        )  # fmt: skip
    serve(cfg, ready_file, witness=witness)


@app.command("check-config")
def check_config(config: ConfigOpt) -> None:
    """Validate a coordinator configuration, its identity, signed catalogue and roster (as
    `serve` would before starting), then list its departments."""
    from coordinator.server import signed_inputs  # noqa: PLC0415 (numpy: only when needed)

    cfg = load_config(CoordinatorConfig, config)
    catalogue, roster = signed_inputs(cfg)
    c = catalogue.catalogue
    typer.echo(f"catalogue\t{c.federation} version {c.version}\t{len(c.tables)} tables", err=True)
    if roster is None:
        typer.echo("aggregation\tper-department (stage 1)", err=True)
    else:
        r = roster.roster
        typer.echo(
            f"aggregation\tsecure: roster version {r.version}, {len(r.members)} departments, "
            f"{r.colluders} assumed colluding, snapshots {r.first_snapshot} to "
            f"{r.last_snapshot}",
            err=True,
        )
    for d in cfg.departments:
        typer.echo(f"{d.id}\t{d.address}\t{d.server_name or '-'}\t{d.region}")
