"""The statistics authority's signed documents, as its commands and its readers use them.

The authority signs the table catalogue and the secure-aggregation roster offline
(:mod:`childreg.catalogue`, :mod:`childreg.secagg.roster`); statisticians and operators
check both against the pinned ``authority.pub``. This module holds what `childreg stats
catalogue …` and `childreg stats roster …` do beyond those libraries: signing a file end
to end (what is shipped must verify), the advice when a document is refused, and how a
catalogue or a roster is summarised and shown (also for the catalogue the coordinator
serves, `childreg stats tables`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from childreg.catalogue import (
    Catalogue,
    generate_authority_key,
    load_catalogue,
    load_signing_key,
    load_verify_key,
    public_key_text,
    sign_catalogue,
    verify_catalogue,
)
from childreg.dp import zcdp
from childreg.errors import AlreadyExists, ChildregError, InvalidInput, KeyProblem
from childreg.secagg.roster import Roster, load_roster, sign_roster, verify_roster
from childreg.signed import key_id
from tools.clients.client import (
    EXIT_INTERNAL,
    EXIT_KEY,
    EXIT_REFUSED,
    EXIT_REJECTED,
    CliError,
    exit_code_for,
)

CATALOGUE_DOC = "docs/catalogue.md"
ROSTER_DOC = "docs/secure-aggregation.md"

REFUSED_HINT = (
    "check that --authority is the statistics authority's authority.pub that the "
    "federation pinned, and ask the authority for a freshly signed file"
)


@contextmanager
def cli_errors(what: str, doc: str = CATALOGUE_DOC) -> Iterator[None]:
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


# --- the authority's key --------------------------------------------------------------------


@dataclass(frozen=True)
class AuthorityKey:
    """A key pair made by `authority-init`: where each half is, the public key's text, id."""

    secret: Path
    public: Path
    text: str
    key_id: str


def init_authority(out_dir: Path) -> AuthorityKey:
    """Make the statistics authority's key pair in ``out_dir`` (never overwriting one)."""
    with cli_errors("authority key"):
        secret, public = generate_authority_key(out_dir)
        verify_key = load_verify_key(public)
    return AuthorityKey(secret, public, public_key_text(verify_key), key_id(verify_key))


# --- the catalogue ----------------------------------------------------------------------------


def sign_catalogue_file(source: Path, key: Path, out_file: Path) -> tuple[Catalogue, str]:
    """Validate an authored catalogue, sign it, check what is shipped, write it; the
    catalogue and the signing key's id."""
    with cli_errors("sign"):
        catalogue = load_catalogue(source)
        signing_key = load_signing_key(key)
        blob = sign_catalogue(catalogue, signing_key)
        verify_catalogue(blob, signing_key.verify_key)  # what we ship must verify
    write_signed(out_file, blob)
    return catalogue, key_id(signing_key.verify_key)


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


def catalogue_validity(catalogue: Catalogue, signer: str) -> dict[str, Any]:
    """What `stats catalogue verify` reports of a valid catalogue signed by key id ``signer``."""
    return {
        "valid": True,
        "federation": catalogue.federation,
        "version": catalogue.version,
        "tables": len(catalogue.tables),
        "digest": catalogue.digest(),
        "key_id": signer,
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


# --- the roster -------------------------------------------------------------------------------


def sign_roster_file(source: Path, key: Path, out_file: Path) -> tuple[Roster, str]:
    """Validate an authored roster, sign it, check what is shipped, write it; the roster
    and the signing key's id."""
    with cli_errors("sign", ROSTER_DOC):
        roster = load_roster(source)
        signing_key = load_signing_key(key)
        blob = sign_roster(roster, signing_key)
        verify_roster(blob, signing_key.verify_key)  # what we ship must verify
    write_signed(out_file, blob)
    return roster, key_id(signing_key.verify_key)


def roster_validity(roster: Roster, signer: str) -> dict[str, Any]:
    """What `stats roster verify` reports of a valid roster signed by key id ``signer``."""
    return {
        "valid": True,
        "federation": roster.federation,
        "version": roster.version,
        "first_snapshot": roster.first_snapshot,
        "last_snapshot": roster.last_snapshot,
        "members": len(roster.members),
        "colluders": roster.colluders,
        "key_id": signer,
    }


def roster_table(roster: Roster) -> Table:
    """A rich table of the roster's departments and keys, with c in its caption."""
    table = Table(
        title=f"roster of {roster.federation}, version {roster.version}, snapshots "
        f"{roster.first_snapshot} to {roster.last_snapshot}"
    )
    for column in ("department", "masking key (X25519)", "upload key (Ed25519)"):
        table.add_column(column, overflow="fold")
    for m in roster.members:
        table.add_row(m.department, m.masking_key, m.upload_key)
    table.caption = (
        f"{len(roster.members)} departments; each round assumes up to {roster.colluders} of "
        f"them collude with the coordinator and may lose up to {roster.tolerated_dropouts} "
        "of its participants, so each adds noise of variance σ²/(t−c), t the fewest survivors."
    )
    return table
