"""Stated margins match the real error of post-processed tables.

The margins are coordinator/publication/margins.py.

Monte Carlo: one region with large true counts, noisy measurements (Gaussian, rounded),
four tables published in sequence by the real post-processing; the empirical error
variance of every cell of every table is compared with the propagated variance.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from childreg import codes
from coordinator.publication.margins import cell_variances
from coordinator.publication.postprocess import RegionMeasurement, SnapshotState, publish
from coordinator.publication.rounding import marginal

SEQUENCE: tuple[tuple[str, ...], ...] = (
    ("education_form",),
    ("education_form", "sex"),
    ("sex", "age_band"),
    ("age_band", "care_setting"),
)
FULL = ("education_form", "sex", "age_band", "care_setting")
VARIANCE = 16.0
REGION = "baku"


def test_propagated_variances_match_the_simulated_error() -> None:
    """Within 25 % for every table's average cell, over 300 simulated snapshots."""
    rng = np.random.default_rng(20261122)
    truth = rng.integers(150, 400, size=codes.grid_size(FULL)).astype(np.int64)
    tables = {d: marginal(truth, FULL, d) for d in SEQUENCE}
    errors: dict[tuple[str, ...], list[np.ndarray]] = {d: [] for d in SEQUENCE}
    for _ in range(300):
        state = SnapshotState()
        for dims in SEQUENCE:
            noisy = tables[dims] + np.rint(rng.normal(0, VARIANCE**0.5, tables[dims].size))
            out = publish(
                state,
                dims,
                {REGION: RegionMeasurement([int(v) for v in noisy], VARIANCE)},
            )
            state = out.state
            errors[dims].append(np.array(out.regions[REGION]) - tables[dims])
    predicted = cell_variances([(d, Fraction(16)) for d in SEQUENCE])
    for dims, expected in zip(SEQUENCE, predicted, strict=True):
        measured = np.var(np.array(errors[dims]), axis=0).mean()
        assert measured == pytest.approx(expected.mean(), rel=0.25), dims


def test_the_first_table_carries_only_its_own_noise() -> None:
    """No earlier table: the variance is σ² per cell."""
    (only,) = cell_variances([(("education_form",), Fraction(16))])
    assert only.tolist() == [16.0] * len(codes.EDUCATION_FORMS)


def test_a_table_fitted_to_wide_margins_is_less_certain_than_its_own_noise() -> None:
    """Sex × age band after form × sex inherits the noise of sums of 11 cells: above σ²."""
    variances = cell_variances([(d, Fraction(16)) for d in SEQUENCE])
    assert variances[1].max() < 16  # form × sex is helped by the published form table
    assert variances[2].min() > 16  # sex × age band is hurt by the wide sex margin


def test_a_marginal_of_an_earlier_table_has_exactly_its_error() -> None:
    """Publishing sex after form × sex: the sex values are determined, variance 11 × 16."""
    variances = cell_variances(
        [(("education_form", "sex"), Fraction(16)), (("sex",), Fraction(16))]
    )
    assert variances[1] == pytest.approx([11 * 16.0] * 2)
