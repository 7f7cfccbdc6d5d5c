"""Exports of a published table for other systems: SDMX-CSV, SDMX-ML, a PNG chart, files.

Statistical offices exchange tables as SDMX (ISO 17369) and read charts, not protobuf.
The chart itself is drawn by tools/clients/chart.py (matplotlib, loaded only when drawing).
Everything here is built from :class:`tools.clients.published.PublishedView`, which never holds
the number of a confidential cell, so no export writes one (the display rule is
presentation, not protection: see tools/clients/published.py): SDMX carries it as a
missing observation value with ``CONF_STATUS = "C"`` (SDMX code list CL_CONF_STATUS:
``F`` free, ``C`` confidential), and the chart draws it hatched at the threshold height.
Outputs are deterministic: the same table gives the same bytes (no clock, no randomness).
The shapes are documented in docs/publication.md.
"""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

from childreg.errors import InvalidInput, Violation
from tools.clients.published import NATIONAL, PublishedCell, PublishedView

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
        # matplotlib only when a chart is drawn: services share this command line.
        from tools.clients.chart import chart_png  # noqa: PLC0415

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
