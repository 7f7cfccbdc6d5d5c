"""Top-level `childreg` commands that are not a party's service: synth, demo, bench."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from childreg import profile
from tools.cli.console import err, out
from tools.cli.options import CountryOpt, JsonOpt, country_profile
from tools.dev import bench as bench_mod
from tools.dev import demo as demo_mod
from tools.dev import synth as synth_mod
from tools.dev.federation import Say


def _say(quiet: bool) -> Say:
    def say(message: str) -> None:
        if not quiet:
            # Not wrapped and not markup: the demo prints commands to copy and paste.
            err.print(f"[dim]•[/dim] {escape(message)}", soft_wrap=True)

    return say


YearOpt = Annotated[
    str | None,
    typer.Option("--year", help="Academic year, e.g. 2024/25; default: the one today falls in."),
]


def synth(
    departments: Annotated[int, typer.Option(help="How many departments.", min=1, max=500)] = 14,
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for the CSV files.")] = Path(
        "synthetic"
    ),
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same files).")] = 0,
    country: CountryOpt = profile.DEFAULT_COUNTRY,
    year: YearOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write one CSV per department of clearly synthetic children matching published figures."""
    with profile.installed(country_profile(country)) as chosen:
        academic_year = year or chosen.academic_year(dt.date.today())
        figures = synth_mod.figures_for(country, academic_year)
        manifest = synth_mod.generate(
            departments, out_dir, seed=seed, figures=figures, academic_year=academic_year
        )
    summary = {"out": str(out_dir), "departments": departments, "children": manifest.total_children}
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        n = manifest.total_children
        err.print(f"wrote {n} synthetic children in {departments} files to {out_dir}")


def demo(
    departments: Annotated[
        int | None,
        typer.Option(
            help="How many departments (default: one per region of the country, 14 or 20).",
            min=1,
            max=100,
        ),
    ] = None,
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
    country: CountryOpt = profile.DEFAULT_COUNTRY,
    year: YearOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a whole local federation end to end and print the national table."""
    country_profile(country)  # an unknown country: refused before anything starts
    result = demo_mod.run_demo(
        country=country,
        academic_year=year,
        departments=departments,
        from_dir=from_dir,
        out=out_dir,
        seed=seed,
        say=_say(False),
        workdir=workdir,
        keep_running=keep_running,
    )
    comparisons = result.comparisons()
    if as_json:
        data = result.view.to_json()
        data["reference"] = result.reference
        data["comparison"] = [
            {**dataclasses.asdict(c), "within_margin": c.within_margin} for c in comparisons
        ]
        data["imported"] = result.imported
        typer.echo(json.dumps(data, indent=2))
        return
    out.print(result.view.to_rich())
    if comparisons:
        out.print(demo_mod.comparison_table(comparisons))
    departments_n = len(result.view.area("national").departments)
    err.print(
        f"{result.imported} children in {departments_n} departments; {result.seconds:.1f} s; "
        f"table written to {out_dir}/ as {', '.join(demo_mod.OUTPUTS)}"
    )


def register(app: typer.Typer) -> None:
    """Add these commands to the root app."""
    app.command()(synth)
    app.command()(demo)
    app.command()(bench_mod.bench)
