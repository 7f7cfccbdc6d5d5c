"""National tables as a statistician sees them: a readable table, CSV and JSON.

JSON shape (stable, documented in docs/cli.md)::

    {"academic_year": "2023/24", "dimensions": ["education_form"],
     "cells": [{"education_form": "preschool", "count": 509}, ...],
     "totals": {"general_education_total": 31855, ...},   # only for education_form alone
     "complete": true, "answered_departments": [...], "missing_departments": []}
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

from rich.table import Table

from childreg import codes
from childreg.v1 import statistics_pb2 as spb


@dataclass(frozen=True)
class NationalView:
    """A national table with its provenance, ready to render."""

    academic_year: str
    dimensions: tuple[str, ...]
    cells: tuple[tuple[tuple[str, ...], int], ...]
    answered: tuple[str, ...]
    missing: tuple[str, ...]

    @property
    def complete(self) -> bool:
        """True only when every department answered."""
        return not self.missing

    @classmethod
    def from_proto(cls, msg: spb.NationalTable) -> NationalView:
        """Pair the dense counts with their categories."""
        dims = tuple(msg.table.dimensions)
        cells = tuple(zip(codes.grid(dims), msg.table.counts, strict=True))
        return cls(
            msg.table.academic_year,
            dims,
            cells,
            tuple(msg.answered_departments),
            tuple(msg.missing_departments),
        )

    def totals(self) -> dict[str, int]:
        """The published totals (sums of forms), when the table is by education form alone."""
        if self.dimensions != ("education_form",):
            return {}
        by_form = {key[0]: n for key, n in self.cells}
        return {name: sum(by_form[f] for f in forms) for name, forms in codes.FORM_TOTALS.items()}

    def to_json(self) -> dict[str, Any]:
        """The documented JSON object."""
        out: dict[str, Any] = {
            "academic_year": self.academic_year,
            "dimensions": list(self.dimensions),
            "cells": [
                {**dict(zip(self.dimensions, key, strict=True)), "count": n}
                for key, n in self.cells
            ],
        }
        totals = self.totals()
        if totals:
            out["totals"] = totals
        out["complete"] = self.complete
        out["answered_departments"] = list(self.answered)
        out["missing_departments"] = list(self.missing)
        return out

    def to_json_text(self) -> str:
        """Indented JSON text."""
        return json.dumps(self.to_json(), indent=2)

    def to_csv(self) -> str:
        """One row per cell: a column per dimension, then count."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow([*self.dimensions, "count"])
        for key, n in self.cells:
            writer.writerow([*key, n])
        return buf.getvalue()

    def to_rich(self, reference: dict[str, int] | None = None) -> Table:
        """A readable table; with ``reference`` (published figures), a comparison column."""
        title = f"Children by {' × '.join(self.dimensions)}, {self.academic_year}"
        table = Table(title=title)
        for d in self.dimensions:
            table.add_column(d)
        table.add_column("count", justify="right")
        if reference is not None:
            table.add_column("published", justify="right")
            table.add_column("equal", justify="center")
        rows = [(key, n) for key, n in self.cells]
        rows += [((name,), n) for name, n in self.totals().items()]
        for key, n in rows:
            extra: list[str] = []
            if reference is not None:
                ref = reference.get(key[0]) if len(key) == 1 else None
                extra = ["-", ""] if ref is None else [f"{ref:,}", "yes" if ref == n else "NO"]
            table.add_row(*key, f"{n:,}", *extra)
        if self.missing:
            table.caption = f"INCOMPLETE: missing departments {', '.join(self.missing)}"
        return table
