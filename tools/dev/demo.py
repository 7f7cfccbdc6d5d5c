"""`childreg demo`: a whole federation on loopback, from synthetic children to the national table.

Makes a private CA and a statistics authority that signs the default table catalogue,
starts one real node process per department and a coordinator, imports each
department's CSV over mutual TLS, asks for the national table of children by form of
education — published with discrete Gaussian noise, consistent, with 95 % margins —
prints it (beside the published AZ 2023/24 figures, the shape of the built-in Azerbaijani
synthetic set for whatever year is current, with whether each lies within its margin),
writes it as CSV, JSON, SDMX-CSV, SDMX-ML and a PNG chart, and shuts everything down.
``country`` picks the shipped country profile (Azerbaijan or Kazakhstan) the federation is
signed and run with.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from childreg import codes, csvformat, profile
from childreg.errors import InvalidInput, Violation
from childreg.models import ImportRecord, TableQuery
from childreg.seed import SEED_ACADEMIC_YEAR, SEED_FORM_COUNTS, SEED_TOTALS
from childreg.service import wait_for_signal
from tools.clients import importer
from tools.clients.exports import write_export
from tools.clients.published import NATIONAL, PublishedView
from tools.clients.statistician import fetch_table
from tools.dev import synth
from tools.dev.federation import LocalFederation, Say
from tools.dev.synth import DepartmentPlan

#: The school identity a kept-running demo issues, so a newcomer can try an extract.
DEMO_SCHOOL = "demo-school"

#: Files the demo writes, by suffix (tools/clients/exports.write_export chooses the format).
OUTPUTS = ("national_table.csv", "national_table.json", "national_table.sdmx.csv",
           "national_table.xml", "national_table.png")  # fmt: skip


@dataclass(frozen=True)
class Comparison:
    """One published figure beside the demo's noisy, published value."""

    name: str
    reference: int
    published: int | None  # None when shown as "<10"
    margin: int

    @property
    def within_margin(self) -> bool:
        """Whether the published value lies within its stated 95 % margin of the figure."""
        return self.published is not None and abs(self.published - self.reference) <= self.margin


@dataclass(frozen=True)
class DemoResult:
    """What the demo produced."""

    view: PublishedView
    reference: dict[str, int] | None
    imported: int
    seconds: float

    def comparisons(self) -> list[Comparison]:
        """Each published figure against the national table (empty without a reference)."""
        if self.reference is None:
            return []
        national = self.view.area(NATIONAL)
        got = {c.key[0]: c for c in (*national.cells, *national.totals)}
        return [
            Comparison(name, n, got[name].value, got[name].margin)
            for name, n in self.reference.items()
        ]


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
        id=slug, name=path.stem, region=codes.region_of(main), districts=tuple(districts)
    )


def run_demo(
    *,
    departments: int | None,
    from_dir: Path | None,
    out: Path,
    seed: int,
    say: Say,
    workdir: Path | None = None,
    keep_running: bool = False,
    country: str = profile.DEFAULT_COUNTRY,
    academic_year: str | None = None,
) -> DemoResult:
    """Run the whole demo for ``country``'s profile and ``academic_year`` (default: the one
    today falls in); ``departments`` None: one per region of the profile. Returns the
    national table and how it compares with the figures."""
    with profile.installed(profile.embedded(country)) as country_profile:
        year = academic_year or country_profile.academic_year(dt.date.today())
        n = len(country_profile.regions) if departments is None else departments
        return _run(
            n, from_dir, out, seed=seed, say=say, workdir=workdir, keep=keep_running, year=year
        )


def _run(
    departments: int,
    from_dir: Path | None,
    out: Path,
    *,
    seed: int,
    say: Say,
    workdir: Path | None,
    keep: bool,
    year: str,
) -> DemoResult:
    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="childreg-demo-")) if workdir is None else workdir
    root.mkdir(parents=True, exist_ok=True)
    try:
        if from_dir is None:
            data_dir = root / "synthetic"
            country = profile.active().country
            say(f"generating synthetic children ({country}, {year}) for {departments} departments")
            figures = synth.figures_for(country, year)
            synth.generate(departments, data_dir, seed=seed, figures=figures, academic_year=year)
            sources = departments_from_dir(data_dir)
            # The AZ figures are the data's shape; a KZ set has no published figures to show.
            reference: dict[str, int] | None = (
                {**SEED_FORM_COUNTS, **SEED_TOTALS} if country == "az" else None
            )
        else:
            sources = departments_from_dir(from_dir)
            reference = None
        for _, path in sources:  # all-or-nothing for the whole demo: check every file first
            importer.check(path)
        plans = [plan for plan, _ in sources]
        # Kept running, the federation has a witness (extracts fail closed without one).
        with LocalFederation(root / "federation", plans, say=say, witness=keep) as fed:
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
            say(f"asking the coordinator for the {year} national table by form of education")
            query = TableQuery(academic_year=year, dimensions=("education_form",))
            view = fetch_table(fed.statistician_endpoint(), query)
            out.mkdir(parents=True, exist_ok=True)
            for name in OUTPUTS:
                write_export(view, out / name)
            if keep:
                fed.issue_identity("school", DEMO_SCHOOL)
                fed.wait_witnessed(plans[0].id)
                _wait_for_interrupt(fed, say, _assessed_child(sources[0][1]))
            say("shutting the federation down")
        return DemoResult(view, reference, sum(counts), time.perf_counter() - started)
    finally:
        if workdir is None:
            shutil.rmtree(root, ignore_errors=True)


def _assessed_child(path: Path) -> str:
    """The id of the first child of a department's file with an assessment."""
    for item in csvformat.iter_rows(path):
        if isinstance(item, ImportRecord) and item.assessment is not None:
            return item.child.child_id
    raise InvalidInput("no assessed child", [Violation("file", "no row has an assessment")])


def extract_commands(fed: LocalFederation, child_id: str, key_dir: Path) -> list[str]:
    """How a newcomer asks for a school's extract in the running federation: staff record
    the guardian's consent, the school makes its key, asks, and opens the extract."""
    dept = fed.departments[0].id
    node = fed.nodes[dept]
    at = f"--node {node.address} --server-name {node.server_name}"
    school = f"spiffe://{fed.federation}/school/{DEMO_SCHOOL}"
    today = dt.date.today()
    key = key_dir / "school.key"
    return [
        f"childreg consent grant {at} --identity {fed.identity(f'staff-{dept}')} "
        f"--child {child_id} --guardian 'Demo Guardian' --purpose iep_preparation "
        f"--school {school} --from {today} --until {today + dt.timedelta(days=30)} "
        f"--evidence demo-form --language az --receipt-dir {key_dir / 'receipts'} --json",
        f"childreg extract keygen --out {key}",
        f"childreg extract request --grant GRANT {at} "
        f"--identity {fed.identity(f'school-{DEMO_SCHOOL}')} --key-file {key} "
        f"--out {key_dir / 'extract.bin'}",
        f"childreg node extract-key --config {node.config} --json",
        f"childreg extract open {key_dir / 'extract.bin'} --key-file {key} "
        f"--node-key NODE_KEY --audience {school}",
    ]


def _wait_for_interrupt(fed: LocalFederation, say: Say, child_id: str) -> None:
    assert fed.coordinator is not None
    steps = "\n".join(f"  {c}" for c in extract_commands(fed, child_id, fed.root))
    say(
        "the federation keeps running; in another shell:\n"
        f"  childreg stats table --by sex --by education_form "
        f"--coordinator {fed.coordinator.address} "
        f"--server-name {fed.coordinator.server_name} "
        f"--identity {fed.identity('statistician')}\n"
        "a school's extract for one child (GRANT: the grant the first command prints, which "
        f"also writes the guardian's receipt, HTML and PDF, into {fed.root / 'receipts'}; "
        "NODE_KEY: the extract_key the fourth prints):\n"
        f"{steps}\n"
        "press Ctrl-C to stop"
    )
    # Handlers set here, not Python's default: a shell's background job inherits SIGINT
    # ignored, and the demo must still stop on Ctrl-C or SIGTERM.
    wait_for_signal()


def comparison_table(comparisons: list[Comparison]) -> Table:
    """The published figures beside the noisy national values, with the margin check."""
    table = Table(
        title=f"Published {SEED_ACADEMIC_YEAR} figures (the synthetic data's shape) and the "
        "demo's privacy-protected table"
    )
    for name, justify in (("", "left"), ("published figure", "right"), ("demo (noisy)", "right"),
                          ("± 95 %", "right"), ("within margin", "center")):  # fmt: skip
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for c in comparisons:
        shown = "<10" if c.published is None else f"{c.published:,}"
        table.add_row(
            c.name, f"{c.reference:,}", shown, f"± {c.margin:,}", "yes" if c.within_margin else "no"
        )
    inside = sum(c.within_margin for c in comparisons)
    table.caption = (
        f"{inside} of {len(comparisons)} within their 95 % margin; about 1 in 20 is expected "
        "outside (the noise is real, and new for every new federation)"
    )
    return table
