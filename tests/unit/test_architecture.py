"""The house rules of ARCHITECTURE.md, checked on the source tree itself."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: package -> packages it must never import
FORBIDDEN = {
    "node": {"coordinator", "tools"},
    "coordinator": {"node", "tools"},
    "childreg": {"node", "coordinator", "tools"},
}


def imported_top_levels(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            found |= {a.name.split(".")[0] for a in n.names}
        elif isinstance(n, ast.ImportFrom) and n.module and n.level == 0:
            found.add(n.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_packages_respect_import_boundaries(package: str) -> None:
    """node and coordinator never import each other; childreg imports neither nor tools."""
    files = list((ROOT / package).rglob("*.py"))
    assert files, f"no sources found under {package}/"
    offenders = {
        str(f.relative_to(ROOT)): sorted(imported_top_levels(f) & FORBIDDEN[package])
        for f in files
        if imported_top_levels(f) & FORBIDDEN[package]
    }
    assert offenders == {}


def test_the_boundary_check_detects_a_violation(tmp_path: Path) -> None:
    """The import scanner sees both import forms (so the rule test above can fail)."""
    f = tmp_path / "m.py"
    f.write_text("import coordinator.server\nfrom node.records import Registry\n")
    assert imported_top_levels(f) == {"coordinator", "node"}


def tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    return [ROOT / line for line in out.stdout.splitlines() if line]


def test_no_insecure_port_outside_tests() -> None:
    """No server outside tests/ may listen without TLS."""
    needle = "add_" + "insecure_port"
    hits = [
        str(p.relative_to(ROOT))
        for p in ROOT.rglob("*.py")
        if ".venv" not in p.parts
        and "tests" not in p.relative_to(ROOT).parts
        and needle in p.read_text(encoding="utf-8")
    ]
    assert hits == []


def test_no_private_key_is_tracked() -> None:
    """No committed file outside tests/ holds a PEM private key."""
    pattern = re.compile(r"BEGIN (EC |RSA |OPENSSH )?PRIVATE KEY")
    hits = [
        str(p.relative_to(ROOT))
        for p in tracked_files()
        if p.is_file()
        and "tests" not in p.relative_to(ROOT).parts
        and pattern.search(p.read_text(encoding="utf-8", errors="ignore"))
    ]
    assert hits == []
