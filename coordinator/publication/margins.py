"""How uncertain each published cell is, after post-processing: error propagation.

A table published later in a snapshot is fitted to agree with the margins of tables
published before it (coordinator/publication/postprocess.py), so it carries part of *their* noise
too: a cell of "sex × age band" fitted to the published sex and age margins inherits the
error of those margins, which are sums of many noisy cells. Stating only the table's own
noise would understate its error.

The fit is linear in the noise: the least-squares projection is u = P·y + A⁺·b, with
P = I − A⁺A, y = truth + this table's noise, and b the earlier published margins
(truth + their own linear error). So each published cell's error is a fixed linear
combination of every measurement's noise so far, and its variance is
Σ_tables σ²_t · ‖row of that combination's block for t‖² — times the number of noise
*units* summed into the area, each independent with the same variance: under stage 1 a
unit is one department (variance σ²), under secure aggregation the one national sum
(variance n·σ²/(t−c)). The combination depends only on the sequence of dimensions (never on the
data), so it is the same for every region. Rounding to integers and raising negatives to
zero are left out (they move a value by about one, or towards the truth).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from coordinator.publication import rounding
from coordinator.publication.rounding import Dims

Matrix = npt.NDArray[np.float64]


def cell_variances(sequence: Sequence[tuple[Dims, Fraction]]) -> list[Matrix]:
    """Per-cell error variance of each table, for one unit's worth of noise.

    ``sequence`` lists the tables of a snapshot in publication order: canonical
    dimensions and the per-cell noise variance of one unit of that table (one department's
    σ² under stage 1, the national sum's n·σ²/(t−c) under secure aggregation). Multiply a
    result by the number of units in an area for that area's variance.
    """
    errors, scale = _error_model(sequence)
    return [(error**2) @ scale[: error.shape[1]] for error in errors]


def combination_variance(sequence: Sequence[tuple[Dims, Fraction]], weights: Matrix) -> float:
    """Error variance of ``weights · cells`` of the last table (one unit's worth).

    A sum of cells is not the sum of their variances: the fit correlates their errors.
    """
    errors, scale = _error_model(sequence)
    combined = weights @ errors[-1]
    return float((combined**2) @ scale)


def _error_model(sequence: Sequence[tuple[Dims, Fraction]]) -> tuple[list[Matrix], Matrix]:
    """Each table's error as a matrix over every measurement's noise, and the noise scale."""
    errors: list[Matrix] = []  # per table: cells × (all noise so far)
    widths: list[int] = []  # noise columns contributed by each table
    for t, (dims, _) in enumerate(sequence):
        size = rounding.shape(dims)
        cells = int(np.prod(size)) if size else 1
        total = sum(widths) + cells
        own = np.zeros((cells, total))
        own[:, total - cells :] = np.eye(cells)  # this table's own noise
        constraints = _constraints(dims, sequence[:t], errors, total)
        if constraints is None:
            error = own
        else:
            matrix, earlier_error = constraints
            pinv = np.linalg.pinv(matrix)
            projection = np.eye(cells) - pinv @ matrix
            error = projection @ own + pinv @ earlier_error
        errors = [np.pad(e, ((0, 0), (0, cells))) for e in errors]
        errors.append(error)
        widths.append(cells)
    scale = np.concatenate([np.full(w, float(sequence[k][1])) for k, w in enumerate(widths)])
    return errors, scale


def _constraints(
    dims: Dims, earlier: Sequence[tuple[Dims, Fraction]], errors: list[Matrix], total: int
) -> tuple[Matrix, Matrix] | None:
    """The fit's equality matrix and the error of its right-hand side (earlier margins)."""
    by_shared: dict[Dims, Matrix] = {}
    for (other, _), error in zip(earlier, errors, strict=True):
        shared = tuple(d for d in dims if d in other)
        padded = np.pad(error, ((0, 0), (0, total - error.shape[1])))
        by_shared[shared] = rounding.margin_matrix(other, shared).toarray() @ padded
    kept = [s for s in by_shared if not any(set(s) < set(o) for o in by_shared)]
    if not kept:
        return None
    matrix = np.vstack([rounding.margin_matrix(dims, s).toarray() for s in kept])
    return matrix, np.vstack([by_shared[s] for s in kept])
