"""How a published table is shown and exported (tools/clients/published.py, exports.py).

The rule under test everywhere: a confidential cell's number never appears, in any
output. The national ``home_education`` cell is 7 (a value used nowhere else, margins
included), so its absence can be checked in each format.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from xml.etree import ElementTree as ET

import matplotlib

matplotlib.use("Agg")

import matplotlib.image
import pytest
import sdmx
from rich.console import Console

from childreg import codes
from childreg.dp import zcdp
from childreg.errors import InvalidInput
from childreg.v1 import statistics_pb2 as spb
from tools.clients import chart, exports
from tools.clients.published import PublishedView

FORMS = codes.EDUCATION_FORMS
#: Region values per form (in codes.EDUCATION_FORMS order); the nation is their sum.
BAKU = [300, 12000, 800, 400, 5, 1500, 250, 1000, 40, 9, 2]
ABSHERON = [209, 6811, 403, 245, 2, 846, 138, 502, 24, 6, 1]
NATIONAL = [b + a for b, a in zip(BAKU, ABSHERON, strict=True)]
SECRET = 7  # national home_education: confidential, and no other number contains a 7
THRESHOLD = 10
AREAS = ("national", "baku", "absheron_khizi")


def privacy() -> spb.PrivacyStatement:
    """σ² = 16 per department (σ = 4): margin 12 for 2 departments, 8 for one."""
    return spb.PrivacyStatement(
        mechanism="discrete_gaussian/zcdp/per-department",
        rho="1/32",
        sigma_squared="16",
        sigma=4.0,
        epsilon=1.31,
        delta=1e-9,
        snapshot_rho="1/4",
        snapshot_epsilon=4.4,
        display_threshold=THRESHOLD,
    )


def area(name: str, departments: list[str], values: list[int]) -> spb.AreaValues:
    """An area whose flags follow the display rule and whose margins follow σ²."""
    margin = {1: 8, 2: 12}[len(departments)]
    return spb.AreaValues(
        area=name,
        departments=departments,
        values=values,
        margins=[margin] * len(values),
        confidential=[v < THRESHOLD for v in values],
    )


def with_totals(a: spb.AreaValues) -> spb.AreaValues:
    """The totals a coordinator publishes with a table by education form alone; margins
    as if the cells' errors were independent, margin95(k · σ² · departments)."""
    if len(a.values) != len(FORMS):
        return a  # a malformed area: leave it for the test that refuses it
    by_form = dict(zip(FORMS, a.values, strict=True))
    for name, forms in codes.FORM_TOTALS.items():
        value = sum(by_form[f] for f in forms)
        a.totals.append(
            spb.AreaTotal(
                name=name,
                value=value,
                margin=zcdp.margin95(len(forms) * 16 * len(a.departments)),
                confidential=value < THRESHOLD,
            )
        )
    return a


def message(dimensions: list[str], areas: list[spb.AreaValues]) -> spb.PublishedTable:
    """A published table for 2023/24 with the given areas (and totals by education form)."""
    if dimensions == ["education_form"]:
        areas = [with_totals(a) for a in areas]
    return spb.PublishedTable(
        academic_year="2023/24",
        reference_date="2023-09-15",
        catalogue_version=1,
        table_id="_x_".join(dimensions),
        title="Children by " + " × ".join(dimensions),
        dimensions=dimensions,
        privacy=privacy(),
        areas=areas,
        published_at="2024-05-02T10:00:00Z",
        release_key="2023/24/education_form/v1",
    )


def one_d() -> PublishedView:
    """education_form alone: the nation and two regions."""
    return PublishedView.from_proto(
        message(
            ["education_form"],
            [
                area("national", ["dept_baku", "dept_absheron"], NATIONAL),
                area("baku", ["dept_baku"], BAKU),
                area("absheron_khizi", ["dept_absheron"], ABSHERON),
            ],
        )
    )


def two_d() -> PublishedView:
    """education_form × sex, with the secret in (home_education, female)."""
    values = [20 + 13 * i for i in range(codes.grid_size(["education_form", "sex"]))]
    values = [v if "7" not in str(v) else v + 1 for v in values]
    values[FORMS.index("home_education") * 2] = SECRET
    values[1] = 3
    deps = ["dept_baku", "dept_absheron"]
    return PublishedView.from_proto(
        message(["education_form", "sex"], [area("national", deps, values)])
    )


VIEWS = {"1d": one_d, "2d": two_d}


def expected(view: PublishedView) -> dict[tuple[str, ...], tuple[int | None, str, int]]:
    """(area, *categories) -> (value or None, CONF_STATUS, margin), from the message."""
    return {
        (a.area, *c.key): (c.value, "C" if c.confidential else "F", c.margin)
        for a in view.areas
        for c in a.cells
    }


def test_confidential_cells_drop_their_number() -> None:
    """A cell below the threshold keeps no value; the others keep theirs."""
    home = one_d().area().cells[FORMS.index("home_education")]
    assert home.confidential
    assert home.value is None
    assert home.display(THRESHOLD) == "<10"
    assert one_d().area().cells[0].value == 509


def test_a_wrong_flag_cannot_reveal_a_small_value() -> None:
    """A value below the threshold is confidential even if the publisher's flag says not."""
    msg = message(["education_form"], [area("national", ["d1", "d2"], NATIONAL)])
    msg.areas[0].confidential[FORMS.index("home_education")] = False
    view = PublishedView.from_proto(msg)
    assert view.area().cells[FORMS.index("home_education")].value is None


def test_malformed_messages_are_refused() -> None:
    """Wrong cell counts, negative values, unknown dimensions, no or twice an area: refused."""
    short = message(["education_form"], [area("national", ["d1"], NATIONAL[:-1])])
    negative = message(["education_form"], [area("national", ["d1"], [-1, *NATIONAL[1:]])])
    unknown = message(["education_form"], [area("national", ["d1"], NATIONAL)])
    unknown.dimensions[0] = "shoe_size"
    empty = message(["education_form"], [])
    twice = message(["education_form"], [area("national", ["d1"], NATIONAL)] * 2)
    for bad in (short, negative, unknown, empty, twice):
        with pytest.raises(InvalidInput):
            PublishedView.from_proto(bad)


def rich_text(view: PublishedView, area_name: str = "national") -> str:
    """The rich table as plain text."""
    console = Console(record=True, width=220, file=io.StringIO())
    console.print(view.to_rich(area_name))
    return console.export_text()


def test_rich_shows_less_than_threshold_not_the_number() -> None:
    """The confidential row reads "<10" with no margin; others read value and ± margin."""
    text = rich_text(one_d())
    row = next(line for line in text.splitlines() if " home_education " in line)
    assert "<10" in row
    assert str(SECRET) not in row
    row = next(line for line in text.splitlines() if " mainstream_class " in line)
    assert "18,811" in row
    assert "± 12" in row


def test_rich_caption_states_the_privacy_terms() -> None:
    """The caption names the mechanism, ρ, σ, ε at δ, the cap, departments and the rule."""
    text = " ".join(rich_text(one_d()).split())
    for part in (
        "discrete_gaussian/zcdp/per-department",
        "ρ = 1/32",
        "σ = 4.00 per department",
        "ε = 1.31 at δ = 1e-09",
        "snapshot cap ρ = 1/4",
        "dept_baku, dept_absheron",
        "Values below 10 shown as <10",
    ):
        assert part in text


def test_rich_and_json_totals_are_sums_with_their_own_margin() -> None:
    """Totals are shown as the coordinator published them, with their own margins."""
    text = rich_text(one_d())
    general = next(line for line in text.splitlines() if "general_education_total" in line)
    special = next(line for line in text.splitlines() if "special_provision_total" in line)
    assert "24,902" in general  # 18,811 + 6,091: mainstream and the six special forms
    assert "± 30" in general  # ceil(1.96 · √(7 · 16 · 2))
    assert "6,091" in special
    assert "± 28" in special  # ceil(1.96 · √(6 · 16 · 2))
    baku = one_d().to_json("baku")["areas"][0]["totals"]
    assert baku["special_provision_total"] == {
        "value": 3955,
        "display": "3,955",
        "margin": 20,  # ceil(1.96 · √(6 · 16 · 1))
        "confidential": False,
    }


def test_a_total_below_the_threshold_is_confidential() -> None:
    """When the special forms add up to less than 10, their total shows "<10" too."""
    tiny = [500, 800, 1, 1, 2, 1, 0, 1, 30, 40, 50]
    view = PublishedView.from_proto(message(["education_form"], [area("national", ["d"], tiny)]))
    totals = view.to_json()["areas"][0]["totals"]
    assert totals["special_provision_total"]["confidential"] is True
    assert totals["special_provision_total"]["value"] is None
    assert totals["special_provision_total"]["display"] == "<10"
    assert totals["general_education_total"]["value"] == 806


def test_totals_only_for_education_form_alone() -> None:
    """A two-dimensional table has no totals, in rich or JSON."""
    assert "totals" not in two_d().to_json()["areas"][0]
    assert "_total" not in rich_text(two_d())


def test_json_shape_is_exactly_the_documented_one() -> None:
    """Top-level, privacy, area, cell and total keys are exactly those documented."""
    doc = one_d().to_json()
    assert list(doc) == [
        "academic_year",
        "reference_date",
        "table_id",
        "title",
        "catalogue_version",
        "dimensions",
        "privacy",
        "areas",
        "published_at",
        "release_key",
    ]
    assert list(doc["privacy"]) == [
        "mechanism",
        "rho",
        "sigma_squared",
        "sigma",
        "epsilon",
        "delta",
        "snapshot_rho",
        "snapshot_epsilon",
        "display_threshold",
    ]
    assert [a["area"] for a in doc["areas"]] == list(AREAS)
    for entry in doc["areas"]:
        assert list(entry) == ["area", "departments", "cells", "totals"]
        assert len(entry["cells"]) == len(FORMS)
        for cell in entry["cells"]:
            assert list(cell) == ["education_form", "value", "display", "margin", "confidential"]
        assert list(entry["totals"]) == list(codes.FORM_TOTALS)
        for total in entry["totals"].values():
            assert list(total) == ["value", "display", "margin", "confidential"]
    cell = doc["areas"][0]["cells"][FORMS.index("home_education")]
    assert cell == {
        "education_form": "home_education",
        "value": None,
        "display": "<10",
        "margin": 12,
        "confidential": True,
    }
    assert json.loads(one_d().to_json_text()) == doc
    assert one_d().to_json_text() == one_d().to_json_text()
    assert [a["area"] for a in one_d().to_json("baku")["areas"]] == ["baku"]


def test_csv_leaves_confidential_values_empty() -> None:
    """The CSV has the documented header, a row per (area, cell), empty confidential values."""
    text = one_d().to_csv()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["area", "education_form", "value", "margin_95", "confidential"]
    assert len(rows) == 1 + len(AREAS) * len(FORMS)
    by_key = {(r[0], r[1]): r for r in rows[1:]}
    assert by_key["national", "home_education"] == ["national", "home_education", "", "12", "true"]
    assert by_key["national", "preschool"] == ["national", "preschool", "509", "12", "false"]
    for row in rows[1:]:
        assert (row[2] == "") == (row[4] == "true")
    assert text == one_d().to_csv()
    assert one_d().to_csv("baku").count("\n") == 1 + len(FORMS)


def test_two_d_csv_and_json_keep_the_secret_out() -> None:
    """In a two-dimensional table, the confidential cell is empty in CSV and null in JSON."""
    view = two_d()
    rows = {(r[1], r[2]): r for r in csv.reader(io.StringIO(view.to_csv()))}
    assert rows["home_education", "female"][3] == ""
    cell = view.to_json()["areas"][0]["cells"][FORMS.index("home_education") * 2]
    assert (cell["sex"], cell["value"], cell["display"]) == ("female", None, "<10")


@pytest.mark.parametrize("name", sorted(VIEWS))
def test_sdmx_csv_has_documented_header_and_one_row_per_cell(name: str) -> None:
    """SDMX-CSV parses, has the documented columns and a row per (area, cell)."""
    view = VIEWS[name]()
    rows = list(csv.DictReader(io.StringIO(exports.to_sdmx_csv(view))))
    dims = [d.upper() for d in view.dimensions]
    header = ["STRUCTURE", "STRUCTURE_ID", "ACTION", "REF_AREA", *dims, "TIME_PERIOD"]
    header += ["OBS_VALUE", "CONF_STATUS", "OBS_STATUS", "MARGIN_95"]
    assert list(rows[0]) == header
    want = expected(view)
    assert len(rows) == len(want)
    flow = f"CHILDREG:DF_{view.table_id.upper()}(1.0)"
    for row in rows:
        value, status, margin = want[(row["REF_AREA"], *(row[d] for d in dims))]
        assert (row["STRUCTURE"], row["STRUCTURE_ID"], row["ACTION"]) == ("dataflow", flow, "I")
        assert row["TIME_PERIOD"] == "2023-09-15"
        assert row["OBS_VALUE"] == ("" if value is None else str(value))
        assert (row["CONF_STATUS"], row["OBS_STATUS"]) == (status, "A")
        assert row["MARGIN_95"] == str(margin)


@pytest.mark.parametrize("name", sorted(VIEWS))
def test_sdmx_ml_reads_back_in_sdmx1_with_same_values_and_flags(name: str) -> None:
    """sdmx1 reads the message without a structure; to_pandas gives the same cells."""
    view = VIEWS[name]()
    data = exports.to_sdmx_ml(view)
    msg = sdmx.read_sdmx(io.BytesIO(data))
    assert isinstance(msg, sdmx.message.DataMessage)
    assert msg.header.sender is not None
    assert msg.header.sender.id == "CHILDREG"
    assert msg.header.test is False
    assert msg.header.prepared is not None
    assert msg.header.prepared.isoformat() == "2024-05-02T10:00:00+00:00"
    assert msg.dataflow is not None
    assert msg.dataflow.id == f"DF_{view.table_id.upper()}"
    frame = sdmx.to_pandas(msg, attributes="o")
    got = {}
    for index, row in frame.iterrows():
        key = (index[0], *index[1:-1])
        assert index[-1] == "2023-09-15"
        value = None if math.isnan(row["value"]) else int(row["value"])
        got[key] = (value, row["CONF_STATUS"], int(row["MARGIN_95"]))
        assert row["OBS_STATUS"] == "A"
    assert got == expected(view)
    assert data == exports.to_sdmx_ml(view)


def test_sdmx_ml_has_no_value_for_a_confidential_cell() -> None:
    """The confidential observation has CONF_STATUS C and no ObsValue; 7 appears nowhere."""
    data = exports.to_sdmx_ml(one_d())
    assert f'value="{SECRET}"'.encode() not in data
    gen = "{http://www.sdmx.org/resources/sdmxml/schemas/v2_1/data/generic}"
    for obs in ET.fromstring(data).iter(f"{gen}Obs"):
        key = {v.get("id"): v.get("value") for v in obs.iter(f"{gen}Value")}
        if key["REF_AREA"] == "national" and key["EDUCATION_FORM"] == "home_education":
            assert obs.find(f"{gen}ObsValue") is None
            assert key["CONF_STATUS"] == "C"
            break
    else:
        pytest.fail("no national home_education observation")


def test_secret_absent_from_every_text_export() -> None:
    """No export carries the confidential number as a value of its cell."""
    view = one_d()
    assert "home_education,7" not in view.to_csv()
    assert ",7,C," not in exports.to_sdmx_csv(view)
    assert '"value": 7' not in view.to_json_text()


@pytest.mark.parametrize(
    ("name", "area_name"), [("1d", "national"), ("1d", "baku"), ("2d", "national")]
)
def test_chart_is_a_readable_deterministic_png(tmp_path: Path, name: str, area_name: str) -> None:
    """The chart is a PNG matplotlib reads back, of sensible size, the same bytes twice."""
    view = VIEWS[name]()
    first = chart.chart_png(view, tmp_path / "a.png", area_name)
    second = chart.chart_png(view, tmp_path / "b.png", area_name)
    data = first.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert data == second.read_bytes()
    assert b"Software" not in data
    image = matplotlib.image.imread(first)
    height, width = image.shape[:2]
    assert 300 <= height <= 3000
    assert 600 <= width <= 3000


def test_chart_of_three_dimensions_has_a_panel_per_category(tmp_path: Path) -> None:
    """A third dimension gives one panel per category: a taller image."""
    dims = ["education_form", "sex", "age_band"]
    values = [(i * 37) % 300 for i in range(codes.grid_size(dims))]
    view = PublishedView.from_proto(message(dims, [area("national", ["d"], values)]))
    image = matplotlib.image.imread(chart.chart_png(view, tmp_path / "c.png"))
    assert image.shape[0] > 4 * image.shape[1] / 2


def test_unknown_area_is_refused_naming_the_available_ones(tmp_path: Path) -> None:
    """Asking for an area the table lacks names the ones it has, in every entry point."""
    view = one_d()
    calls = (
        lambda: view.area("nowhere"),
        lambda: view.to_rich("nowhere"),
        lambda: view.to_csv("nowhere"),
        lambda: chart.chart_png(view, tmp_path / "x.png", "nowhere"),
        lambda: exports.write_export(view, tmp_path / "x.csv", area="nowhere"),
    )
    for call in calls:
        with pytest.raises(InvalidInput, match="national, baku, absheron_khizi"):
            call()
    assert not (tmp_path / "x.csv").exists()


def test_unknown_export_format_is_refused(tmp_path: Path) -> None:
    """An unknown suffix or format name is refused, naming the accepted formats."""
    with pytest.raises(InvalidInput, match=r"\.sdmx\.csv"):
        exports.write_export(one_d(), tmp_path / "table.xlsx")
    with pytest.raises(InvalidInput, match="sdmx-ml"):
        exports.write_export(one_d(), tmp_path / "table.csv", fmt="xlsx")
    assert list(tmp_path.iterdir()) == []


def test_write_export_chooses_the_format_by_suffix(tmp_path: Path) -> None:
    """.sdmx.csv is SDMX-CSV, .csv plain CSV, .json JSON, .xml SDMX-ML, .png a chart."""
    view = one_d()
    out = {s: exports.write_export(view, tmp_path / f"t{s}") for s in exports.FORMATS}
    assert out[".sdmx.csv"].read_text(encoding="utf-8").startswith("STRUCTURE,")
    assert out[".csv"].read_text(encoding="utf-8").startswith("area,education_form,")
    assert json.loads(out[".json"].read_text(encoding="utf-8")) == view.to_json()
    assert out[".xml"].read_bytes() == exports.to_sdmx_ml(view)
    assert out[".png"].read_bytes().startswith(b"\x89PNG")
    forced = exports.write_export(view, tmp_path / "any.txt", fmt="json", area="baku")
    assert json.loads(forced.read_text(encoding="utf-8")) == view.to_json("baku")


def test_a_total_that_is_not_the_sum_of_its_cells_is_refused() -> None:
    """A message whose total disagrees with its cells is malformed, not displayed."""
    msg = message(["education_form"], [area("national", ["d"], BAKU)])
    msg.areas[0].totals[0].value += 1
    with pytest.raises(InvalidInput, match="not a sum"):
        PublishedView.from_proto(msg)
