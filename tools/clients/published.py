"""A published, privacy-protected table as people and programs see it: rich, JSON and CSV.

The coordinator publishes each catalogue table once per snapshot with discrete Gaussian
noise (docs/statistics-method.md). This module is the one place where that message turns
into something readable, so the display rule lives here once: a cell whose *published*
(noisy) value is below the display threshold is shown as "<N", and its number is written
nowhere — :class:`PublishedCell` does not even hold it (``value`` is None). Totals of
education forms come with the message (the coordinator computes their margins through
its error model) and follow the same rule. The rule is presentation, not protection:
a published total minus the other published forms gives a hidden cell's *noisy* value,
which the differential-privacy guarantee already covers. docs/publication.md documents
the shapes; tools/clients/exports.py adds SDMX and a chart on top of :class:`PublishedView`.

JSON shape (stable)::

    {"academic_year", "reference_date", "table_id", "title", "catalogue_version",
     "dimensions", "privacy": {"mechanism", "rho", "sigma_squared", "sigma", "epsilon",
     "delta", "snapshot_rho", "snapshot_epsilon", "display_threshold"},
     "areas": [{"area", "departments",
                "cells": [{<dim>: code, ..., "value": int|null, "display": "1,234"|"<10",
                           "margin": int, "confidential": bool}],
                "totals": {name: {"value", "display", "margin", "confidential"}}}],
     "published_at", "release_key"}

``totals`` appears only for the table by ``education_form`` alone. A table published by
secure aggregation (mechanism ``…/secure-aggregation``, stage 2 of PRIVACY.md) adds
``"participants"``, ``"colluders"`` and ``"share_sigma_squared"`` to ``privacy`` (n
departments summed, c assumed colluding, the noise variance σ²/(t−c) each added, t the
fewest survivors a round may complete with) and a
top-level ``"missing_departments"`` after ``"release_key"``: the departments of the
federation left out of the snapshot. Any table with missing departments carries that key;
the rich caption flags them.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

from rich.table import Table
from rich.text import Text

from childreg import codes
from childreg.errors import InvalidInput, Violation
from childreg.v1 import statistics_pb2 as spb

NATIONAL = "national"
SECURE_AGGREGATION = "discrete_gaussian/zcdp/secure-aggregation"


@dataclass(frozen=True)
class PublishedCell:
    """One cell (or one total): its categories, value (None if confidential) and margin."""

    key: tuple[str, ...]
    value: int | None
    margin: int
    confidential: bool

    def display(self, threshold: int) -> str:
        """The text shown: "<N" for a confidential cell, else the value with separators."""
        return f"<{threshold}" if self.value is None else f"{self.value:,}"


@dataclass(frozen=True)
class PublishedArea:
    """One geography of a published table: the nation or one region."""

    area: str
    departments: tuple[str, ...]
    cells: tuple[PublishedCell, ...]
    totals: tuple[PublishedCell, ...]  # key = (total name,); empty unless education_form alone


@dataclass(frozen=True)
class Privacy:
    """The privacy statement a published table carries (see the proto's PrivacyStatement)."""

    mechanism: str
    rho: str
    sigma_squared: str
    sigma: float
    epsilon: float
    delta: float
    snapshot_rho: str
    snapshot_epsilon: float
    display_threshold: int
    #: Secure aggregation only: n departments summed, c assumed colluding, σ²/(t−c) each.
    participants: int = 0
    colluders: int = 0
    share_sigma_squared: str = ""

    @property
    def secure(self) -> bool:
        """Whether the table was published by secure aggregation (stage 2)."""
        return self.mechanism == SECURE_AGGREGATION

    def to_json(self) -> dict[str, Any]:
        """The ``privacy`` object of the JSON shape."""
        secure = (
            {
                "participants": self.participants,
                "colluders": self.colluders,
                "share_sigma_squared": self.share_sigma_squared,
            }
            if self.secure
            else {}
        )
        return {
            "mechanism": self.mechanism,
            "rho": self.rho,
            "sigma_squared": self.sigma_squared,
            "sigma": self.sigma,
            "epsilon": self.epsilon,
            "delta": self.delta,
            "snapshot_rho": self.snapshot_rho,
            "snapshot_epsilon": self.snapshot_epsilon,
            "display_threshold": self.display_threshold,
            **secure,
        }


def _invalid(field: str, problem: str) -> InvalidInput:
    return InvalidInput(f"published table: {field}: {problem}", [Violation(field, problem)])


def _cell(
    key: tuple[str, ...], value: int, margin: int, flag: bool, threshold: int
) -> PublishedCell:
    # Conservative: a cell is confidential if the publisher says so OR its value is below
    # the threshold, so a wrong flag can never reveal a small number.
    confidential = flag or value < threshold
    return PublishedCell(key, None if confidential else value, margin, confidential)


def _area(msg: spb.AreaValues, dims: tuple[str, ...], privacy: Privacy) -> PublishedArea:
    size = codes.grid_size(dims)
    where = f"areas[{msg.area}]"
    if not (len(msg.values) == len(msg.margins) == len(msg.confidential) == size):
        raise _invalid(where, f"values, margins and confidential must each have {size} cells")
    if any(v < 0 for v in msg.values):
        raise _invalid(where, "values must not be negative")
    threshold = privacy.display_threshold
    raw = list(zip(codes.grid(dims), msg.values, msg.margins, msg.confidential, strict=True))
    cells = tuple(_cell(k, v, m, c, threshold) for k, v, m, c in raw)
    by_form = {k[0]: v for k, v, _, _ in raw} if dims == ("education_form",) else {}
    for t in msg.totals:
        forms = codes.FORM_TOTALS.get(t.name)
        if forms is None or not by_form or t.value != sum(by_form[f] for f in forms):
            raise _invalid(f"{where}.totals", f"{t.name!r} is not a sum of this table's cells")
    totals = tuple(
        _cell((t.name,), t.value, t.margin, t.confidential, threshold) for t in msg.totals
    )
    return PublishedArea(msg.area, tuple(msg.departments), cells, totals)


@dataclass(frozen=True)
class PublishedView:
    """A published table with its privacy statement, every area, ready to render."""

    academic_year: str
    reference_date: str
    catalogue_version: int
    table_id: str
    title: str
    dimensions: tuple[str, ...]
    privacy: Privacy
    areas: tuple[PublishedArea, ...]
    published_at: str
    release_key: str
    #: Departments of the federation left out of the snapshot (secure aggregation).
    missing_departments: tuple[str, ...] = ()

    @classmethod
    def from_proto(cls, msg: spb.PublishedTable) -> PublishedView:
        """Check the message's shape and drop the numbers of confidential cells."""
        dims = tuple(msg.dimensions)
        unknown = [d for d in dims if d not in codes.DIMENSIONS]
        if not dims or unknown:
            raise _invalid("dimensions", f"unknown or missing: {', '.join(unknown) or 'none'}")
        names = [a.area for a in msg.areas]
        if not names or "" in names or len(set(names)) != len(names):
            raise _invalid("areas", "must be named, distinct, and at least one (national)")
        p = msg.privacy
        privacy = Privacy(
            p.mechanism,
            p.rho,
            p.sigma_squared,
            p.sigma,
            p.epsilon,
            p.delta,
            p.snapshot_rho,
            p.snapshot_epsilon,
            p.display_threshold,
            p.participants,
            p.colluders,
            p.share_sigma_squared,
        )
        if privacy.secure and not p.colluders < p.participants:
            raise _invalid("privacy", "secure aggregation needs more participants than colluders")
        return cls(
            academic_year=msg.academic_year,
            reference_date=msg.reference_date,
            catalogue_version=msg.catalogue_version,
            table_id=msg.table_id,
            title=msg.title,
            dimensions=dims,
            privacy=privacy,
            areas=tuple(_area(a, dims, privacy) for a in msg.areas),
            published_at=msg.published_at,
            release_key=msg.release_key,
            missing_departments=tuple(msg.missing_departments),
        )

    @property
    def threshold(self) -> int:
        """Published values below this are shown as "<threshold"."""
        return self.privacy.display_threshold

    def area(self, name: str = NATIONAL) -> PublishedArea:
        """One geography; InvalidInput naming the available ones for an unknown name."""
        for a in self.areas:
            if a.area == name:
                return a
        available = ", ".join(a.area for a in self.areas)
        raise InvalidInput(
            f"unknown area {name!r}; available: {available}",
            [Violation("area", f"must be one of: {available}")],
        )

    def _selected(self, area: str | None) -> tuple[PublishedArea, ...]:
        return self.areas if area is None else (self.area(area),)

    def _cell_json(self, cell: PublishedCell) -> dict[str, Any]:
        return {
            "value": cell.value,
            "display": cell.display(self.threshold),
            "margin": cell.margin,
            "confidential": cell.confidential,
        }

    def to_json(self, area: str | None = None) -> dict[str, Any]:
        """The documented JSON object; every area when ``area`` is None."""
        areas: list[dict[str, Any]] = []
        for a in self._selected(area):
            entry: dict[str, Any] = {
                "area": a.area,
                "departments": list(a.departments),
                "cells": [
                    {**dict(zip(self.dimensions, c.key, strict=True)), **self._cell_json(c)}
                    for c in a.cells
                ],
            }
            if a.totals:
                entry["totals"] = {t.key[0]: self._cell_json(t) for t in a.totals}
            areas.append(entry)
        missing = (
            {"missing_departments": list(self.missing_departments)}
            if self.privacy.secure or self.missing_departments
            else {}
        )
        return {
            "academic_year": self.academic_year,
            "reference_date": self.reference_date,
            "table_id": self.table_id,
            "title": self.title,
            "catalogue_version": self.catalogue_version,
            "dimensions": list(self.dimensions),
            "privacy": self.privacy.to_json(),
            "areas": areas,
            "published_at": self.published_at,
            "release_key": self.release_key,
            **missing,
        }

    def to_json_text(self, area: str | None = None) -> str:
        """Indented JSON text in the documented key order, ending with a newline."""
        return json.dumps(self.to_json(area), indent=2, sort_keys=False, ensure_ascii=False) + "\n"

    def to_csv(self, area: str | None = None) -> str:
        """One row per (area, cell): area, a column per dimension, value, margin_95, confidential.

        ``value`` is empty for a confidential cell; ``confidential`` is ``true``/``false``.
        Totals are not rows here (they are sums of rows; see the JSON ``totals``).
        """
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["area", *self.dimensions, "value", "margin_95", "confidential"])
        for a in self._selected(area):
            for c in a.cells:
                value = "" if c.value is None else str(c.value)
                writer.writerow([a.area, *c.key, value, c.margin, str(c.confidential).lower()])
        return buf.getvalue()

    def caption(self, area: str = NATIONAL) -> str:
        """The privacy statement in one paragraph, for the rich table and the chart."""
        p, a = self.privacy, self.area(area)
        if p.secure:
            noise = (
                f"secure aggregation over {p.participants} departments, {p.colluders} "
                f"assumed colluding: each added noise of variance σ²/(t−c) = "
                f"{p.share_sigma_squared}, so the others together add at least σ = "
                f"{p.sigma:.2f}"
            )
        else:
            noise = f"σ = {p.sigma:.2f} per department"
        return (
            f"{self.missing_flag()}{p.mechanism}: ρ = {p.rho}, {noise}, "
            f"ε = {p.epsilon:.2f} at δ = {p.delta:g}; snapshot cap ρ = {p.snapshot_rho} "
            f"(ε = {p.snapshot_epsilon:.2f}). Departments ({len(a.departments)}): "
            f"{', '.join(a.departments)}. Values below {self.threshold} shown as "
            f"<{self.threshold}; ± is the 95 % margin of error."
        )

    def missing_flag(self) -> str:
        """A warning naming the departments left out, or "" when none were."""
        if not self.missing_departments:
            return ""
        return (
            f"INCOMPLETE: {len(self.missing_departments)} department(s) of the federation "
            f"are not included (not ready when the snapshot's participants were settled): "
            f"{', '.join(self.missing_departments)}. "
        )

    def to_rich(self, area: str = NATIONAL) -> Table:
        """A readable table of one area, totals rows last, privacy statement as caption."""
        selected = self.area(area)
        # Text, not str: a title from the message must not be read as rich markup.
        incomplete = " (INCOMPLETE: departments missing)" if self.missing_departments else ""
        table = Table(
            title=Text(f"{self.title} — {selected.area}, {self.academic_year}{incomplete}")
        )
        for d in self.dimensions:
            table.add_column(d)
        table.add_column("value", justify="right")
        table.add_column("± 95 %", justify="right")
        for rows in (selected.cells, selected.totals):
            if rows is selected.totals and rows:
                table.add_section()
            for c in rows:
                margin = "" if c.confidential else f"± {c.margin:,}"
                table.add_row(*c.key, c.display(self.threshold), margin)
        table.caption = Text(self.caption(area))
        return table
