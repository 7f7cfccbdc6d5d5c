"""`childreg demo`: a whole federation on loopback, from synthetic children to the national table.

Makes a private CA, starts one real node process per department and a coordinator,
imports each department's CSV over mutual TLS, asks for the national table of children
by form of education, prints it (with the published figures beside it when the data are
the built-in synthetic set), writes it as CSV and JSON, and shuts everything down.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from childreg import codes, csvformat
from childreg.errors import InvalidInput, Violation
from childreg.models import ImportRecord, TableQuery
from childreg.seed import SEED_ACADEMIC_YEAR, SEED_FORM_COUNTS, SEED_TOTALS
from tools import importer, synth
from tools.cli_stats import fetch_table
from tools.federation import LocalFederation, Say
from tools.synth import DepartmentPlan
from tools.tables import NationalView


@dataclass(frozen=True)
class DemoResult:
    """What the demo produced."""

    view: NationalView
    reference: dict[str, int] | None
    imported: int
    seconds: float

    @property
    def matches_reference(self) -> bool | None:
        """Whether every published figure is reproduced exactly (None without a reference)."""
        if self.reference is None:
            return None
        got = {key[0]: n for key, n in self.view.cells} | self.view.totals()
        return all(got.get(name) == n for name, n in self.reference.items())


def departments_from_dir(directory: Path) -> list[tuple[DepartmentPlan, Path]]:
    """Departments and their CSV files: from manifest.json if present, else one per CSV."""
    if (directory / synth.MANIFEST_NAME).exists():
        manifest = synth.read_manifest(directory)
        return [
            (DepartmentPlan(d.id, d.name, d.region, d.districts), directory / d.file)
            for d in manifest.departments
        ]
    files = sorted(directory.glob("*.csv"))
    if not files:
        raise InvalidInput(
            f"no CSV files in {directory}", [Violation("from_dir", "one CSV file per department")]
        )
    return [(_plan_from_csv(f), f) for f in files]


def _plan_from_csv(path: Path) -> DepartmentPlan:
    """A department named after its file, covering the districts its rows mention."""
    districts: Counter[str] = Counter()
    for item in csvformat.iter_rows(path):
        if isinstance(item, ImportRecord):
            districts[item.child.district] += 1
    if not districts:
        raise InvalidInput(f"{path.name} has no valid rows", [Violation("file", "no valid rows")])
    slug = "".join(c if c.isalnum() else "-" for c in path.stem.lower()).strip("-")[:60] or "dept"
    main = districts.most_common(1)[0][0]
    return DepartmentPlan(
        id=slug, name=path.stem, region=codes.DISTRICT_REGION[main], districts=tuple(districts)
    )


def run_demo(
    *,
    departments: int,
    from_dir: Path | None,
    out: Path,
    seed: int,
    say: Say,
    workdir: Path | None = None,
    keep_running: bool = False,
) -> DemoResult:
    """Run the whole demo; returns the national table and how it compares with the figures."""
    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="childreg-demo-")) if workdir is None else workdir
    root.mkdir(parents=True, exist_ok=True)
    try:
        if from_dir is None:
            data_dir = root / "synthetic"
            say(f"generating synthetic children for {departments} departments")
            synth.generate(departments, data_dir, seed=seed)
            sources = departments_from_dir(data_dir)
            reference: dict[str, int] | None = {**SEED_FORM_COUNTS, **SEED_TOTALS}
        else:
            sources = departments_from_dir(from_dir)
            reference = None
        for _, path in sources:  # all-or-nothing for the whole demo: check every file first
            importer.check(path)
        plans = [plan for plan, _ in sources]
        with LocalFederation(root / "federation", plans, say=say) as fed:
            fed.setup()
            fed.start_nodes()
            say("importing each department's file into its own node over mutual TLS")
            with ThreadPoolExecutor(max_workers=2) as pool:
                counts = list(
                    pool.map(
                        lambda s: importer.import_file(fed.staff_endpoint(s[0].id), s[1]), sources
                    )
                )
            fed.start_coordinator()
            say("asking the coordinator for the national table by form of education")
            query = TableQuery(academic_year=SEED_ACADEMIC_YEAR, dimensions=("education_form",))
            view = fetch_table(fed.statistician_endpoint(), query)
            out.mkdir(parents=True, exist_ok=True)
            (out / "national_table.csv").write_text(view.to_csv(), encoding="utf-8")
            (out / "national_table.json").write_text(view.to_json_text(), encoding="utf-8")
            if keep_running:
                _wait_for_interrupt(fed, say)
            say("shutting the federation down")
        return DemoResult(view, reference, sum(counts), time.perf_counter() - started)
    finally:
        if workdir is None:
            shutil.rmtree(root, ignore_errors=True)


def _wait_for_interrupt(fed: LocalFederation, say: Say) -> None:
    assert fed.coordinator is not None
    say(
        "the federation keeps running; in another shell:\n"
        f"  childreg stats table --by education_form --by sex "
        f"--coordinator {fed.coordinator.address} "
        f"--server-name {fed.coordinator.server_name} "
        f"--identity {fed.identity('statistician')}\n"
        "press Ctrl-C to stop"
    )
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        return
