"""Exports of a published table for other systems: SDMX-CSV, SDMX-ML, a PNG chart, files.

Statistical offices exchange tables as SDMX (ISO 17369) and read charts, not protobuf.
Everything here is built from :class:`tools.published.PublishedView`, which never holds
the number of a confidential cell, so no export writes one (the display rule is
presentation, not protection: see tools/published.py): SDMX carries it as a
missing observation value with ``CONF_STATUS = "C"`` (SDMX code list CL_CONF_STATUS:
``F`` free, ``C`` confidential), and the chart draws it hatched at the threshold height.
Outputs are deterministic: the same table gives the same bytes (no clock, no randomness).
The shapes are documented in docs/publication.md.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from childreg import codes
from childreg.errors import InvalidInput, Violation
from tools.published import NATIONAL, PublishedCell, PublishedView

AGENCY = "CHILDREG"
_SDMX = "http://www.sdmx.org/resources/sdmxml/schemas/v2_1"
_NS = {"mes": f"{_SDMX}/message", "gen": f"{_SDMX}/data/generic", "com": f"{_SDMX}/common"}
for _prefix, _uri in _NS.items():
    ET.register_namespace(_prefix, _uri)

#: Observation-level attribute columns, in order.
ATTRIBUTES = ("CONF_STATUS", "OBS_STATUS", "MARGIN_95")


def _sdmx_id(text: str) -> str:
    """An SDMX IDType (letters, digits, underscore) from free text, in upper case."""
    return re.sub(r"[^A-Za-z0-9_]", "_", text).upper() or "TABLE"


def dataflow_id(view: PublishedView) -> str:
    """The dataflow of a catalogue table, e.g. table "education_form" -> DF_EDUCATION_FORM."""
    return f"DF_{_sdmx_id(view.table_id)}"


def structure_version(view: PublishedView) -> str:
    """The dataflow's version: the catalogue version, e.g. 3 -> "3.0"."""
    return f"{view.catalogue_version}.0"


def dimension_ids(view: PublishedView) -> list[str]:
    """SDMX dimension ids: REF_AREA, the table's dimensions in upper case, TIME_PERIOD."""
    return ["REF_AREA", *(d.upper() for d in view.dimensions), "TIME_PERIOD"]


def _observations(view: PublishedView) -> Iterator[tuple[list[str], PublishedCell]]:
    """Every (key values in dimension_ids order, cell) over all areas."""
    for area in view.areas:
        for cell in area.cells:
            yield [area.area, *cell.key, view.reference_date], cell


def _attributes(cell: PublishedCell) -> list[str]:
    return ["C" if cell.confidential else "F", "A", str(cell.margin)]


def sdmx_csv_header(view: PublishedView) -> list[str]:
    """STRUCTURE, STRUCTURE_ID, ACTION, the dimensions, OBS_VALUE, the attributes."""
    return ["STRUCTURE", "STRUCTURE_ID", "ACTION", *dimension_ids(view), "OBS_VALUE", *ATTRIBUTES]


def to_sdmx_csv(view: PublishedView) -> str:
    """SDMX-CSV 2.0: one row per (area, cell); OBS_VALUE empty when confidential."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(sdmx_csv_header(view))
    structure_id = f"{AGENCY}:{dataflow_id(view)}({structure_version(view)})"
    for key, cell in _observations(view):
        value = "" if cell.value is None else str(cell.value)
        writer.writerow(["dataflow", structure_id, "I", *key, value, *_attributes(cell)])
    return buf.getvalue()


def _el(parent: ET.Element, ns: str, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    elem = ET.SubElement(parent, f"{{{_NS[ns]}}}{tag}", attrs)
    elem.text = text
    return elem


def to_sdmx_ml(view: PublishedView) -> bytes:
    """An SDMX-ML 2.1 GenericData message, readable by sdmx1 without a structure file.

    Generic rather than structure-specific: a generic message names every dimension and
    attribute in the data (``<gen:Value id="SEX" value="female"/>``), so it is
    self-describing. sdmx1 reads it without a DSD, while a structure-specific message
    needs one (sdmx1 warns and guesses without it), and we publish no structure message.
    Observations use ``dimensionAtObservation="AllDimensions"`` (one flat ``gen:Obs`` per
    cell, no series). A confidential cell has no ``gen:ObsValue`` (SDMX's "missing";
    sdmx1 gives NaN) and ``CONF_STATUS = "C"``. The privacy statement travels as the
    header's ``mes:Source`` text.
    """
    flow, version = dataflow_id(view), structure_version(view)
    root = ET.Element(f"{{{_NS['mes']}}}GenericData")
    header = _el(root, "mes", "Header")
    _el(header, "mes", "ID", _sdmx_id(f"{flow}_{view.academic_year}"))
    _el(header, "mes", "Test", "false")
    # Deterministic: the publication time, never the clock (reference date if unset).
    _el(header, "mes", "Prepared", view.published_at or f"{view.reference_date}T00:00:00Z")
    _el(header, "mes", "Sender", id=AGENCY)
    structure = _el(
        header, "mes", "Structure", structureID=flow, dimensionAtObservation="AllDimensions"
    )
    usage = _el(structure, "com", "StructureUsage")
    ref = {"agencyID": AGENCY, "id": flow, "version": version, "class": "Dataflow"}
    ET.SubElement(usage, "Ref", {**ref, "package": "datastructure"})
    _el(header, "mes", "DataSetID", _sdmx_id(view.release_key or flow))
    source = _el(header, "mes", "Source", f"{view.title}. {view.caption(view.areas[0].area)}")
    source.set("{http://www.w3.org/XML/1998/namespace}lang", "en")

    dataset = _el(root, "mes", "DataSet", structureRef=flow)
    dims = dimension_ids(view)
    for key, cell in _observations(view):
        obs = _el(dataset, "gen", "Obs")
        obs_key = _el(obs, "gen", "ObsKey")
        for dim, code in zip(dims, key, strict=True):
            _el(obs_key, "gen", "Value", id=dim, value=code)
        if cell.value is not None:
            _el(obs, "gen", "ObsValue", value=str(cell.value))
        attrs = _el(obs, "gen", "Attributes")
        for attr, value in zip(ATTRIBUTES, _attributes(cell), strict=True):
            _el(attrs, "gen", "Value", id=attr, value=value)
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data + b"\n"


def _label(code: str) -> str:
    """Human-readable text for the chart; "$" escaped so matplotlib never parses mathtext."""
    return code.replace("_", " ").replace("$", r"\$")


def _draw_panel(ax: Axes, view: PublishedView, cells: list[PublishedCell]) -> float:
    """Grouped bars (first dimension on x, a series per category of the second); the top."""
    dims, threshold = view.dimensions, view.threshold
    xcats = codes.codes(dims[0])
    series = codes.codes(dims[1]) if len(dims) > 1 else ("",)
    width = 0.8 / len(series)
    by_key = {c.key[:2]: c for c in cells}
    top = float(threshold)
    for s, name in enumerate(series):
        colour = f"C{s % 10}"
        for x, xcat in enumerate(xcats):
            cell = by_key[(xcat, name) if len(dims) > 1 else (xcat,)]
            pos = x - 0.4 + width * (s + 0.5)
            if cell.value is None:  # drawn at the threshold, labelled "<N", never its number
                ax.bar(pos, threshold, width, color="white", edgecolor=colour, hatch="///")
                ax.annotate(
                    f"<{threshold}",
                    (pos, threshold),
                    xytext=(0, 2),
                    textcoords="offset points",
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
            else:
                ax.bar(pos, cell.value, width, color=colour, yerr=cell.margin, capsize=2)
                top = max(top, float(cell.value + cell.margin))
    many = len(xcats) > 20
    ax.set_xticks(
        range(len(xcats)),
        [_label(c) for c in xcats],
        rotation=90 if many else 30,
        ha="center" if many else "right",
    )
    ax.set_xlim(-0.6, len(xcats) - 0.4)
    ax.set_ylabel("children")
    return top


def _legend(ax: Axes, view: PublishedView) -> None:
    """One legend, above the first panel: the series (2+ dimensions), confidential bars."""
    series = codes.codes(view.dimensions[1]) if len(view.dimensions) > 1 else ()
    handles = [Patch(facecolor=f"C{i % 10}", label=_label(n)) for i, n in enumerate(series)]
    label = f"below {view.threshold}: confidential, shown as <{view.threshold}"
    handles.append(Patch(facecolor="white", edgecolor="grey", hatch="///", label=label))
    ax.legend(
        handles=handles,
        loc="lower left",
        bbox_to_anchor=(0.0, 1.01),
        ncols=min(len(handles), 4),
        fontsize=8,
        frameon=False,
    )


#: Beyond this many panels a chart is unreadable; export CSV instead.
MAX_PANELS = 24


def chart_png(view: PublishedView, path: Path, area: str = NATIONAL) -> Path:
    """A bar chart of one area with 95 % error bars, written as PNG; returns ``path``.

    One dimension: a bar per category. Two: grouped bars. Three or four: one panel per
    category (combination) of the dimensions after the second, sharing the y axis.
    Rendered on an explicit Agg canvas (no display, no global backend change) with no
    software version in the PNG metadata, so the same table gives the same bytes.
    """
    selected = view.area(area)
    dims = view.dimensions
    rest = list(itertools.product(*(codes.codes(d) for d in dims[2:])))
    if len(rest) > MAX_PANELS:
        raise InvalidInput(
            f"a chart of {len(rest)} panels would be unreadable; export CSV instead",
            [Violation("dimensions", f"at most {MAX_PANELS} panels")],
        )
    n_bars = len(codes.codes(dims[0])) * (len(codes.codes(dims[1])) if len(dims) > 1 else 1)
    width = min(max(7.0, 2.0 + 0.3 * n_bars), 24.0)
    fig = Figure(figsize=(width, 1.6 + 3.4 * len(rest)), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)  # the Agg canvas, explicitly: nothing is ever displayed
    axes = fig.subplots(len(rest), 1, squeeze=False, sharey=True)[:, 0]
    top = 0.0
    for ax, combo in zip(axes, rest, strict=True):
        top = max(top, _draw_panel(ax, view, [c for c in selected.cells if c.key[2:] == combo]))
        if combo:
            title = ", ".join(
                f"{_label(d)}: {_label(c)}" for d, c in zip(dims[2:], combo, strict=True)
            )
            ax.set_title(title, fontsize=9, loc="right")
    axes[0].set_ylim(0, top * 1.12 + 1)
    axes[-1].set_xlabel(_label(dims[0]))
    fig.suptitle(
        f"{_label(view.title)}\n{_label(selected.area)}, {_label(view.academic_year)} "
        f"(reference date {_label(view.reference_date)})",
        fontsize=11,
    )
    _legend(axes[0], view)
    p = view.privacy
    # supxlabel, not fig.text: the constrained layout keeps room for it under the axes.
    fig.supxlabel(
        f"σ = {p.sigma:.2f} per department, ρ = {_label(p.rho)}, ε = {p.epsilon:.2f} "
        f"at δ = {p.delta:g}; error bars: 95 % margin of error; departments: "
        f"{len(selected.departments)}",
        fontsize=7,
    )
    path = Path(path)
    fig.savefig(path, format="png", metadata={"Software": None})
    return path


FORMATS = {
    ".csv": "csv",
    ".json": "json",
    ".sdmx.csv": "sdmx-csv",
    ".xml": "sdmx-ml",
    ".png": "png",
}


def write_export(
    view: PublishedView, path: Path, fmt: str | None = None, area: str | None = None
) -> Path:
    """Write ``view`` to ``path`` in ``fmt`` or, without it, the format of the file suffix.

    Formats: csv, json, sdmx-csv, sdmx-ml, png (suffixes .csv, .json, .sdmx.csv, .xml,
    .png). ``area`` narrows csv and json to one geography and picks the chart's (national
    by default); SDMX always carries every area.
    """
    path = Path(path)
    name = path.name.lower()
    if fmt is None:
        # Longest suffix first, so "x.sdmx.csv" is SDMX-CSV and not plain CSV.
        fmt = next(
            (f for s, f in sorted(FORMATS.items(), key=lambda i: -len(i[0])) if name.endswith(s)),
            None,
        )
    if fmt is None or fmt not in FORMATS.values():
        accepted = ", ".join(f"{f} ({s})" for s, f in FORMATS.items())
        raise InvalidInput(
            f"unknown export format for {path.name!r}; accepted: {accepted}",
            [Violation("format", f"must be one of: {accepted}")],
        )
    if area is not None:
        view.area(area)  # refuse an unknown area before writing anything
    if fmt == "png":
        return chart_png(view, path, area or NATIONAL)
    data: bytes
    if fmt == "sdmx-ml":
        data = to_sdmx_ml(view)
    else:
        text = {
            "csv": lambda: view.to_csv(area),
            "json": lambda: view.to_json_text(area),
            "sdmx-csv": lambda: to_sdmx_csv(view),
        }[fmt]()
        data = text.encode("utf-8")
    path.write_bytes(data)
    return path
