"""Consistent publication: non-negative integers, additive, equal on every shared margin."""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from childreg import codes
from coordinator.publication.postprocess import (
    TABLE_DIMENSIONS,
    Publication,
    RegionMeasurement,
    SnapshotState,
    publish,
)
from coordinator.publication.rounding import canonical, marginal, reorder

Dims = tuple[str, ...]
Counts = npt.NDArray[np.int64]
Step = tuple[Dims, dict[str, RegionMeasurement]]

ALL: Dims = canonical(TABLE_DIMENSIONS)
CATALOGUE: tuple[Dims, ...] = (
    ("education_form",),
    ("education_form", "sex"),
    ("education_form", "age_band"),
    ("education_form", "care_setting"),
    ("education_form", "impairment_band"),
    ("sex", "age_band"),
    ("age_band", "care_setting"),
    ("impairment_band", "sex"),
)


#: Work, not seconds, bounds the solver in these tests, so what they publish is the same
#: on a loaded CI machine as here; the time limit is only a backstop far above it.
NODES = 100


def run(
    steps: Sequence[Step],
    state: SnapshotState | None = None,
    time_limit: float = 600.0,
    node_limit: int | None = NODES,
) -> list[Publication]:
    """Publish the steps in order, starting from ``state`` (empty by default)."""
    out: list[Publication] = []
    current = state or SnapshotState()
    for dims, measurements in steps:
        out.append(
            publish(current, dims, measurements, time_limit=time_limit, node_limit=node_limit)
        )
        current = out[-1].state
    return out


def measure(
    truth: Mapping[str, Counts], dims: Dims, rng: np.random.Generator | None, sd: float
) -> Step:
    """Each region's true table over ``dims`` (in the order given) plus rounded normal noise."""
    measurements = {}
    for region, joint in truth.items():
        table = reorder(marginal(joint, ALL, canonical(dims)), canonical(dims), dims)
        noise = np.zeros(table.size) if rng is None else np.rint(rng.normal(0, sd, table.size))
        values = [int(v) for v in table + noise.astype(np.int64)]
        measurements[region] = RegionMeasurement(values, max(sd * sd, 1.0))
    return dims, measurements


def check_consistent(pubs: Sequence[Publication]) -> None:
    """Every invariant of a published sequence, in every region and in the nation."""
    state = pubs[-1].state
    for pub in pubs:
        for values in pub.regions.values():
            assert all(type(v) is int and v >= 0 for v in values)
        assert pub.national == tuple(map(sum, zip(*pub.regions.values(), strict=True)))
    for region, kept in state.regions.items():
        base = kept.base.array()
        assert [t.dimensions for t in kept.published] == [p.dimensions for p in pubs]
        for pub in pubs:
            table = np.array(pub.regions[region])
            assert np.array_equal(marginal(base, kept.base.dimensions, pub.dimensions), table)
    for a, b in itertools.combinations(pubs, 2):
        shared = tuple(d for d in a.dimensions if d in b.dimensions)
        pairs = [(a.regions[r], b.regions[r], r) for r in a.regions]
        for values_a, values_b, where in [*pairs, (a.national, b.national, "nation")]:
            margin_a = marginal(np.array(values_a), a.dimensions, shared)
            margin_b = marginal(np.array(values_b), b.dimensions, shared)
            assert np.array_equal(margin_a, margin_b), (a.dimensions, b.dimensions, where)


def outputs(pubs: Sequence[Publication]) -> list[tuple[Any, ...]]:
    """What a publication sequence shows, without the timings."""
    return [(p.dimensions, dict(p.regions), p.national, p.state.to_json()) for p in pubs]


@st.composite
def scenarios(draw: st.DrawFn) -> list[Step]:
    """1-4 distinct tables of 1-3 dimensions (in any order), 2-4 regions, noisy values."""
    regions = draw(
        st.lists(st.sampled_from(tuple(codes.regions())), min_size=2, max_size=4, unique=True)
    )
    tables = draw(
        st.lists(
            st.lists(st.sampled_from(ALL), min_size=1, max_size=3, unique=True).map(tuple),
            min_size=1,
            max_size=4,
            unique_by=frozenset,
        )
    )
    steps: list[Step] = []
    for dims in tables:
        low, high = draw(st.integers(-8, 0)), draw(st.integers(1, 60))
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        measurements = {
            r: RegionMeasurement(
                [int(v) for v in rng.integers(low, high, codes.grid_size(dims))],
                draw(st.sampled_from((1.0, 4.0, 16.0))),
            )
            for r in regions
        }
        steps.append((dims, measurements))
    return steps


PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(scenarios())
def test_random_sequences_are_consistent(steps: list[Step]) -> None:
    """Any sequence of tables publishes non-negative ints, additive, equal on shared margins."""
    pubs = run(steps)
    check_consistent(pubs)
    for pub in pubs:  # the fallback is allowed here (it keeps every equality) but says why
        assert all(pub.diagnostics[r].detail.startswith("HiGHS") for r in pub.fallbacks)


@PROPERTY
@given(scenarios(), st.integers(0, 3))
def test_state_round_trip_then_continuing_changes_nothing(steps: list[Step], cut: int) -> None:
    """Stopping after any table, saving the state as JSON and going on gives the same result."""
    cut = min(cut, len(steps))
    straight = run(steps)
    first = run(steps[:cut])
    saved = json.loads(json.dumps((first[-1].state if first else SnapshotState()).to_json()))
    loaded = SnapshotState.from_json(saved)
    assert loaded == (first[-1].state if first else SnapshotState())
    assert outputs(first + run(steps[cut:], loaded)) == outputs(straight)


def federation(seed: int, children: int = 45_000) -> dict[str, Counts]:
    """A synthetic snapshot like the federation's: skewed, with dependent dimensions."""
    rng = np.random.default_rng(seed)
    forms = np.array([14, 50, 6, 3, 4, 6, 2, 1.5, 2, 1, 3]) / 92.5
    sex = np.array([0.42, 0.58])
    age = rng.dirichlet(np.ones(6) * 3, size=11)  # age band depends on the form
    age[0] = [0.45, 0.55, 0, 0, 0, 0]  # preschool
    care = rng.dirichlet([40, 3, 1, 2, 1, 0.5, 2], size=11)  # care setting depends on form
    impairment = rng.dirichlet([4, 3, 2, 1, 2], size=2)  # impairment depends on sex
    joint = np.einsum("f,s,fa,fc,si->fsaci", forms, sex, age, care, impairment)
    sizes = rng.multinomial(children, rng.dirichlet(np.ones(14) * 2))
    return {
        region: rng.multinomial(n, joint.reshape(-1)).astype(np.int64)
        for region, n in zip(codes.regions(), sizes, strict=True)
    }


def test_exact_measurements_publish_the_truth() -> None:
    """Noise-free measurements of one consistent dataset are published exactly."""
    truth = {
        r: t
        for r, t in federation(7, children=9_000).items()
        if r in ("baku", "shaki_zagatala", "nakhchivan")
    }
    pubs = run([measure(truth, dims, None, 0.0) for dims in CATALOGUE])
    for pub in pubs:
        for region, joint in truth.items():
            assert pub.regions[region] == tuple(marginal(joint, ALL, pub.dimensions))


def test_small_noise_stays_close_to_the_truth() -> None:
    """With non-negative measurements of noise variance 1, every published cell is near truth."""
    rng = np.random.default_rng(11)
    truth = {r: t for r, t in federation(3, children=40_000).items() if r in ("baku", "karabakh")}
    steps = [measure(truth, dims, rng, 1.0) for dims in CATALOGUE[:6]]
    steps = [
        (dims, {r: RegionMeasurement([max(v, 0) for v in m.values], 1.0) for r, m in ms.items()})
        for dims, ms in steps
    ]
    pubs = run(steps)
    check_consistent(pubs)
    worst = max(
        np.abs(np.array(pub.regions[r]) - marginal(t, ALL, pub.dimensions)).max()
        for pub in pubs
        for r, t in truth.items()
    )
    assert worst <= 6  # 5 here: sex x age_band inherits the noise of the sex margin


def test_same_inputs_same_outputs() -> None:
    """Publishing the same measurements twice gives identical tables and state."""
    steps = [
        measure(federation(5, children=4_000), dims, np.random.default_rng(1), 4.0)
        for dims in CATALOGUE
    ]
    assert outputs(run(steps)) == outputs(run(steps))


@pytest.mark.timeout(60)
def test_federation_catalogue_is_consistent_and_close() -> None:
    """The 8 catalogue tables for 14 regions, variance 16: consistent, and the nation near truth."""
    truth = federation(2024)
    assert len(truth) == 14
    rng = np.random.default_rng(2025)
    pubs = run([measure(truth, dims, rng, 4.0) for dims in CATALOGUE])
    check_consistent(pubs)
    assert all(d.method == "milp" for p in pubs[1:] for d in p.diagnostics.values())
    national = sum(marginal(t, ALL, ("education_form",)) for t in truth.values())
    assert np.abs(np.array(pubs[0].national) - national).max() <= 40
    assert [p.dimensions for p in pubs] == [canonical(d) for d in CATALOGUE]


def test_first_table_is_the_nearest_non_negative_integers() -> None:
    """The first table of a snapshot keeps each measured value, negatives raised to zero."""
    values = [5, -3, 0, 12, -1, 7, 2, 9, 1, 0, 4]
    pub = publish(SnapshotState(), ["education_form"], {"baku": RegionMeasurement(values, 16.0)})
    assert pub.regions["baku"] == tuple(max(v, 0) for v in values)
    assert pub.national == pub.regions["baku"]
    assert pub.diagnostics["baku"].method == "direct"


def test_dimensions_in_any_order_are_read_and_published_canonically() -> None:
    """Values are read in the grid order of the dimensions as given; output is canonical."""
    truth = {r: t for r, t in federation(9, children=3_000).items() if r in ("baku", "karabakh")}
    rng = np.random.default_rng(4)
    first = measure(truth, ("education_form",), rng, 2.0)
    dims, swapped = measure(truth, ("sex", "education_form"), rng, 2.0)
    straight = {
        r: RegionMeasurement(
            [int(v) for v in reorder(np.array(m.values), dims, canonical(dims))], m.variance
        )
        for r, m in swapped.items()
    }
    a = run([first, (dims, swapped)])
    b = run([first, (canonical(dims), straight)])
    assert a[-1].dimensions == ("education_form", "sex")
    assert outputs(a) == outputs(b)


def test_a_table_after_its_margin_is_determined_by_it() -> None:
    """A table inside an earlier one is that table's margin; the base does not change."""
    truth = {r: t for r, t in federation(2, children=2_000).items() if r in ("baku", "karabakh")}
    rng = np.random.default_rng(8)
    pubs = run([measure(truth, d, rng, 2.0) for d in (("sex", "age_band"), ("age_band",))])
    check_consistent(pubs)
    assert {d.method for d in pubs[1].diagnostics.values()} == {"determined"}
    assert pubs[1].state.regions["baku"].base == pubs[0].state.regions["baku"].base


def test_without_a_proven_optimum_the_fallback_keeps_every_equality() -> None:
    """When HiGHS hits its time limit the fallback is used, reported, and still consistent."""
    truth = {r: t for r, t in federation(5, children=5_000).items() if r in ("baku", "karabakh")}
    rng = np.random.default_rng(1)
    steps = [measure(truth, dims, rng, 4.0) for dims in CATALOGUE]
    pubs = run(steps, time_limit=1e-9, node_limit=None)
    check_consistent(pubs)
    assert pubs[-1].fallbacks == ("baku", "karabakh")
    assert "time limit" in pubs[-1].diagnostics["baku"].detail.lower()
    assert outputs(pubs) == outputs(
        run(steps, time_limit=1e-9, node_limit=None)
    )  # deterministic too


LIMIT = 20


def test_at_a_node_limit_the_best_solution_so_far_is_published() -> None:
    """A solver stopped by its node limit publishes its best integer solution, consistently."""
    rng = np.random.default_rng(7)  # unstructured three-way tables: hard for branch and bound
    tables = [
        ("impairment_band", "age_band", "care_setting"),
        ("education_form", "sex", "care_setting"),
        ("education_form", "age_band"),
        ("education_form", "sex", "impairment_band"),
    ]
    steps: list[Step] = [
        (
            dims,
            {
                r: RegionMeasurement(
                    [int(v) for v in rng.integers(-8, 60, codes.grid_size(dims))], 4.0
                )
                for r in ("baku", "karabakh")
            },
        )
        for dims in tables
    ]
    pubs = run(steps, node_limit=LIMIT)
    check_consistent(pubs)
    stopped = [d for p in pubs for d in p.diagnostics.values() if "limit" in d.detail]
    assert stopped
    assert all(d.method == "milp" for d in stopped)
    assert all("from optimal" in d.detail for d in stopped)
    assert outputs(pubs) == outputs(run(steps, node_limit=LIMIT))  # a work limit is deterministic


def _two_tables() -> list[Publication]:
    truth = {r: t for r, t in federation(6, children=2_000).items() if r in ("baku", "karabakh")}
    rng = np.random.default_rng(3)
    return run([measure(truth, d, rng, 2.0) for d in (("sex",), ("sex", "age_band"))])


def _one(values: Sequence[int], variance: float = 4.0) -> dict[str, RegionMeasurement]:
    return {r: RegionMeasurement(values, variance) for r in ("baku", "karabakh")}


@pytest.mark.parametrize(
    ("dims", "measurements"),
    [
        (("age_band", "sex"), _one([1] * 12)),  # already published, in another order
        (("care_setting",), _one([1] * 6)),  # wrong length
        (("care_setting",), {"baku": RegionMeasurement([1] * 7, 4.0)}),  # a region missing
        (("care_setting",), {**_one([1] * 7), "nakhchivan": RegionMeasurement([1] * 7, 4.0)}),
        (("care_setting",), _one([1.5] * 7)),  # type: ignore[list-item]
        (("care_setting",), _one([True] * 7)),
        (("care_setting",), _one([1] * 7, variance=0.0)),
        (("care_setting",), _one([1] * 7, variance=float("nan"))),
        (("region",), _one([1] * 14)),
        (("district",), _one([1] * len(codes.districts()))),
        (("colour",), _one([1] * 3)),
        (("sex", "sex"), _one([1] * 4)),
        ((), _one([1])),
        (("education_form", "sex", "age_band", "care_setting"), _one([1] * 924)),
    ],
)
def test_bad_requests_are_refused(dims: Dims, measurements: dict[str, RegionMeasurement]) -> None:
    """A table already published, a bad measurement or bad dimensions raise ValueError."""
    state = _two_tables()[-1].state
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        publish(state, dims, measurements)


def test_unknown_regions_and_bad_time_limits_are_refused() -> None:
    """Regions come from the code list; the time and node limits are positive."""
    with pytest.raises(ValueError, match="unknown region"):
        publish(SnapshotState(), ["sex"], {"atlantis": RegionMeasurement([1, 2], 4.0)})
    with pytest.raises(ValueError, match="time_limit"):
        publish(SnapshotState(), ["sex"], _one([1, 2]), time_limit=0)
    with pytest.raises(ValueError, match="node_limit"):
        publish(SnapshotState(), ["sex"], _one([1, 2]), node_limit=0)


def _mutations() -> list[tuple[str, Any]]:
    """(name, function changing a valid JSON state in place) pairs, each making it invalid."""

    def base(doc: dict[str, Any]) -> dict[str, Any]:
        return doc["regions"]["baku"]["base"]  # type: ignore[no-any-return]

    def published(doc: dict[str, Any]) -> list[dict[str, Any]]:
        return doc["regions"]["baku"]["published"]  # type: ignore[no-any-return]

    return [
        ("format", lambda d: d.update(format="childreg.consistent-publication.v0")),
        ("extra key", lambda d: d.update(extra=1)),
        ("regions not an object", lambda d: d.update(regions=[])),
        ("unknown region", lambda d: d["regions"].update(atlantis=d["regions"]["baku"])),
        ("region key missing", lambda d: d["regions"]["baku"].pop("published")),
        ("published not a list", lambda d: d["regions"]["baku"].update(published={})),
        ("nothing published", lambda d: d["regions"]["baku"].update(published=[])),
        ("not a marginal", lambda d: base(d)["values"].__setitem__(0, base(d)["values"][0] + 1)),
        ("negative", lambda d: published(d)[0]["values"].__setitem__(0, -1)),
        ("bool", lambda d: published(d)[0]["values"].__setitem__(0, True)),
        ("float", lambda d: published(d)[0]["values"].__setitem__(0, 1.0)),
        ("huge", lambda d: base(d)["values"].__setitem__(0, 2**70)),
        ("short", lambda d: published(d)[1]["values"].pop()),
        ("not canonical", lambda d: published(d)[1].update(dimensions=["age_band", "sex"])),
        ("unknown dimension", lambda d: published(d)[0].update(dimensions=["colour"])),
        ("dimensions not strings", lambda d: published(d)[0].update(dimensions=[1])),
        ("values not a list", lambda d: published(d)[0].update(values="12")),
        ("published twice", lambda d: published(d).append(published(d)[0])),
        ("base not the union", lambda d: base(d).update(dimensions=["sex"], values=[1, 2])),
        ("regions differ", lambda d: published(d).reverse()),
    ]


@pytest.mark.parametrize(("name", "mutate"), _mutations(), ids=[n for n, _ in _mutations()])
def test_state_json_is_validated_strictly(name: str, mutate: Any) -> None:
    """Every malformed or inconsistent state document is refused with ValueError."""
    doc = json.loads(json.dumps(_two_tables()[-1].state.to_json()))
    SnapshotState.from_json(doc)  # the unmutated document loads
    mutate(doc)
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        SnapshotState.from_json(doc)


def test_empty_state_round_trips() -> None:
    """An empty snapshot's state survives JSON, and has no tables."""
    doc = SnapshotState().to_json()
    assert SnapshotState.from_json(json.loads(json.dumps(doc))) == SnapshotState()
    assert SnapshotState().tables == ()
