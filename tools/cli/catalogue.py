"""`childreg stats catalogue …`: make, sign, show and check the signed table catalogue.

The statistics authority runs `authority-init` once and `sign` for every new version, on
an offline machine; statisticians and operators run `show` and `verify` against the
pinned ``authority.pub`` to see which tables may be asked for and what each costs of the
snapshot's privacy budget. The commands are a few lines over :mod:`childreg.catalogue`;
:func:`catalogue_rows` and :func:`render_catalogue` are reused for the catalogue the
coordinator serves.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from childreg.catalogue import (
    AUTHORITY_KEY,
    Catalogue,
    generate_authority_key,
    load_catalogue,
    load_signing_key,
    load_verify_key,
    public_key_text,
    read_signed_catalogue,
    sign_catalogue,
    verify_catalogue,
)
from childreg.dp import zcdp
from childreg.errors import AlreadyExists, ChildregError, InvalidInput, KeyProblem
from childreg.signed import key_id
from tools.cli.options import JsonOpt
from tools.clients.client import (
    EXIT_INTERNAL,
    EXIT_KEY,
    EXIT_REFUSED,
    EXIT_REJECTED,
    CliError,
    exit_code_for,
)

app = typer.Typer(
    help="The signed table catalogue: which tables may be asked for, and what each costs.",
    no_args_is_help=True,
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

AuthorityOpt = Annotated[
    str,
    typer.Option(
        "--authority",
        help="The statistics authority's public key: its authority.pub file, or the text "
        "ed25519:<base64>.",
    ),
]
FederationOpt = Annotated[
    str | None,
    typer.Option(help="Also require the catalogue to be for this federation, e.g. az.childreg."),
]
SignedFileArg = Annotated[
    Path, typer.Argument(help="The signed catalogue file (catalogue.signed.json).", dir_okay=False)
]

REFUSED_HINT = (
    "check that --authority is the statistics authority's authority.pub that the "
    "federation pinned, and ask the authority for a freshly signed file"
)


def write_signed(out_file: Path, blob: bytes) -> None:
    """Write a signed file made by a ``sign`` command; CliError (EXIT_INTERNAL) if it cannot."""
    try:
        out_file.write_bytes(blob)
    except OSError as exc:
        raise CliError(
            f"sign: cannot write {out_file} ({type(exc).__name__})",
            code=EXIT_INTERNAL,
            hint="check the path and that you may write there",
        ) from None


@contextmanager
def cli_errors(what: str, doc: str = "docs/catalogue.md") -> Iterator[None]:
    """Turn the signed documents' domain errors into one-line CLI errors with advice."""
    try:
        yield
    except KeyProblem as exc:
        raise CliError(f"{what}: {exc}", code=EXIT_KEY, hint=exc.hint) from None
    except AlreadyExists as exc:
        raise CliError(
            f"{what}: {exc}",
            code=EXIT_REJECTED,
            hint="choose another --out, or move the old key away first: every node then "
            "needs the new authority.pub pinned",
        ) from None
    except InvalidInput as exc:
        raise CliError(
            f"{what}: {exc}",
            code=EXIT_REJECTED,
            hint=f"fix what is listed and try again; {doc} describes the format",
            violations=exc.violations,
        ) from None
    except ChildregError as exc:
        code = exit_code_for(exc)
        hint = REFUSED_HINT if code == EXIT_REFUSED else ""
        raise CliError(f"{what}: {exc}", code=code, hint=hint) from None


def catalogue_rows(catalogue: Catalogue) -> list[dict[str, Any]]:
    """One row per table: dimensions, cells and the table's cost and precision per department.

    Keys (stable, docs/catalogue.md): id, title, dimensions, cells, rho, rho_decimal,
    sigma_squared, sigma, epsilon, margin95.
    """
    rows: list[dict[str, Any]] = []
    for table in catalogue.tables:
        cost = table.cost(catalogue.delta)
        rows.append(
            {
                "id": table.id,
                "title": table.title,
                "dimensions": list(table.dimensions),
                "cells": cost.cells,
                "rho": zcdp.format_rho(cost.rho),
                "rho_decimal": float(cost.rho),
                "sigma_squared": zcdp.format_rho(cost.sigma_squared),
                "sigma": round(cost.sigma, 6),
                "epsilon": round(cost.epsilon, 4),
                "margin95": cost.margin95,
            }
        )
    return rows


def catalogue_summary(catalogue: Catalogue) -> dict[str, Any]:
    """The whole catalogue for ``--json``: its identity, the snapshot cap and every table."""
    return {
        "federation": catalogue.federation,
        "version": catalogue.version,
        "digest": catalogue.digest(),
        "delta": catalogue.delta,
        "display_threshold": catalogue.display_threshold,
        "snapshot_rho": zcdp.format_rho(catalogue.snapshot_rho),
        "snapshot_rho_decimal": float(catalogue.snapshot_rho),
        "snapshot_epsilon": round(catalogue.snapshot_epsilon(), 4),
        "total_rho": zcdp.format_rho(catalogue.total_rho),
        "total_rho_decimal": float(catalogue.total_rho),
        "tables": catalogue_rows(catalogue),
    }


def catalogue_table(catalogue: Catalogue) -> Table:
    """A rich table of the catalogue, with the snapshot cap in its caption."""
    table = Table(
        title=f"catalogue of {catalogue.federation}, version {catalogue.version}",
        caption_justify="left",
    )
    table.add_column("table (dimensions)", overflow="fold")
    for column in ("cells", "ρ", "ρ ≈", "σ/dept", "ε at δ", "±95%/dept"):
        table.add_column(column, justify="right", no_wrap=True)
    for row in catalogue_rows(catalogue):
        table.add_row(
            Text(row["id"]) + Text("\n" + " × ".join(row["dimensions"]), style="dim"),
            str(row["cells"]),
            row["rho"],
            f"{row['rho_decimal']:.6g}",
            f"{row['sigma']:.3g}",
            f"{row['epsilon']:.2f}",
            f"±{row['margin95']}",
        )
    table.caption = (
        f"snapshot cap ρ = {catalogue.snapshot_rho} ({float(catalogue.snapshot_rho):.6g}), "
        f"ε = {catalogue.snapshot_epsilon():.2f} at δ = {catalogue.delta:g}; the tables "
        f"together spend ρ = {catalogue.total_rho}. Every table is published for the nation "
        f"and each region; values below {catalogue.display_threshold} are shown as "
        f"<{catalogue.display_threshold}."
    )
    return table


def render_catalogue(catalogue: Catalogue, console: Console | None = None) -> None:
    """Print the catalogue as a rich table (standard output unless ``console`` is given)."""
    (console or out).print(catalogue_table(catalogue))


@app.command("authority-init")
def authority_init(
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out", file_okay=False, help="Directory for authority.key and authority.pub."
        ),
    ],
) -> None:
    """Make the statistics authority's Ed25519 key pair (the secret key is written 0600)."""
    with cli_errors("authority key"):
        secret, public = generate_authority_key(out_dir)
        verify_key = load_verify_key(public)
    err.print(f"created the statistics authority's key pair in {out_dir}", markup=False)
    err.print(
        f"  {public.name}: key id {key_id(verify_key)}; pin it on every node and give it "
        "to statisticians",
        markup=False,
    )
    err.print(
        f"  {secret.name}: SECRET; keep it offline (an offline machine or removable medium). "
        "Whoever holds it decides which tables nodes answer and what they may spend.",
        markup=False,
    )
    typer.echo(public_key_text(verify_key))


@app.command()
def sign(
    source: Annotated[
        Path,
        typer.Argument(help="The authored catalogue (.toml, .yaml or .yml).", dir_okay=False),
    ],
    key: Annotated[
        Path, typer.Option("--key", help=f"The authority's secret key ({AUTHORITY_KEY}).")
    ],
    out_file: Annotated[
        Path, typer.Option("--out", help="Where to write the signed file.", dir_okay=False)
    ],
) -> None:
    """Validate a catalogue and sign it with the authority's key (deterministic output)."""
    with cli_errors("sign"):
        catalogue = load_catalogue(source)
        signing_key = load_signing_key(key)
        blob = sign_catalogue(catalogue, signing_key)
        verify_catalogue(blob, signing_key.verify_key)  # what we ship must verify
    write_signed(out_file, blob)
    err.print(
        f"signed catalogue {catalogue.federation} version {catalogue.version}: "
        f"{len(catalogue.tables)} tables, total ρ {catalogue.total_rho} "
        f"({float(catalogue.total_rho):.6g}) of the cap {catalogue.snapshot_rho} "
        f"({float(catalogue.snapshot_rho):.6g}); key id {key_id(signing_key.verify_key)}; "
        f"wrote {out_file}",
        markup=False,
    )


@app.command()
def show(
    file: SignedFileArg,
    authority: AuthorityOpt,
    federation: FederationOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Verify a signed catalogue, then list every table with its cost and precision."""
    with cli_errors("catalogue"):
        catalogue = read_signed_catalogue(file, load_verify_key(authority), federation=federation)
    if as_json:
        typer.echo(json.dumps(catalogue_summary(catalogue), indent=2, ensure_ascii=False))
        return
    render_catalogue(catalogue)


@app.command()
def verify(
    file: SignedFileArg,
    authority: AuthorityOpt,
    federation: FederationOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a signed catalogue's signature and content; exit 0 only if it is valid."""
    with cli_errors("catalogue"):
        verify_key = load_verify_key(authority)
        catalogue = read_signed_catalogue(file, verify_key, federation=federation)
    summary = {
        "valid": True,
        "federation": catalogue.federation,
        "version": catalogue.version,
        "tables": len(catalogue.tables),
        "digest": catalogue.digest(),
        "key_id": key_id(verify_key),
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(
        f"valid: catalogue {catalogue.federation} version {catalogue.version}, "
        f"{len(catalogue.tables)} tables, signed by key id {summary['key_id']}, "
        f"digest {summary['digest']}"
    )
