"""The synthetic-data generator: departments, exact national totals, plausible valid rows."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from childreg import codes
from childreg import profile as country_profile
from childreg.csvformat import iter_rows
from childreg.models import ImportRecord
from childreg.seed import SEED_FIGURES, SEED_FORM_COUNTS, SEED_TOTALS, SeedFigures
from tools.dev import synth
from tools.dev.synth import (
    MANIFEST_NAME,
    SynthManifest,
    generate,
    largest_remainder,
    plan_departments,
    read_manifest,
)

SLUG = re.compile(r"^[a-z0-9_-]+$")
REF = codes.reference_date("2023/24")
DIAGNOSES = {p.diagnosis for p in synth.PROFILES} | {
    c for p in synth.PROFILES for c, _ in p.comorbid
}
BOARDING = {"integrated_boarding_school", "special_boarding_school"}


@dataclass
class Summary:
    """What a full pass over every generated row found (kept small: no records held)."""

    records: int = 0
    violation_lists: list[object] = field(default_factory=list)
    forms: Counter[str] = field(default_factory=Counter)
    regions: Counter[str] = field(default_factory=Counter)
    sexes: Counter[str] = field(default_factory=Counter)
    care: dict[str, Counter[str]] = field(default_factory=dict)
    recommended_same: int = 0
    wrong_age: list[str] = field(default_factory=list)
    wrong_assessment: list[str] = field(default_factory=list)
    not_synthetic: list[str] = field(default_factory=list)
    file_forms: dict[str, Counter[str]] = field(default_factory=dict)


def summarize(out_dir: Path, manifest: SynthManifest) -> Summary:
    s = Summary()
    for dept in manifest.departments:
        per_file: Counter[str] = Counter()
        for item in iter_rows(out_dir / dept.file):
            if not isinstance(item, ImportRecord):
                s.violation_lists.append(item)
                continue
            s.records += 1
            check_record(item, s)
            per_file[item.placement.education_form] += 1
        s.file_forms[dept.id] = per_file
    return s


def check_record(r: ImportRecord, s: Summary) -> None:
    form = r.placement.education_form
    s.forms[form] += 1
    s.regions[codes.region_of(r.child.district)] += 1
    s.sexes[r.child.sex] += 1
    setting = r.care.care_setting if r.care else codes.CARE_NOT_RECORDED
    s.care.setdefault(form, Counter())[setting] += 1
    age = codes.age_on(r.child.date_of_birth, REF)
    low, high = (3, 5) if form == "preschool" else (6, 17)
    if not low <= age <= high:
        s.wrong_age.append(f"{r.child.child_id}: {form} aged {age}")
    a = r.assessment
    if (
        a is None
        or not dt.date(2019, 1, 1) <= a.assessment_date <= REF
        or a.assessment_date <= r.child.date_of_birth
        or a.next_review is None
        or a.next_review <= a.assessment_date
        or a.commission != f"{synth.display_name(r.child.district)} PMPC"
        or a.impairment_band is None
        or not set(a.diagnoses) <= DIAGNOSES
        or not a.icf_codes
        or not a.functioning
        or not a.supports
        or (r.care is not None and not r.child.date_of_birth <= r.care.since <= REF)
    ):
        s.wrong_assessment.append(r.child.child_id)
    else:
        s.recommended_same += a.recommended_form == form
    if not (
        r.child.child_id.startswith("SYN-")
        and (r.child.national_id or "SYN").startswith("SYN")
        and re.fullmatch(r"Synth-[0-9]{4}", r.child.family_name)
        and (r.child.guardian_phone or "+994 00 555").startswith("+994 00 555")
    ):
        s.not_synthetic.append(r.child.child_id)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SynthManifest, Summary]:
    """The default run (14 departments, seed 0), generated and read back once."""
    out = tmp_path_factory.mktemp("full")
    manifest = generate(14, out, academic_year="2023/24")
    return out, manifest, summarize(out, manifest)


# --------------------------------------------------------------------------- departments


def test_fourteen_departments_are_the_regions() -> None:
    """n == 14 gives one department per region, id = region code, with its districts."""
    plans = plan_departments(14)
    assert [p.id for p in plans] == list(codes.regions())
    assert all(p.region == p.id and p.districts == codes.regions()[p.id] for p in plans)
    names = {p.id: p.name for p in plans}
    assert names["baku"] == "Baku City Education Department"
    assert names["ganja_dashkasan"] == "Ganja-Dashkasan Regional Education Department"
    assert names["nakhchivan"] == "Nakhchivan AR Ministry of Education"
    assert all(SLUG.match(p.id) for p in plans)


@pytest.mark.parametrize("n", [1, 2, 7, 13, 15, 42, 84, 85])
def test_other_counts_cut_districts_into_contiguous_near_equal_chunks(n: int) -> None:
    """n departments (n <= 85) split the region-ordered districts into contiguous chunks."""
    plans = plan_departments(n)
    assert len(plans) == n
    assert tuple(d for p in plans for d in p.districts) == codes.districts()
    sizes = [len(p.districts) for p in plans]
    assert max(sizes) - min(sizes) <= 1
    width = max(2, len(str(n)))
    assert [p.id for p in plans] == [f"dept-{i:0{width}d}" for i in range(1, n + 1)]
    assert all(p.region == codes.region_of(p.districts[0]) for p in plans)
    assert all(SLUG.match(p.id) for p in plans)


@pytest.mark.parametrize("n", [86, 200, 500])
def test_more_departments_than_districts_share_districts_round_robin(n: int) -> None:
    """With more departments than districts every district is covered and shared round-robin."""
    plans = plan_departments(n)
    assert len({p.id for p in plans}) == n
    assert all(len(p.districts) == 1 for p in plans)
    assert {p.districts[0] for p in plans} == set(codes.districts())
    uses = Counter(p.districts[0] for p in plans)
    assert max(uses.values()) - min(uses.values()) <= 1
    assert plans[85].districts == (codes.districts()[0],)


@pytest.mark.parametrize("n", [0, -1, 501])
def test_department_count_out_of_range_is_refused(n: int) -> None:
    """plan_departments refuses fewer than 1 or more than 500 departments."""
    with pytest.raises(ValueError, match="between 1 and 500"):
        plan_departments(n)


# --------------------------------------------------------------------------- allocation


@given(
    st.integers(0, 50_000),
    st.lists(st.integers(0, 1000), min_size=1, max_size=60).filter(lambda w: sum(w) > 0),
)
def test_largest_remainder_is_exact_and_proportional(total: int, weights: list[int]) -> None:
    """largest_remainder sums to the total and each part is within 1 of its exact quota."""
    parts = largest_remainder(total, weights)
    assert sum(parts) == total
    whole = sum(weights)
    for part, w in zip(parts, weights, strict=True):
        assert abs(part - Fraction(total * w, whole)) < 1
        assert w > 0 or part == 0


def test_largest_remainder_gives_leftovers_to_largest_remainders() -> None:
    """Leftover units go to the largest fractional parts, ties to the earlier part."""
    assert largest_remainder(10, [1, 1, 1]) == [4, 3, 3]
    assert largest_remainder(7, [5, 3, 2]) == [4, 2, 1]
    assert largest_remainder(0, [0, 0]) == [0, 0]


def test_baku_gets_about_a_quarter_of_the_weight() -> None:
    """The documented population weights put about a quarter of children in Baku."""
    assert set(synth.DISTRICT_WEIGHTS) == set(codes.districts())
    baku = sum(synth.DISTRICT_WEIGHTS[d] for d in codes.regions()["baku"])
    assert 0.23 <= baku / sum(synth.DISTRICT_WEIGHTS.values()) <= 0.27
    assert all(w > 0 for w in synth.DISTRICT_WEIGHTS.values())


def test_kazakh_children_are_spread_over_every_real_district() -> None:
    """With the KZ profile installed, the weights cover exactly its districts and a
    department per region gets children in every district and city of its region."""
    kz = country_profile.embedded("kz")
    with country_profile.installed(kz):
        assert set(synth.district_weights()) == set(kz.districts())
        plans = plan_departments(len(kz.regions))
        table = synth.allocate(plans, dict(SEED_FORM_COUNTS))
    assert [p.districts for p in plans] == list(kz.region_districts().values())
    for cells in table:
        assert all(sum(forms.values()) > 0 for forms in cells.values())
    assert sum(sum(f.values()) for cells in table for f in cells.values()) == sum(
        SEED_FORM_COUNTS.values()
    )


# --------------------------------------------------------------------------- the full run


def test_full_run_every_row_passes_the_importer(
    full_run: tuple[Path, SynthManifest, Summary],
) -> None:
    """Every row of the default 14-department run is a valid import record."""
    _, manifest, summary = full_run
    assert summary.violation_lists == []
    assert summary.records == manifest.total_children == 32593


def test_full_run_national_totals_equal_the_seed_figures(
    full_run: tuple[Path, SynthManifest, Summary],
) -> None:
    """Children per form over all files equal the published figures, hence the totals too."""
    _, manifest, summary = full_run
    assert dict(summary.forms) == SEED_FORM_COUNTS
    for total, members in codes.FORM_TOTALS.items():
        assert sum(summary.forms[f] for f in members) == SEED_TOTALS[total]
    assert manifest.national_form_counts == SEED_FIGURES.all_form_counts()
    assert manifest.national_totals == SEED_TOTALS


def test_full_run_manifest_describes_the_files(
    full_run: tuple[Path, SynthManifest, Summary],
) -> None:
    """manifest.json lists each department's file, districts and true per-form counts."""
    out, manifest, summary = full_run
    data = json.loads((out / MANIFEST_NAME).read_text("utf-8"))
    assert data["synthetic"] is True
    assert data["seed"] == 0
    assert data["total_children"] == 32593
    assert read_manifest(out) == manifest
    assert sorted(p.name for p in out.glob("*.csv")) == sorted(d.file for d in manifest.departments)
    for dept in manifest.departments:
        assert dept.file == f"{dept.id}.csv"
        assert {f: n for f, n in dept.form_counts.items() if n} == dict(summary.file_forms[dept.id])
        assert dept.children == sum(dept.form_counts.values())


def test_full_run_spreads_children_by_population(
    full_run: tuple[Path, SynthManifest, Summary],
) -> None:
    """Baku holds about a quarter of the children and every region has some."""
    _, manifest, summary = full_run
    assert 0.23 <= summary.regions["baku"] / summary.records <= 0.27
    assert set(summary.regions) == set(codes.regions())
    baku = next(d for d in manifest.departments if d.id == "baku")
    assert baku.children == summary.regions["baku"]


def test_full_run_sex_age_and_care_are_plausible(
    full_run: tuple[Path, SynthManifest, Summary],
) -> None:
    """About 58 % boys, ages that fit the form, boarding pupils mostly in residence."""
    _, _, summary = full_run
    assert 0.56 <= summary.sexes["male"] / summary.records <= 0.60
    assert summary.wrong_age == []
    for form, settings in summary.care.items():
        n = sum(settings.values())
        if form in BOARDING:
            assert settings["boarding_school_residence"] / n > 0.75
        else:
            assert settings["family"] / n > 0.85
            assert settings["boarding_school_residence"] == 0
    everywhere = sum(summary.care.values(), Counter())
    assert {"kinship_guardianship", "foster_family", "state_residential_institution"} <= set(
        everywhere
    )


def test_full_run_assessments_are_complete_and_consistent(
    full_run: tuple[Path, SynthManifest, Summary],
) -> None:
    """Every child has a dated, reviewed assessment by its district's PMPC, mostly matching form."""
    _, _, summary = full_run
    assert summary.wrong_assessment == []
    assert 0.80 <= summary.recommended_same / summary.records <= 0.90


def test_full_run_identities_are_visibly_synthetic(
    full_run: tuple[Path, SynthManifest, Summary],
) -> None:
    """Ids, national ids, family names and phones all carry the synthetic markers."""
    _, _, summary = full_run
    assert summary.records > 0
    assert summary.not_synthetic == []


# --------------------------------------------------------------------------- small runs


def test_small_run_rows_are_valid_and_ids_unique(tmp_path: Path) -> None:
    """A 3-department run writes valid files whose child and national ids are all distinct."""
    small = {form: max(3, n // 50) for form, n in SEED_FORM_COUNTS.items()}
    manifest = generate(3, tmp_path, seed=7, figures=SeedFigures("AZ", "2023/24", small))
    ids: set[str] = set()
    national: set[str] = set()
    n = 0
    for dept in manifest.departments:
        for item in iter_rows(tmp_path / dept.file):
            assert isinstance(item, ImportRecord), item
            ids.add(item.child.child_id)
            if item.child.national_id:
                national.add(item.child.national_id)
            n += 1
    assert n == len(ids) == sum(small.values())
    assert len(national) > 0.9 * n


def test_same_seed_gives_identical_files_and_other_seed_differs(tmp_path: Path) -> None:
    """generate is deterministic for a seed and changes with the seed."""
    small = SeedFigures("AZ", "2023/24", {"preschool": 40, "mainstream_class": 300})
    a = generate(2, tmp_path / "a", seed=3, figures=small)
    b = generate(2, tmp_path / "b", seed=3, figures=small)
    generate(2, tmp_path / "c", seed=4, figures=small)
    assert a == b
    for name in [*(d.file for d in a.departments), MANIFEST_NAME]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    first = a.departments[0].file
    assert (tmp_path / "a" / first).read_bytes() != (tmp_path / "c" / first).read_bytes()


def test_custom_figures_with_shared_districts_are_exact(tmp_path: Path) -> None:
    """Totals stay exact for custom figures (including day care) over 120 departments."""
    figures = SeedFigures(
        "AZ",
        "2024/25",
        {"preschool": 7, "home_education": 11, "day_care_centre": 5, "not_enrolled": 3},
    )
    manifest = generate(120, tmp_path, figures=figures, academic_year="2024/25")
    assert len(manifest.departments) == 120
    counted: Counter[str] = Counter()
    ages: list[int] = []
    for dept in manifest.departments:
        for item in iter_rows(tmp_path / dept.file):
            assert isinstance(item, ImportRecord), item
            assert item.placement.academic_year == "2024/25"
            counted[item.placement.education_form] += 1
            ages.append(codes.age_on(item.child.date_of_birth, codes.reference_date("2024/25")))
    assert dict(counted) == {
        "preschool": 7,
        "home_education": 11,
        "day_care_centre": 5,
        "not_enrolled": 3,
    }
    assert manifest.national_totals == {
        "general_education_total": 11,
        "special_provision_total": 11,
    }
    assert min(ages) >= 3
    assert max(ages) <= 17


def test_progress_reports_monotonically_up_to_the_total(tmp_path: Path) -> None:
    """progress(done, total) is called with non-decreasing done, ending at (total, total)."""
    calls: list[tuple[int, int]] = []
    figures = SeedFigures("AZ", "2023/24", {"mainstream_class": 2500, "preschool": 10})
    generate(4, tmp_path, figures=figures, progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (2510, 2510)
    assert all(t == 2510 for _, t in calls)
    done = [d for d, _ in calls]
    assert done == sorted(done)
    assert len(calls) >= 4 + 2  # once per department plus every 1000 children


def test_bad_academic_year_is_refused(tmp_path: Path) -> None:
    """generate refuses an academic year that is not YYYY/YY before writing anything."""
    with pytest.raises(ValueError, match="2023/24"):
        generate(14, tmp_path / "out", academic_year="2023-2024")
    assert not (tmp_path / "out").exists()
