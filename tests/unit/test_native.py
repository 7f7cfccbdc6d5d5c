"""The import's compiled modules: built by make, equal to their source, never stale."""

from __future__ import annotations

import importlib.machinery
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import node
from node import native

REPO = Path(__file__).resolve().parents[2]
ALL = [f"node.{name}" for name in native.COMPILED]
SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


def _probe(**env: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.native_probe"],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_make_runs_the_import_modules_compiled() -> None:
    # `make test` compiles them first; CHILDREG_PURE=1 is the one way to ask for source.
    if os.environ.get(native.PURE_ENV) == "1":
        assert native.compiled_modules() == []
        return
    assert not node.FROM_SOURCE, "a compiled module is stale: run `make test` (it rebuilds)"
    assert native.compiled_modules() == ALL, (
        "the import modules are not compiled: run `make test`, or see docs/operations.md"
    )


def test_compiled_modules_compute_exactly_what_their_source_does() -> None:
    as_built = _probe()
    from_source = _probe(**{native.PURE_ENV: "1"})
    assert from_source["compiled"] == []
    if os.environ.get(native.PURE_ENV) != "1":
        assert as_built["compiled"] == ALL
    assert as_built["imported"] == from_source["imported"] == 400
    assert as_built["digest"] == from_source["digest"]


# ----- the guard, on a package of its own ------------------------------------------
def _package(root: Path, *, manifest: bool, edited: bool = False) -> Path:
    """Package ``hot_pkg``: module ``hot`` in source, and a "compiled" ``hot`` that is not
    a loadable extension at all, so importing it fails unless the guard sets it aside."""
    pkg = root / "hot_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "from pathlib import Path\nfrom node import native\n"
        "FROM_SOURCE = native.guard(__name__, Path(__file__).parent, ('hot',))\n"
    )
    (pkg / "hot.py").write_text("WHERE = 'source'\n")
    (pkg / f"hot{SUFFIX}").write_bytes(b"not an extension module")
    if manifest:
        native.write_manifest(pkg, ("hot",))
    if edited:
        (pkg / "hot.py").write_text("WHERE = 'source'  # edited after the build\n")
    return pkg


def _import_hot(root: Path, **env: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import hot_pkg\nfrom node import native\n"
        "print(native.compiled_modules('hot_pkg', ('hot',)))  # before the import: as planned\n"
        "import hot_pkg.hot as h\nprint(hot_pkg.FROM_SOURCE, h.WHERE)\n"
        "print(native.compiled_modules('hot_pkg', ('hot',)))  # after: as loaded\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        env={**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{REPO}", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_fresh_build_is_what_python_loads(tmp_path: Path) -> None:
    _package(tmp_path, manifest=True)
    done = _import_hot(tmp_path, **{native.PURE_ENV: ""})
    # The guard left the "compiled" file in place, and Python tried to load it.
    assert done.returncode != 0
    assert done.stdout.splitlines() == ["['hot_pkg.hot']"]
    assert "ImportError" in done.stderr or "invalid ELF" in done.stderr


@pytest.mark.parametrize(("manifest", "edited"), [(True, True), (False, False)])
def test_a_stale_build_is_set_aside_for_the_source(
    tmp_path: Path, manifest: bool, edited: bool
) -> None:
    _package(tmp_path, manifest=manifest, edited=edited)
    done = _import_hot(tmp_path, **{native.PURE_ENV: ""})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", "True source", "[]"]


def test_childreg_pure_sets_a_fresh_build_aside(tmp_path: Path) -> None:
    _package(tmp_path, manifest=True)
    done = _import_hot(tmp_path, **{native.PURE_ENV: "1"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", "True source", "[]"]


def test_staleness_follows_the_sources_content(tmp_path: Path) -> None:
    pkg = tmp_path / "p"
    pkg.mkdir()
    (pkg / "a.py").write_text("A = 1\n")
    (pkg / "b.py").write_text("B = 1\n")
    assert not native.stale(pkg, ("a", "b"))  # nothing compiled: nothing can be stale
    (pkg / f"a{SUFFIX}").write_bytes(b"")
    assert native.stale(pkg, ("a", "b"))  # compiled, but no record of what from
    native.write_manifest(pkg, ("a", "b"))
    assert not native.stale(pkg, ("a", "b"))
    os.utime(pkg / "a.py")  # touched, same content: still fresh
    assert not native.stale(pkg, ("a", "b"))
    (pkg / "a.py").write_text("A = 2\n")
    assert native.stale(pkg, ("a", "b"))
    native.write_manifest(pkg, ("a", "b"))
    (pkg / native.MANIFEST).write_text("[]")
    assert native.stale(pkg, ("a", "b"))  # an unreadable record is no record
