"""A PNG bar chart of a published table (matplotlib, Agg canvas; nothing is displayed).

Its own module because matplotlib is heavy: only the commands that draw import it, so a
node or coordinator process started through the same command line never loads it.
Confidential cells are drawn hatched at the threshold height, labelled "<N"; error bars
are the 95 % margins. Same table, same bytes (no timestamp in the file).
"""

from __future__ import annotations

import itertools
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from childreg import codes
from childreg.errors import InvalidInput, Violation
from tools.clients.published import NATIONAL, PublishedCell, PublishedView


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
