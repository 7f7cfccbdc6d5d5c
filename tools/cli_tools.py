"""Top-level `childreg` commands that are not a party's service: synth, demo, bench."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from tools import bench as bench_mod
from tools import demo as demo_mod
from tools import synth as synth_mod
from tools.client import CliError
from tools.federation import Say
from tools.options import JsonOpt

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)


def _say(quiet: bool) -> Say:
    def say(message: str) -> None:
        if not quiet:
            err.print(f"[dim]•[/dim] {message}")

    return say


def synth(
    departments: Annotated[int, typer.Option(help="How many departments.", min=1, max=500)] = 14,
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for the CSV files.")] = Path(
        "synthetic"
    ),
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same files).")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Write one CSV per department of clearly synthetic children matching published figures."""
    manifest = synth_mod.generate(departments, out_dir, seed=seed)
    summary = {"out": str(out_dir), "departments": departments, "children": manifest.total_children}
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        n = manifest.total_children
        err.print(f"wrote {n} synthetic children in {departments} files to {out_dir}")


def demo(
    departments: Annotated[
        int, typer.Option(help="How many departments (default: Azerbaijan's 14).", min=1, max=100)
    ] = 14,
    from_dir: Annotated[
        Path | None,
        typer.Option(
            help="Use these per-department CSV files instead of synthetic data.",
            file_okay=False,
            exists=True,
        ),
    ] = None,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Where to write the table (CSV, JSON).")
    ] = Path("demo-out"),
    seed: Annotated[int, typer.Option(help="Seed of the synthetic data.")] = 0,
    workdir: Annotated[
        Path | None,
        typer.Option(help="Keep the federation's files here (default: a temp dir, removed)."),
    ] = None,
    keep_running: Annotated[
        bool, typer.Option(help="Leave the federation running until Ctrl-C.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run a whole local federation end to end and print the national table."""
    result = demo_mod.run_demo(
        departments=departments,
        from_dir=from_dir,
        out=out_dir,
        seed=seed,
        say=_say(False),
        workdir=workdir,
        keep_running=keep_running,
    )
    if as_json:
        data = result.view.to_json()
        data["reference"] = result.reference
        data["matches_reference"] = result.matches_reference
        data["imported"] = result.imported
        typer.echo(json.dumps(data, indent=2))
    else:
        out.print(result.view.to_rich(result.reference))
        if result.matches_reference is not None:
            verdict = "equal to" if result.matches_reference else "DIFFERENT from"
            out.print(f"The national table is {verdict} the published 2023/24 figures.")
        err.print(
            f"{result.imported} children in {len(result.view.answered)} departments; "
            f"{result.seconds:.1f} s; table written to {out_dir}/national_table.csv and .json"
        )
    if result.matches_reference is False:
        raise CliError("the national table does not reproduce the published figures")


def register(app: typer.Typer) -> None:
    """Add these commands to the root app."""
    app.command()(synth)
    app.command()(demo)
    app.command()(bench_mod.bench)
