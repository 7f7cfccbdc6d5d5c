"""Nothing from ``random``, ``numpy`` or ``scipy`` in the noise path (PRIVACY.md, "Mechanism").

Mironov 2012 showed that floating-point and library samplers leak through their outputs;
the noise must come only from ``childreg.dp.prng`` (keyed BLAKE2b, libsodium) and the
exact integer sampler in ``childreg.dp.dgauss`` (Canonne, Kamath, Steinke 2020). This
module parses the noise-path sources with ``ast``, follows their imports of project
modules (``childreg``, ``node``) transitively, and refuses any import of ``random``,
``numpy``, ``scipy`` or similar, ``SystemRandom``, or dynamic imports. The sampler
modules themselves must not touch floats at all. A runtime test runs the sampler with the
``random`` and ``numpy.random`` entry points rigged to raise.
"""

from __future__ import annotations

import ast
import random  # noqa: TID251 -- imported only to rig its functions to raise
from collections.abc import Callable, Iterable, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from childreg.dp import dgauss
from childreg.dp.prng import DeterministicBits, SystemBits, noise_seed

ROOT = Path(__file__).resolve().parents[4]

#: The noise path: the sampler, its bit source and (once written) the node's use of them.
NOISE_ROOTS = ("childreg/dp/prng.py", "childreg/dp/dgauss.py", "node/statistics/desk.py")
#: Files that draw the noise themselves: besides the import rule, no floats at all.
EXACT_FILES = frozenset({"childreg/dp/prng.py", "childreg/dp/dgauss.py"})
#: Project packages whose imports are followed.
INTERNAL = frozenset({"childreg", "node"})
#: Top-level modules that must never be imported anywhere in the noise path.
FORBIDDEN = frozenset(
    {"random", "_random", "numpy", "scipy", "pandas", "torch", "jax", "tensorflow", "importlib"}
)
#: Per-file exceptions. childreg/dp/zcdp.py is privacy *accounting* (ρ, σ², the (ε, δ)
#: display), not noise: it never draws a random number, and may use scipy.optimize to
#: minimise the zCDP → (ε, δ) bound. Only that subpackage is allowed, and only there.
EXEMPT: dict[str, frozenset[str]] = {
    "childreg/dp/zcdp.py": frozenset({"scipy.optimize"}),
}
#: The only ``math`` functions the exact sampler may use (integer results).
EXACT_MATH = frozenset({"isqrt", "gcd"})


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def module_file(name: str, root: Path) -> Path | None:
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def forbidden(name: str, allowed: frozenset[str]) -> bool:
    if any(name == a or name.startswith(a + ".") for a in allowed):
        return False
    return name.partition(".")[0] in FORBIDDEN


def float_findings(tree: ast.AST) -> Iterable[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, float | complex):
            yield node.lineno, f"float literal {node.value!r}"
        elif isinstance(node, ast.Name) and node.id == "float":
            yield node.lineno, "float()"
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            yield node.lineno, "true division '/' (use // or Fraction)"
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "math"
            and node.attr not in EXACT_MATH
        ):
            yield node.lineno, f"math.{node.attr}"
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            module = node.module if isinstance(node, ast.ImportFrom) else None
            if "decimal" in names or module == "decimal":
                yield node.lineno, "decimal"


def scan_file(path: Path, root: Path, exact: bool = False) -> tuple[list[str], set[str]]:
    """Violations in one file, and the project modules it imports (with their packages)."""
    rel = path.relative_to(root).as_posix()
    allowed = EXEMPT.get(rel, frozenset())
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
    here = module_name(path, root)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found: list[str] = []
    internal: set[str] = set()

    def use(line: int, name: str, members: Sequence[str] = ()) -> None:
        # "from scipy import stats" binds scipy.stats; "from random import *" binds random.
        bound = [f"{name}.{m}" for m in members if m != "*"] or [name]
        if any(forbidden(n, allowed) for n in bound):
            found.append(f"{rel}:{line}: imports {name}")
        if "SystemRandom" in members:
            found.append(f"{rel}:{line}: imports SystemRandom")
        if name.partition(".")[0] in INTERNAL:
            parts = name.split(".")
            internal.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
            internal.update(f"{name}.{m}" for m in members if module_file(f"{name}.{m}", root))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                use(node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                name = ".".join([*base, *([node.module] if node.module else [])])
            else:
                name = node.module or ""
            use(node.lineno, name, [a.name for a in node.names])
        elif (isinstance(node, ast.Attribute) and node.attr == "SystemRandom") or (
            isinstance(node, ast.Name) and node.id in {"SystemRandom", "__import__"}
        ):
            found.append(f"{rel}:{node.lineno}: uses {ast.unparse(node)}")
    if exact:
        found += [f"{rel}:{line}: {what}" for line, what in float_findings(tree)]
    return found, internal


def noise_path_violations(roots: Iterable[str], root: Path = ROOT) -> tuple[list[str], set[str]]:
    """All violations reachable from ``roots`` (relative paths that exist), and what was read."""
    todo = [root / r for r in roots if (root / r).is_file()]
    seen: set[str] = set()
    violations: list[str] = []
    while todo:
        path = todo.pop()
        rel = path.relative_to(root).as_posix()
        if rel in seen:
            continue
        seen.add(rel)
        found, internal = scan_file(path, root, exact=rel in EXACT_FILES)
        violations += found
        for name in sorted(internal):
            target = module_file(name, root)
            if target is None:
                violations.append(f"{rel}: cannot find project module {name}")
            else:
                todo.append(target)
    return sorted(violations), seen


# --- the rule, on the real tree ------------------------------------------------------


def test_the_noise_path_imports_nothing_random() -> None:
    """The real noise path, followed through its project imports, imports nothing random, numpy or
    scipy, and includes the sampler, its bit source and their package."""
    violations, scanned = noise_path_violations(NOISE_ROOTS)
    assert violations == []
    assert {"childreg/dp/prng.py", "childreg/dp/dgauss.py", "childreg/dp/__init__.py"} <= scanned


def test_node_privacy_is_scanned_when_it_exists() -> None:
    """The node's statistics desk is part of the scanned noise path exactly when its file exists."""
    _, scanned = noise_path_violations(NOISE_ROOTS)
    assert ("node/statistics/desk.py" in scanned) == (ROOT / "node/statistics/desk.py").is_file()


# --- the scanner can fail ------------------------------------------------------------


def plant(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


@pytest.mark.parametrize(
    "source",
    [
        "import random\n",
        "from random import *\n",
        "from random import randrange\n",
        "import numpy as np\n",
        "from numpy.random import default_rng\n",
        "from numpy import random\n",
        "import scipy.stats\n",
        "from scipy import stats\n",
        "from secrets import SystemRandom\n",
        "import secrets\nrng = secrets.SystemRandom()\n",
        "import importlib\n",
        "m = __import__('random')\n",
        "def f() -> None:\n    import random\n",
    ],
)
def test_the_scanner_catches_a_planted_import(tmp_path: Path, source: str) -> None:
    """Each way of importing or calling a non-cryptographic generator, planted in a noise module, is
    reported."""
    plant(tmp_path, {"childreg/__init__.py": "", "childreg/dp/noise.py": source})
    violations, _ = noise_path_violations(["childreg/dp/noise.py"], tmp_path)
    assert violations, source


def test_the_scanner_follows_project_imports(tmp_path: Path) -> None:
    """A noise module importing a helper that imports random is caught, also relatively."""
    plant(
        tmp_path,
        {
            "childreg/__init__.py": "",
            "childreg/dp/__init__.py": "",
            "childreg/dp/noise.py": "from childreg.util import helper\n",
            "childreg/util/__init__.py": "from . import helper\n",
            "childreg/util/helper.py": "from .deep import x\n",
            "childreg/util/deep.py": "import random\nx = 1\n",
            "node/statistics/desk.py": "from childreg.dp import noise\n",
        },
    )
    violations, scanned = noise_path_violations(["node/statistics/desk.py"], tmp_path)
    assert violations == ["childreg/util/deep.py:1: imports random"]
    assert "childreg/dp/noise.py" in scanned


def test_the_scanner_passes_clean_code(tmp_path: Path) -> None:
    """Imports of hashlib, fractions, secrets and libsodium's randombytes in the noise path are not
    reported."""
    plant(
        tmp_path,
        {
            "childreg/__init__.py": "import hashlib\nfrom fractions import Fraction\n",
            "childreg/dp/noise.py": "import secrets\nfrom nacl.bindings import randombytes\n",
        },
    )
    assert noise_path_violations(["childreg/dp/noise.py"], tmp_path)[0] == []


def test_only_zcdp_may_use_scipy_optimize(tmp_path: Path) -> None:
    """Only childreg/dp/zcdp.py may import scipy.optimize, and not even it may import any other part
    of scipy."""
    plant(
        tmp_path,
        {
            "childreg/__init__.py": "",
            "childreg/dp/__init__.py": "",
            "childreg/dp/zcdp.py": "from scipy.optimize import minimize_scalar\n",
            "childreg/dp/other.py": "from scipy.optimize import minimize_scalar\n",
            "childreg/dp/noise.py": "from childreg.dp import zcdp\n",
        },
    )
    assert noise_path_violations(["childreg/dp/noise.py"], tmp_path)[0] == []
    assert noise_path_violations(["childreg/dp/other.py"], tmp_path)[0] != []
    plant(tmp_path, {"childreg/dp/zcdp.py": "import scipy.stats\n"})
    assert noise_path_violations(["childreg/dp/noise.py"], tmp_path)[0] != []


@pytest.mark.parametrize(
    "source", ["x = 0.5\n", "y = 3 / 4\n", "import math\nz = math.exp(1)\n", "w = float(2)\n"]
)
def test_the_exact_sampler_files_may_not_use_floats(tmp_path: Path, source: str) -> None:
    """A float literal, true division, a non-integer math function or float() in the exact sampler
    is reported, while math.isqrt and floor division are not."""
    plant(tmp_path, {"childreg/dp/dgauss.py": source})
    assert noise_path_violations(["childreg/dp/dgauss.py"], tmp_path)[0] != []
    plant(tmp_path, {"childreg/dp/dgauss.py": "import math\nz = math.isqrt(7) // 2\n"})
    assert noise_path_violations(["childreg/dp/dgauss.py"], tmp_path)[0] == []


# --- at run time ---------------------------------------------------------------------

RANDOM_FUNCTIONS = (
    "random", "randrange", "randint", "getrandbits", "randbytes", "choice", "choices",
    "shuffle", "sample", "uniform", "gauss", "normalvariate", "seed",
)  # fmt: skip
NUMPY_FUNCTIONS = ("default_rng", "random", "randint", "normal", "laplace", "seed", "Generator")


def _refuse(*_: object, **__: object) -> None:
    raise AssertionError("the noise path used a non-cryptographic random generator")


def test_the_sampler_runs_with_random_and_numpy_random_disabled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The sampler, the noisy counts and both bit sources give Python ints while every random and
    numpy.random entry point raises."""
    refuse: Callable[..., None] = _refuse
    for name in RANDOM_FUNCTIONS:
        monkeypatch.setattr(random, name, refuse)
    for cls in (random.Random, random.SystemRandom):
        for name in ("random", "getrandbits", "randbytes", "_randbelow"):
            monkeypatch.setattr(cls, name, refuse)
    for name in NUMPY_FUNCTIONS:
        monkeypatch.setattr(np.random, name, refuse)
    with pytest.raises(AssertionError):
        random.getrandbits(8)  # the rigging works

    secret = bytes(range(32))
    sigma2 = Fraction(16)

    def seed(cell: int) -> bytes:
        return noise_seed(secret, catalogue_version=1, table_id="t", snapshot="s", cell=cell)

    noisy = dgauss.noisy_counts([0, 1, 2, 30] * 25, sigma2, seed)
    assert len(noisy) == 100
    assert all(type(x) is int for x in noisy)
    bits = DeterministicBits(seed(0))
    assert type(dgauss.discrete_gaussian(Fraction(9, 4), bits)) is int
    assert type(dgauss.discrete_laplace(Fraction(3, 2), bits)) is int
    assert type(dgauss.discrete_gaussian(sigma2, SystemBits())) is int
