"""zCDP accounting: exact costs, the (ε, δ) conversion, margins, and what nodes import."""

from __future__ import annotations

import math
import subprocess
import sys
from fractions import Fraction

import pytest

from childreg.dp import zcdp


def test_sigma_and_rho_are_exact_inverses() -> None:
    """ρ = 1/(2σ²) in exact fractions: the starting catalogue's 1/32 is σ² = 16."""
    assert zcdp.sigma_squared(Fraction(1, 32)) == 16
    assert zcdp.rho_for_sigma_squared(Fraction(16)) == Fraction(1, 32)
    assert zcdp.sigma_squared(Fraction(2, 9)) == Fraction(9, 4)


@pytest.mark.parametrize(
    ("text", "value"), [("1/32", Fraction(1, 32)), ("0.25", Fraction(1, 4)), (" 3 ", Fraction(3))]
)
def test_parse_rho(text: str, value: Fraction) -> None:
    """Fractions and decimals are read exactly."""
    assert zcdp.parse_rho(text) == value


@pytest.mark.parametrize("text", ["0", "-1/4", "abc", "1/0", "1e-400", ""])
def test_parse_rho_refuses(text: str) -> None:
    """Zero, negative, malformed and absurdly precise values are refused."""
    with pytest.raises(ValueError, match=r"must|digits"):
        zcdp.parse_rho(text)


def test_epsilon_matches_the_design_figures() -> None:
    """PRIVACY.md: ρ = 1/4 is ε ≈ 4.4 at δ = 1e-9; the tight bound beats the simple one."""
    assert zcdp.epsilon(Fraction(1, 4), 1e-9) == pytest.approx(4.4367, abs=1e-3)
    assert zcdp.epsilon(Fraction(1, 32), 1e-9) == pytest.approx(1.4696, abs=1e-3)
    for rho in (Fraction(1, 1000), Fraction(1, 32), Fraction(1, 4), Fraction(5)):
        simple = float(rho) + 2 * math.sqrt(float(rho) * math.log(1e9))
        assert zcdp.epsilon(rho, 1e-9) < simple


def test_epsilon_is_the_minimum_over_renyi_orders() -> None:
    """No order on a fine grid gives a smaller bound than the one returned."""
    rho, delta = 0.25, 1e-9
    log_inv = math.log(1 / delta)

    def bound(a: float) -> float:
        return a * rho + (log_inv + (a - 1) * math.log1p(-1 / a) - math.log(a)) / (a - 1)

    best = min(bound(1 + i / 1000) for i in range(1, 200_000))
    assert zcdp.epsilon(rho, delta) <= best + 1e-9
    assert zcdp.epsilon(rho, delta) >= best - 1e-3


def test_epsilon_grows_with_rho_and_shrinks_with_delta() -> None:
    """More budget spent is more loss; a looser δ is a smaller ε."""
    eps = [zcdp.epsilon(Fraction(1, k), 1e-9) for k in (64, 32, 16, 8, 4)]
    assert eps == sorted(eps)
    assert zcdp.epsilon(Fraction(1, 4), 1e-5) < zcdp.epsilon(Fraction(1, 4), 1e-9)


@pytest.mark.parametrize(("variance", "margin"), [(16, 8), (16 * 14, 30), (0, 0), (1, 2)])
def test_margin95(variance: int, margin: int) -> None:
    """1.96 σ rounded up to a whole number."""
    assert zcdp.margin95(variance) == margin


@pytest.mark.parametrize("module", ["node.server", "tools.cli.main"])
def test_a_node_does_not_load_numpy_or_scipy(module: str) -> None:
    """A node's memory is budgeted: neither the node nor the command line that starts it
    (`childreg node serve`) loads numpy, scipy, matplotlib, pandas or sdmx."""
    code = (
        f"import sys, {module}; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'numpy', 'scipy', 'matplotlib', 'pandas', 'sdmx'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(
    "year",
    [
        "\uff12\uff10\uff12\uff13/\uff12\uff14",  # fullwidth digits
        "\u0662\u0660\u0662\u0663/\u0662\u0664",  # Arabic-Indic digits
        "2023/24\n",
        " 2023/24",
        "2023/25",
        "2023-24",
        "23/24",
    ],
)
def test_a_snapshot_has_one_spelling(year: str) -> None:
    """Other scripts' digits, a trailing newline or a wrong pair are not academic years:
    each spelling would otherwise be a snapshot with a budget of its own."""
    from childreg import codes

    assert not codes.is_valid_academic_year(year)
    assert codes.is_valid_academic_year("2023/24")
