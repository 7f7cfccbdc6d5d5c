"""`childreg coordinator …`: the national coordinator service."""

from __future__ import annotations

import typer

from childreg import logsetup
from childreg.config import load_config
from coordinator.config import CoordinatorConfig
from tools.options import ConfigOpt, ReadyFileOpt

app = typer.Typer(help="Run the national coordinator.", no_args_is_help=True)


@app.command("serve")
def serve_cmd(config: ConfigOpt, ready_file: ReadyFileOpt = None) -> None:
    """Run the coordinator's mutual-TLS gRPC server until SIGTERM/SIGINT."""
    # The server (numpy, scipy for post-processing) is imported only to serve, so other
    # commands, and node processes started through the same command line, stay small.
    from coordinator.server import serve  # noqa: PLC0415

    cfg = load_config(CoordinatorConfig, config)
    logsetup.configure(cfg.log_level)
    serve(cfg, ready_file)


@app.command("check-config")
def check_config(config: ConfigOpt) -> None:
    """Validate a coordinator configuration file and list its departments."""
    cfg = load_config(CoordinatorConfig, config)
    for d in cfg.departments:
        typer.echo(f"{d.id}\t{d.address}\t{d.server_name or '-'}\t{d.region}")
