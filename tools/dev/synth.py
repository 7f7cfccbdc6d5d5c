"""Synthetic children for the demo federation, the tests and the benchmark.

No real child's data may ever be used to develop or demonstrate this system, yet the
system must be exercised with data shaped like the real thing. This module makes such
data: one import CSV (:mod:`childreg.csvformat`) per local education department, whose
national per-form totals equal the published AZ 2023/24 figures (:mod:`childreg.seed`)
exactly, used as the shape of whichever academic year is asked for (by default the current
one, :func:`childreg.profile.current_academic_year`), for the installed country profile
(Azerbaijan's or Kazakhstan's units; :func:`figures_for`), with plausible, documented
distributions of age, sex, care setting, impairment and assessments (see
``docs/synthetic-data.md``). Every value is invented; identifiers, family names and phone
numbers are visibly fake (``SYN…``, ``Synth-0421``, ``+994 00 555 …``, ``+7 000 555 …``).

Library functions only; the ``childreg synth`` command wraps :func:`generate`.
"""

from __future__ import annotations

import datetime as dt
import json
import random  # noqa: TID251 -- reproducible synthetic data, nothing security-relevant
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

from childreg import codes, csvformat
from childreg import profile as country_profile
from childreg.seed import SEED_FIGURES, SeedFigures
from tools.dev import synth_kz

MANIFEST_NAME: Final = "manifest.json"
MAX_DEPARTMENTS: Final = 500
ProgressFn = Callable[[int, int], None]

#: Population weights per district: rounded resident population in thousands (order of
#: magnitude of the 2023 official estimates). Baku is about a quarter of the total. The
#: districts of Karabakh and East Zangezur retaken in 2020-23 are being resettled only
#: now, so they carry a token weight of 3-5 (most of their displaced families live, and
#: are counted, elsewhere).
DISTRICT_WEIGHTS: Final[dict[str, int]] = {
    # Baku
    "binagadi": 270, "garadagh": 130, "khatai": 290, "khazar": 170, "nasimi": 230,
    "narimanov": 180, "nizami": 200, "pirallahi": 20, "sabail": 100, "sabunchu": 250,
    "surakhani": 230, "yasamal": 260,
    # Absheron-Khizi
    "sumgait": 350, "absheron": 220, "khizi": 17,
    # Daglig Shirvan
    "shamakhi": 105, "agsu": 80, "ismayilli": 90, "gobustan": 48,
    # Ganja-Dashkasan
    "ganja": 335, "naftalan": 10, "dashkasan": 35, "goranboy": 105, "goygol": 65, "samukh": 60,
    # Karabakh
    "khankendi": 5, "aghjabadi": 135, "agdam": 30, "barda": 160, "fuzuli": 25, "khojaly": 5,
    "khojavend": 5, "shusha": 5, "tartar": 105,
    # Gazakh-Tovuz
    "agstafa": 90, "gadabay": 100, "gazakh": 95, "shamkir": 215, "tovuz": 175,
    # Guba-Khachmaz
    "guba": 170, "gusar": 100, "khachmaz": 175, "shabran": 60, "siyazan": 42,
    # Lankaran-Astara
    "astara": 110, "jalilabad": 230, "lankaran": 235, "lerik": 85, "masally": 230,
    "yardimli": 62,
    # Central Aran
    "mingachevir": 108, "agdash": 110, "goychay": 125, "kurdamir": 115, "ujar": 88,
    "yevlakh": 130, "zardab": 60,
    # Mil-Mughan
    "beylagan": 100, "imishli": 130, "saatly": 110, "sabirabad": 175,
    # Shaki-Zagatala
    "balakan": 100, "gakh": 58, "gabala": 105, "oghuz": 45, "shaki": 185, "zagatala": 130,
    # Shirvan-Salyan
    "shirvan": 90, "bilasuvar": 105, "hajigabul": 75, "neftchala": 90, "salyan": 140,
    # East Zangezur
    "jabrayil": 5, "kalbajar": 5, "gubadli": 3, "lachin": 5, "zangilan": 3,
    # Nakhchivan
    "nakhchivan_city": 95, "babek": 75, "julfa": 45, "kangarli": 30, "ordubad": 50,
    "sadarak": 16, "shahbuz": 25, "sharur": 115,
}  # fmt: skip

#: Share of boys among children with disabilities (boys are over-represented, mainly
#: through autism, ADHD-like and speech disorders).
MALE_SHARE: Final = 0.58

MALE_NAMES: Final = (
    "Əli", "Hüseyn", "Murad", "Elvin", "Rəşad", "Tural", "Nihat", "Orxan", "Kamran", "Fərid",
    "Ramil", "Emil", "Yusif", "Ayxan", "Ömər", "Riad", "Nurlan", "Samir", "Vüsal", "Zaur",
)  # fmt: skip
FEMALE_NAMES: Final = (
    "Aysel", "Leyla", "Nigar", "Günay", "Sevinc", "Aynur", "Zəhra", "Fatimə", "Nərmin", "Lalə",
    "Aygün", "Nuranə", "Xədicə", "Mədinə", "Mehriban", "Səbinə", "Gülnar", "Ülviyyə", "Cəmilə",
    "Aylin",
)  # fmt: skip

# ------------------------------------------------------------------ distributions

#: Ages (at the reference date) per form: (lowest age, weights for each year from it).
_SCHOOL_AGES: Final = (6, (8, 9, 9, 9, 9, 9, 9, 9, 9, 8, 6, 6))
AGES: Final[dict[str, tuple[int, tuple[int, ...]]]] = {
    "preschool": (3, (30, 35, 35)),
    "day_care_centre": (3, (6, 6, 6, *_SCHOOL_AGES[1])),
    **{f: _SCHOOL_AGES for f in codes.EDUCATION_FORMS if f not in ("preschool", "day_care_centre")},
}

#: Impairment-band weights (pct_25_40, pct_41_60, pct_61_80, pct_81_100) per form.
FORM_BANDS: Final[dict[str, tuple[int, int, int, int]]] = {
    "preschool": (25, 35, 25, 15),
    "mainstream_class": (35, 35, 20, 10),
    "inclusive_class": (25, 35, 28, 12),
    "integrated_inclusive_school": (25, 35, 28, 12),
    "home_education": (5, 15, 35, 45),
    "special_school": (10, 30, 40, 20),
    "integrated_boarding_school": (10, 30, 40, 20),
    "special_boarding_school": (5, 25, 40, 30),
    "rehabilitation_centre": (0, 5, 25, 70),
    "day_care_centre": (5, 15, 35, 45),
    "not_enrolled": (5, 15, 30, 50),
}


@dataclass(frozen=True)
class Profile:
    """A disability profile: what the commission finds, and what it recommends."""

    code: str
    diagnosis: str
    comorbid: tuple[tuple[str, float], ...]  # (ICD-10 code, probability)
    icf: tuple[str, ...]  # ICF-CY codes; a qualifier is added from the severity
    domains: tuple[str, ...]  # functioning domains always affected
    secondary: tuple[str, ...]  # affected in some children
    supports: tuple[str, ...]  # first one always recommended
    accommodations: tuple[str, ...]
    bands: tuple[float, float, float, float]  # multiplies the form's band weights
    anxious: bool = False  # more frequent anxiety / worry


def _profile(
    code: str,
    diagnosis: str,
    *,
    comorbid: str = "",
    icf: str,
    domains: str,
    secondary: str = "",
    supports: str,
    accommodations: str,
    bands: tuple[float, float, float, float],
    anxious: bool = False,
) -> Profile:
    """A profile from space-separated lists; comorbid entries are CODE:probability."""
    pairs = tuple((c, float(p)) for c, p in (e.split(":") for e in comorbid.split()))
    return Profile(
        code=code,
        diagnosis=diagnosis,
        comorbid=pairs,
        icf=tuple(icf.split()),
        domains=tuple(domains.split()),
        secondary=tuple(secondary.split()),
        supports=tuple(supports.split()),
        accommodations=tuple(accommodations.split()),
        bands=bands,
        anxious=anxious,
    )


#: The disability profiles. bands multiply the form's impairment-band weights
#: (pct_25_40, pct_41_60, pct_61_80, pct_81_100) so that, e.g., mild intellectual
#: disability rarely reaches 81-100 %.
PROFILES: Final[tuple[Profile, ...]] = (
    _profile(
        "autism",
        "F84.0",
        comorbid="F70:0.2 G40.9:0.08",
        icf="b122 b125 b167 d350 d710",
        domains="communication making_friends accepting_change controlling_behaviour",
        secondary="concentrating learning self_care",
        supports=(
            "individual_education_plan speech_therapy psychological_support teaching_assistant"
        ),
        accommodations="rest_breaks reduced_workload seating_position",
        bands=(1.0, 1.0, 1.0, 1.0),
        anxious=True,
    ),
    _profile(
        "cerebral_palsy",
        "G80.1",
        comorbid="G40.9:0.25 F70:0.2 F80.1:0.15",
        icf="b735 b730 s750 d450 d440",
        domains="walking fine_motor self_care",
        secondary="communication learning",
        supports="physiotherapy assistive_technology transport individual_education_plan",
        accommodations="accessible_building extra_time rest_breaks",
        bands=(0.6, 1.0, 1.2, 1.4),
    ),
    _profile(
        "down_syndrome",
        "Q90.9",
        comorbid="F71:0.5",
        icf="b117 b167 d140 d150",
        domains="learning remembering communication",
        secondary="self_care fine_motor concentrating",
        supports="adapted_curriculum individual_education_plan speech_therapy teaching_assistant",
        accommodations="reduced_workload extra_time",
        bands=(0.5, 1.0, 1.3, 1.2),
    ),
    _profile(
        "blindness",
        "H54.0",
        icf="b210 s220 d110 d166",
        domains="seeing",
        secondary="walking fine_motor",
        supports="braille assistive_technology individual_education_plan",
        accommodations="alternative_format accessible_building extra_time",
        bands=(0.3, 0.7, 1.2, 1.8),
    ),
    _profile(
        "low_vision",
        "H54.2",
        icf="b210 d110 d166",
        domains="seeing",
        supports="assistive_technology individual_education_plan",
        accommodations="large_print seating_position extra_time",
        bands=(1.5, 1.3, 0.7, 0.3),
    ),
    _profile(
        "hearing_loss",
        "H90.3",
        icf="b230 s260 d115 d310",
        domains="hearing communication",
        secondary="learning",
        supports="sign_language assistive_technology speech_therapy",
        accommodations="seating_position alternative_format",
        bands=(0.8, 1.2, 1.2, 0.8),
    ),
    _profile(
        "intellectual_mild",
        "F70",
        icf="b117 d140 d145 d150 d160",
        domains="learning remembering",
        secondary="concentrating communication",
        supports="adapted_curriculum individual_education_plan teaching_assistant",
        accommodations="extra_time reduced_workload",
        bands=(1.6, 1.4, 0.6, 0.2),
    ),
    _profile(
        "intellectual_moderate",
        "F71",
        comorbid="G40.9:0.12",
        icf="b117 b167 d140 d150 d510",
        domains="learning remembering communication self_care",
        secondary="fine_motor controlling_behaviour concentrating",
        supports="adapted_curriculum individual_education_plan teaching_assistant speech_therapy",
        accommodations="reduced_workload extra_time rest_breaks",
        bands=(0.3, 0.9, 1.5, 1.3),
    ),
    _profile(
        "language_disorder",
        "F80.1",
        icf="b167 b320 d330",
        domains="communication",
        secondary="learning making_friends",
        supports="speech_therapy individual_education_plan",
        accommodations="extra_time",
        bands=(2.0, 1.2, 0.5, 0.2),
        anxious=True,
    ),
    _profile(
        "epilepsy",
        "G40.9",
        comorbid="F70:0.15",
        icf="b110 b140 b144",
        domains="concentrating remembering",
        secondary="learning",
        supports="psychological_support individual_education_plan",
        accommodations="rest_breaks extra_time",
        bands=(1.3, 1.2, 0.8, 0.6),
    ),
)

#: Profile weights per form, in PROFILES order.
FORM_PROFILES: Final[dict[str, tuple[int, ...]]] = {
    "preschool": (25, 15, 10, 2, 3, 6, 5, 4, 25, 5),
    "mainstream_class": (12, 8, 3, 2, 6, 6, 22, 3, 23, 15),
    "inclusive_class": (25, 12, 10, 3, 5, 8, 20, 5, 8, 4),
    "integrated_inclusive_school": (22, 12, 10, 3, 5, 8, 22, 6, 8, 4),
    "home_education": (14, 30, 8, 2, 1, 2, 8, 22, 2, 11),
    "special_school": (14, 6, 10, 6, 6, 14, 24, 14, 3, 3),
    "integrated_boarding_school": (10, 8, 8, 8, 6, 14, 26, 14, 3, 3),
    "special_boarding_school": (8, 6, 8, 14, 8, 20, 16, 16, 2, 2),
    "rehabilitation_centre": (25, 40, 8, 2, 1, 2, 2, 15, 1, 4),
    "day_care_centre": (25, 30, 10, 2, 1, 2, 5, 20, 2, 3),
    "not_enrolled": (15, 30, 8, 3, 2, 4, 8, 20, 3, 7),
}

#: Difficulty-level weights (some, a lot, cannot) of an always-affected domain, per band.
_PRIMARY_LEVELS: Final = {
    "pct_25_40": (80, 20, 0),
    "pct_41_60": (50, 50, 0),
    "pct_61_80": (15, 70, 15),
    "pct_81_100": (0, 50, 50),
}
#: Base ICF qualifier (1 mild .. 4 complete) per band.
_QUALIFIER: Final = {"pct_25_40": 1, "pct_41_60": 2, "pct_61_80": 3, "pct_81_100": 3}
#: Frequency weights (never .. daily) for anxiety and depression.
_ANXIETY: Final = {True: (20, 25, 20, 20, 15), False: (50, 30, 12, 6, 2)}
_DEPRESSION: Final = {True: (45, 30, 13, 8, 4), False: (65, 25, 6, 3, 1)}
#: Domains the Child Functioning Module asks about for children aged 2-4.
_YOUNG_DOMAINS: Final = frozenset(
    {"seeing", "hearing", "walking", "fine_motor", "communication", "learning",
     "controlling_behaviour"}
)  # fmt: skip

_BOARDING: Final = frozenset({"integrated_boarding_school", "special_boarding_school"})
#: Care-setting weights for boarding forms and for everyone else ("" = not recorded).
_CARE_BOARDING: Final = (
    ("boarding_school_residence", 85),
    ("family", 10),
    ("state_residential_institution", 3),
    ("kinship_guardianship", 2),
)
_CARE_OTHER: Final = (
    ("family", 910),
    ("kinship_guardianship", 40),
    ("foster_family", 10),
    ("state_residential_institution", 15),
    ("shelter", 5),
    ("", 20),
)
#: Share of assessments whose recommended form differs from the actual placement.
RECOMMENDATION_MISMATCH: Final = 0.15
_OTHER_RECOMMENDATION: Final[dict[str, tuple[str, ...]]] = {
    "mainstream_class": ("inclusive_class", "integrated_inclusive_school"),
    "inclusive_class": ("mainstream_class", "integrated_inclusive_school"),
    "integrated_inclusive_school": ("inclusive_class", "mainstream_class"),
    "home_education": ("special_school", "inclusive_class", "rehabilitation_centre"),
    "special_school": ("inclusive_class", "integrated_inclusive_school"),
    "integrated_boarding_school": ("special_school", "integrated_inclusive_school"),
    "special_boarding_school": ("special_school", "integrated_boarding_school"),
    "rehabilitation_centre": ("home_education", "special_school"),
    "day_care_centre": ("home_education", "rehabilitation_centre"),
    "not_enrolled": ("home_education", "special_school", "rehabilitation_centre"),
}
#: (template, how many such institutions per district or nationally, named after district?)
_INSTITUTIONS: Final[dict[str, tuple[str, int, bool]]] = {
    "preschool": ("Synthetic Kindergarten No. {n}", 30, True),
    "mainstream_class": ("Synthetic School No. {n}", 40, True),
    "inclusive_class": ("Synthetic School No. {n}", 40, True),
    "integrated_inclusive_school": ("Synthetic Integrated Inclusive School No. {n}", 3, True),
    "home_education": ("Synthetic School No. {n}", 40, True),
    "special_school": ("Synthetic Special School No. {n}", 2, True),
    "integrated_boarding_school": ("Synthetic Integrated Boarding School No. {n}", 12, False),
    "special_boarding_school": ("Synthetic Special Boarding School No. {n}", 8, False),
    "rehabilitation_centre": ("Synthetic Rehabilitation Centre No. {n}", 2, False),
    "day_care_centre": ("Synthetic Day Care Centre No. {n}", 5, True),
}

# ------------------------------------------------------------------ departments


@dataclass(frozen=True)
class DepartmentPlan:
    """One local education department of the synthetic federation and its districts."""

    id: str
    name: str
    region: str
    districts: tuple[str, ...]


def plan_departments(n: int) -> list[DepartmentPlan]:
    """``n`` departments covering every district (n == 14: one per region, real names).

    Otherwise the region-ordered district list is cut into ``n`` contiguous near-equal
    chunks; with more departments than districts, departments share districts round-robin.
    """
    if not 1 <= n <= MAX_DEPARTMENTS:
        raise ValueError(f"number of departments must be between 1 and {MAX_DEPARTMENTS}")
    if n == len(codes.regions()):
        return [
            DepartmentPlan(region, _department_name(region), region, districts)
            for region, districts in codes.regions().items()
        ]
    width = max(2, len(str(n)))
    all_districts = codes.districts()
    chunks: list[tuple[str, ...]] = []
    if n > len(all_districts):
        chunks = [(all_districts[i % len(all_districts)],) for i in range(n)]
    else:
        size, extra = divmod(len(all_districts), n)
        start = 0
        for i in range(n):
            end = start + size + (1 if i < extra else 0)
            chunks.append(all_districts[start:end])
            start = end
    plans = []
    for i, chunk in enumerate(chunks, 1):
        region = codes.region_of(chunk[0])
        number = f"{i:0{width}d}"
        plans.append(
            DepartmentPlan(
                id=f"dept-{number}",
                name=f"Education Department {number} ({region_name(region)})",
                region=region,
                districts=chunk,
            )
        )
    return plans


def _department_name(region: str) -> str:
    if region == "baku":
        return "Baku City Education Department"
    if region == "nakhchivan":
        return "Nakhchivan AR Ministry of Education"
    if country_profile.active().country == "kz":
        kind = "Region" if region_name(region).endswith("Region") else "City"
        return f"{region_name(region).removesuffix(' Region')} {kind} Education Department"
    return f"{region_name(region)} Regional Education Department"


def region_name(region: str) -> str:
    """A region's English name in the installed country profile."""
    return country_profile.active().unit_name(region)


def district_weights() -> dict[str, int]:
    """Population weights of the installed profile's districts (Azerbaijan's or Kazakhstan's)."""
    if country_profile.active().country == "kz":
        return synth_kz.DISTRICT_WEIGHTS
    return DISTRICT_WEIGHTS


def figures_for(country: str, academic_year: str) -> SeedFigures:
    """The per-form counts synthetic data for ``country`` and ``academic_year`` match.

    Only AZ 2023/24 figures are published (:mod:`childreg.seed`); they are the shape of
    every year. Kazakhstan publishes about 86,000 children with disabilities, a third of
    them in education; its synthetic set keeps the AZ shape and size (so the KZ demo is as
    quick as the AZ one) and is labelled KZ: it is not a Kazakh figure.
    """
    return SeedFigures(
        country.upper(), academic_year, dict(SEED_FIGURES.form_counts), dict(SEED_FIGURES.totals)
    )


# ------------------------------------------------------------------ allocation


def largest_remainder(total: int, weights: Sequence[int | Fraction]) -> list[int]:
    """Split ``total`` in proportion to ``weights`` into integers that sum to ``total``.

    Each part gets the floor of its exact quota; the leftover units go to the largest
    remainders (ties to the earlier part). Exact arithmetic, so deterministic.
    """
    if total < 0:
        raise ValueError("total must not be negative")
    whole = sum(Fraction(w) for w in weights)
    if any(w < 0 for w in weights) or (total and whole <= 0):
        raise ValueError("weights must be non-negative and not all zero")
    if total == 0:
        return [0] * len(weights)
    quotas = [Fraction(w) * total / whole for w in weights]
    parts = [int(q) for q in quotas]  # floor: quotas are non-negative
    order = sorted(range(len(weights)), key=lambda i: (-(quotas[i] - parts[i]), i))
    for i in order[: total - sum(parts)]:
        parts[i] += 1
    return parts


def allocate(
    plans: Sequence[DepartmentPlan], form_counts: Mapping[str, int]
) -> list[dict[str, dict[str, int]]]:
    """Children per department, district and form: [dept] -> {district: {form: count}}.

    For each form the national count is split over (department, district) cells by
    population weight (a district shared by k departments gives each 1/k of its weight)
    with the largest-remainder method, so national totals are exact.
    """
    sharing: dict[str, int] = {}
    for plan in plans:
        for d in plan.districts:
            sharing[d] = sharing.get(d, 0) + 1
    cells = [(i, d) for i, plan in enumerate(plans) for d in plan.districts]
    table = district_weights()
    weights = [Fraction(table[d], sharing[d]) for _, d in cells]
    out: list[dict[str, dict[str, int]]] = [
        {d: dict.fromkeys(form_counts, 0) for d in plan.districts} for plan in plans
    ]
    for form, total in form_counts.items():
        for (i, d), count in zip(cells, largest_remainder(total, weights), strict=True):
            out[i][d][form] = count
    return out


# ------------------------------------------------------------------ manifest


@dataclass(frozen=True)
class ManifestDepartment:
    """One department's file in the manifest."""

    id: str
    name: str
    region: str
    districts: tuple[str, ...]
    file: str
    children: int
    form_counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class SynthManifest:
    """What :func:`generate` wrote: departments, their files and the national totals."""

    seed: int
    academic_year: str
    departments: tuple[ManifestDepartment, ...]
    national_form_counts: dict[str, int]
    national_totals: dict[str, int]

    @property
    def total_children(self) -> int:
        """All children over all departments."""
        return sum(d.children for d in self.departments)

    def to_json(self) -> dict[str, Any]:
        """The manifest as JSON-ready data (what manifest.json holds)."""
        data = asdict(self)
        return {
            "synthetic": True,
            "note": "synthetic data generated by tools/dev/synth.py; no real child is described",
            **data,
            "total_children": self.total_children,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SynthManifest:
        """Read back what :meth:`to_json` produced."""
        return cls(
            seed=int(data["seed"]),
            academic_year=str(data["academic_year"]),
            departments=tuple(
                ManifestDepartment(
                    id=d["id"],
                    name=d["name"],
                    region=d["region"],
                    districts=tuple(d["districts"]),
                    file=d["file"],
                    children=int(d["children"]),
                    form_counts={k: int(v) for k, v in d.get("form_counts", {}).items()},
                )
                for d in data["departments"]
            ),
            national_form_counts={k: int(v) for k, v in data["national_form_counts"].items()},
            national_totals={k: int(v) for k, v in data["national_totals"].items()},
        )


def read_manifest(out_dir: Path) -> SynthManifest:
    """The manifest a previous :func:`generate` wrote into ``out_dir``."""
    return SynthManifest.from_json(json.loads((out_dir / MANIFEST_NAME).read_text("utf-8")))


# ------------------------------------------------------------------ generation


def generate(
    n_departments: int,
    out_dir: Path,
    *,
    seed: int = 0,
    figures: SeedFigures = SEED_FIGURES,
    academic_year: str | None = None,
    progress: ProgressFn | None = None,
) -> SynthManifest:
    """Write ``<id>.csv`` per department and ``manifest.json`` into ``out_dir``.

    Children of the installed country profile's districts, placed in ``academic_year``
    (default: the one today falls in, by the profile's calendar), born and assessed
    relative to its reference date. National per-form totals equal ``figures`` exactly
    (forms it does not list get 0).
    The same arguments always give the same files. ``progress(done, total)`` is called
    as children are written.
    """
    if academic_year is None:
        academic_year = country_profile.current_academic_year()
    ref = codes.reference_date(academic_year)  # raises ValueError for a bad year
    plans = plan_departments(n_departments)
    form_counts = figures.all_form_counts()
    allocation = allocate(plans, form_counts)
    total = sum(form_counts.values())
    out_dir.mkdir(parents=True, exist_ok=True)
    done = 0
    departments = []
    for number, (plan, cells) in enumerate(zip(plans, allocation, strict=True), 1):
        rng = random.Random(f"childreg-synth/{seed}/{plan.id}")  # noqa: S311 -- synthetic only
        children = [
            (d, f) for d, forms in cells.items() for f, k in forms.items() for _ in range(k)
        ]
        rng.shuffle(children)
        maker = _ChildMaker(rng, plan, number, academic_year, ref)
        file = f"{plan.id}.csv"
        csvformat.write_rows(out_dir / file, _rows(maker, children, done, total, progress))
        done += len(children)
        if progress is not None:
            progress(done, total)
        dept_forms = {f: sum(c[f] for c in cells.values()) for f in form_counts}
        departments.append(
            ManifestDepartment(
                plan.id, plan.name, plan.region, plan.districts, file, len(children), dept_forms
            )
        )
    manifest = SynthManifest(
        seed=seed,
        academic_year=academic_year,
        departments=tuple(departments),
        national_form_counts=form_counts,
        national_totals={
            t: sum(form_counts[f] for f in members) for t, members in codes.FORM_TOTALS.items()
        },
    )
    (out_dir / MANIFEST_NAME).write_text(
        json.dumps(manifest.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return manifest


def _rows(
    maker: _ChildMaker,
    children: Sequence[tuple[str, str]],
    done: int,
    total: int,
    progress: ProgressFn | None,
) -> Iterator[dict[str, str]]:
    for seq, (district, form) in enumerate(children, 1):
        yield maker.row(seq, district, form)
        if progress is not None and (done + seq) % 1000 == 0:
            progress(done + seq, total)


def display_name(code: str) -> str:
    """A district or region code as words: 'nakhchivan_city' -> 'Nakhchivan City'."""
    return code.replace("_", " ").title()


class _ChildMaker:
    """Draws one synthetic child row at a time from one department's random stream."""

    def __init__(
        self,
        rng: random.Random,
        plan: DepartmentPlan,
        number: int,
        academic_year: str,
        ref: dt.date,
    ) -> None:
        self.rng = rng
        self.plan = plan
        self.number = number
        self.academic_year = academic_year
        self.ref = ref
        self.today = dt.date.today()
        self.window_start = dt.date(ref.year - 4, 1, 1)
        self.latest = min(ref, self.today)
        kz = country_profile.active().country == "kz"
        self.names: tuple[Sequence[str], Sequence[str], str] = (
            (synth_kz.MALE_NAMES, synth_kz.FEMALE_NAMES, synth_kz.PHONE_PREFIX)
            if kz
            else (MALE_NAMES, FEMALE_NAMES, "+994 00 555")
        )

    def pick(self, options: Sequence[str], weights: Sequence[float]) -> str:
        return self.rng.choices(options, weights)[0]

    def row(self, seq: int, district: str, form: str) -> dict[str, str]:
        rng = self.rng
        sex = "male" if rng.random() < MALE_SHARE else "female"
        low, age_weights = AGES[form]
        age = low + rng.choices(range(len(age_weights)), age_weights)[0]
        born = _birth_date(rng, self.ref, age)
        family = f"Synth-{rng.randrange(10000):04d}"
        male_names, female_names, phone = self.names
        guardian_given = rng.choice(female_names if rng.random() < 0.75 else male_names)
        row = {
            "child_id": f"SYN-{self.plan.id}-{seq:06d}",
            "national_id": f"SYN{self.number:03d}{seq:06d}" if rng.random() < 0.97 else "",
            "given_name": rng.choice(male_names if sex == "male" else female_names),
            "family_name": family,
            "date_of_birth": csvformat.format_date(born),
            "sex": sex,
            "district": district,
            "guardian_name": f"{guardian_given} {family}" if rng.random() < 0.97 else "",
            "guardian_phone": (
                f"{phone} {rng.randrange(100):02d} {rng.randrange(100):02d}"
                if rng.random() < 0.95
                else ""
            ),
            "academic_year": self.academic_year,
            "education_form": form,
            "institution": self.institution(form, district),
        }
        row.update(self.care(form, born, age))
        row.update(self.assessment(form, district, born, age))
        return row

    def institution(self, form: str, district: str) -> str:
        if form not in _INSTITUTIONS:
            return ""
        template, how_many, local = _INSTITUTIONS[form]
        name = template.format(n=self.rng.randint(1, how_many))
        return f"{name} ({display_name(district)})" if local else name

    def care(self, form: str, born: dt.date, age: int) -> dict[str, str]:
        options = _CARE_BOARDING if form in _BOARDING else _CARE_OTHER
        setting = self.pick([o for o, _ in options], [w for _, w in options])
        if not setting:
            return {}
        if setting == "family":
            since = born
        elif setting == "boarding_school_residence":
            first = self.ref.year - max(0, min(age - 6, 8))
            since = dt.date(self.rng.randint(first, self.ref.year), 9, 1)
        else:
            since = _between(self.rng, born, self.latest)
        return {"care_setting": setting, "care_since": csvformat.format_date(since)}

    def assessment(self, form: str, district: str, born: dt.date, age: int) -> dict[str, str]:
        rng = self.rng
        profile = rng.choices(PROFILES, FORM_PROFILES[form])[0]
        band_weights = [f * p for f, p in zip(FORM_BANDS[form], profile.bands, strict=True)]
        band = rng.choices(codes.IMPAIRMENT_BANDS, band_weights)[0]
        earliest = max(self.window_start, _add_years(born, 1))
        assessed = _between(rng, min(earliest, self.latest), self.latest)
        review = assessed + dt.timedelta(days=365 * rng.choice((1, 1, 2, 2, 3)))

        diagnoses = [profile.diagnosis]
        for code, p in profile.comorbid:
            if rng.random() < p and code not in diagnoses:
                diagnoses.append(code)
        base = _QUALIFIER[band] + (1 if band == "pct_81_100" and rng.random() < 0.5 else 0)
        icf = [f"{c}.{max(1, min(4, base + rng.choice((-1, 0, 0, 0, 1))))}" for c in profile.icf]

        functioning = self.functioning(profile, band, age)
        supports, accommodations = self.supports(profile, form)

        recommended = form
        alternatives = _OTHER_RECOMMENDATION.get(form, ())
        if alternatives and rng.random() < RECOMMENDATION_MISMATCH:
            recommended = rng.choice(alternatives)
        return {
            "assessment_date": csvformat.format_date(assessed),
            "commission": f"{display_name(district)} PMPC",
            "impairment_band": band,
            "icf_codes": csvformat.format_list(icf),
            "diagnoses": csvformat.format_list(diagnoses),
            "functioning": csvformat.format_functioning(functioning),
            "recommended_form": recommended,
            "supports": csvformat.format_list(supports),
            "accommodations": csvformat.format_list(accommodations),
            "next_review": csvformat.format_date(review),
        }

    def functioning(self, profile: Profile, band: str, age: int) -> list[tuple[str, str]]:
        """A level for every domain asked at this age, consistent with the profile."""
        rng = self.rng
        out = []
        for domain in codes.FUNCTIONING_DOMAINS:
            if age < 5 and domain not in _YOUNG_DOMAINS:
                continue
            if domain == "anxiety":
                level = self.pick(codes.FREQUENCY_LEVELS, _ANXIETY[profile.anxious])
            elif domain == "depression":
                level = self.pick(codes.FREQUENCY_LEVELS, _DEPRESSION[profile.anxious])
            elif domain in profile.domains:
                level = self.pick(codes.DIFFICULTY_LEVELS[1:], _PRIMARY_LEVELS[band])
            elif domain in profile.secondary and rng.random() < 0.4:
                level = self.pick(codes.DIFFICULTY_LEVELS[1:3], (70, 30))
            else:
                level = "some_difficulty" if rng.random() < 0.05 else "no_difficulty"
            out.append((domain, level))
        return out

    def supports(self, profile: Profile, form: str) -> tuple[list[str], list[str]]:
        """Recommended supports (the profile's first always) and accommodations."""
        rng = self.rng
        supports = [profile.supports[0]]
        supports += [s for s in profile.supports[1:] if rng.random() < 0.5]
        iep = "individual_education_plan"
        if form in codes.SPECIAL_PROVISION_FORMS and iep not in supports and rng.random() < 0.7:
            supports.append(iep)
        if form == "home_education" and "transport" in supports:
            supports.remove("transport")  # taught at home: no school transport
        accommodations = [a for a in profile.accommodations if rng.random() < 0.5]
        return supports, accommodations


def _add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _birth_date(rng: random.Random, ref: dt.date, age: int) -> dt.date:
    """A birth date making the child exactly ``age`` completed years old on ``ref``."""
    latest = _add_years(ref, -age)
    earliest = _add_years(ref, -(age + 1)) + dt.timedelta(days=1)
    return _between(rng, earliest, latest)


def _between(rng: random.Random, first: dt.date, last: dt.date) -> dt.date:
    """A uniformly drawn date from ``first`` to ``last`` inclusive."""
    return first + dt.timedelta(days=rng.randint(0, max(0, (last - first).days)))
