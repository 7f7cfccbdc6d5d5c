"""The import's compiled modules: built by make, equal to their source, never stale."""

from __future__ import annotations

import importlib.machinery
import json
import os
import shutil
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
HOT = "native.Group(('hot',), 'grp__mypyc', ('dep.py',))"


def _package(root: Path, *, manifest: bool, edit: str | None = None) -> Path:
    """Package ``hot_pkg``: module ``hot`` in source, a "compiled" ``hot`` and group library
    that are not loadable extensions at all (so importing them fails unless the guard sets
    them aside), and ``dep.py`` beside the package, which the build depends on."""
    pkg = root / "hot_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "from pathlib import Path\nfrom node import native\n"
        f"FROM_SOURCE = native.guard(__name__, Path(__file__).parent, {HOT})\n"
    )
    (pkg / "hot.py").write_text("WHERE = 'source'\n")
    (root / "dep.py").write_text("LIMIT = 3\n")
    for name in ("hot", "grp__mypyc"):
        (pkg / f"{name}{SUFFIX}").write_bytes(b"not an extension module")
    if manifest:
        group = native.Group(("hot",), "grp__mypyc", ("dep.py",))
        native.write_manifest(pkg, native.manifest_for(pkg, group))
    if edit is not None:
        target = root / edit
        target.write_text(target.read_text() + "# edited after the build\n")
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


@pytest.mark.parametrize(
    ("manifest", "edit"),
    [(True, "hot_pkg/hot.py"), (True, "dep.py"), (False, None)],
    ids=["source-edited", "dependency-edited", "no-record"],
)
def test_a_stale_build_is_set_aside_for_the_source(
    tmp_path: Path, manifest: bool, edit: str | None
) -> None:
    _package(tmp_path, manifest=manifest, edit=edit)
    done = _import_hot(tmp_path, **{native.PURE_ENV: ""})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", "True source", "[]"]


def test_childreg_pure_sets_a_fresh_build_aside(tmp_path: Path) -> None:
    _package(tmp_path, manifest=True)
    done = _import_hot(tmp_path, **{native.PURE_ENV: "1"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", "True source", "[]"]


def test_staleness_follows_the_files_the_build_read(tmp_path: Path) -> None:
    pkg = tmp_path / "p"
    pkg.mkdir()
    (pkg / "a.py").write_text("A = 1\n")
    (pkg / "b.py").write_text("B = 1\n")
    (tmp_path / "dep.py").write_text("D = 1\n")
    group = native.Group(("a", "b"), "lib__mypyc", ("dep.py",))
    assert not native.stale(pkg, group)  # nothing compiled: nothing can be stale
    (pkg / f"a{SUFFIX}").write_bytes(b"")
    native.write_manifest(pkg, native.manifest_for(pkg, group))
    assert native.stale(pkg, group)  # b and the group's library are missing
    (pkg / f"b{SUFFIX}").write_bytes(b"")
    assert native.stale(pkg, group)  # the library is still missing
    (pkg / f"lib__mypyc{SUFFIX}").write_bytes(b"")
    assert not native.stale(pkg, group)
    os.utime(pkg / "a.py")  # touched, same content: still fresh
    assert not native.stale(pkg, group)
    (pkg / "a.py").write_text("A = 2\n")
    assert native.stale(pkg, group)
    native.write_manifest(pkg, native.manifest_for(pkg, group))
    (tmp_path / "dep.py").unlink()
    assert native.stale(pkg, group)  # a file the build read is gone
    (tmp_path / "dep.py").write_text("D = 1\n")
    assert not native.stale(pkg, group)
    (pkg / native.MANIFEST).write_text("[]")
    assert native.stale(pkg, group)  # an unreadable record is no record


def test_a_failed_build_leaves_no_record(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("A = 1\n")
    group = native.Group(("a",), None, ())
    native.write_manifest(tmp_path, {"a": "an earlier build"})

    def fails() -> None:
        raise RuntimeError("the C compiler failed")

    with pytest.raises(RuntimeError):
        native.record_build(tmp_path, fails, group)
    assert not (tmp_path / native.MANIFEST).exists()
    native.record_build(tmp_path, lambda: None, group)
    assert json.loads((tmp_path / native.MANIFEST).read_text()) == native.manifest_for(
        tmp_path, group
    )


def test_make_rebuilds_when_any_file_the_build_read_changes() -> None:
    makefile = (REPO / "Makefile").read_text()
    listed = makefile.split("NATIVE_SOURCES :=", 1)[1].split("\n\n", 1)[0]
    for path in [*(f"node/{name}.py" for name in native.COMPILED), *native.DEPENDS]:
        assert path in listed.split(), path


def test_a_build_that_compiles_nothing_leaves_the_record_alone(tmp_path: Path) -> None:
    # With CHILDREG_PURE=1 (make's first step) nothing is compiled; rewriting the record
    # then would vouch for whatever compiled files an older build left beside the sources.
    tree = tmp_path / "tree"
    shutil.copytree(REPO, tree, ignore=shutil.ignore_patterns(".venv", ".git", "build", "*.so"))
    (tree / "node" / native.MANIFEST).write_text('{"records": "an older build"}\n')
    done = subprocess.run(
        [sys.executable, "setup.py", "--quiet", "build_ext", "--inplace"],
        cwd=tree,
        env={**os.environ, native.PURE_ENV: "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (tree / "node" / native.MANIFEST).read_text() == '{"records": "an older build"}\n'
