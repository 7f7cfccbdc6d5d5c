"""The house rules of docs/design/architecture.md, checked on the source tree itself."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: package -> packages it must never import
FORBIDDEN = {
    "node": {"coordinator", "witness", "tools"},
    "coordinator": {"node", "witness", "tools"},
    "witness": {"node", "coordinator", "tools"},
    "childreg": {"node", "coordinator", "witness", "tools"},
}
#: Domain code: sees no protobuf and no gRPC (front doors convert; docs/design/architecture.md).
DOMAIN = (
    "node/records",
    "node/statistics",
    "node/consent",
    "node/receipts",
    "node/audit",
    "node/crypto",
    "node/store",
    "coordinator/publication",
)
#: What the command line may import from a party: its composition root and configuration.
PARTY_ENTRY_POINTS = frozenset(
    f"{party}.{module}"
    for party in ("node", "coordinator", "witness")
    for module in ("server", "config")
)


def imported_modules(path: Path) -> set[str]:
    """Every absolute module name a file imports (``from a.b import c`` gives a.b and a.b.c)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            found |= {a.name for a in n.names}
        elif isinstance(n, ast.ImportFrom) and n.module and n.level == 0:
            found.add(n.module)
            found |= {f"{n.module}.{a.name}" for a in n.names}
    return found


def imported_top_levels(path: Path) -> set[str]:
    """The top-level packages a file imports."""
    return {name.split(".")[0] for name in imported_modules(path)}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_packages_respect_import_boundaries(package: str) -> None:
    """node, coordinator and witness never import each other; childreg imports none of them."""
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
    f.write_text("import coordinator.server\nfrom node.records.registry import Registry\n")
    assert imported_top_levels(f) == {"coordinator", "node"}


@pytest.mark.parametrize("package", DOMAIN)
def test_domain_packages_see_no_protobuf_and_no_grpc(package: str) -> None:
    """Domain packages import neither the generated childreg.v1 stubs nor grpc."""
    files = list((ROOT / package).rglob("*.py"))
    assert files, f"no sources found under {package}/"
    offenders = {
        str(f.relative_to(ROOT)): sorted(
            m for m in imported_modules(f) if m.startswith(("childreg.v1", "grpc"))
        )
        for f in files
    }
    assert {f: ms for f, ms in offenders.items() if ms} == {}


def test_the_cli_imports_only_entry_points_of_the_parties() -> None:
    """tools/cli/ takes from node, coordinator and witness only their server and config."""
    offenders = {}
    for f in (ROOT / "tools" / "cli").rglob("*.py"):
        internal = {
            m
            for m in imported_modules(f)
            if m.split(".")[0] in {"node", "coordinator", "witness"}
            and ".".join(m.split(".")[:2]) not in PARTY_ENTRY_POINTS
        }
        if internal:
            offenders[str(f.relative_to(ROOT))] = sorted(internal)
    assert offenders == {}


def test_the_domain_check_detects_protobuf(tmp_path: Path) -> None:
    """The module scanner names generated stubs and grpc imports (so the rule can fail)."""
    f = tmp_path / "m.py"
    f.write_text("import grpc\nfrom childreg.v1 import records_pb2 as pb\n")
    assert {"grpc", "childreg.v1", "childreg.v1.records_pb2"} <= imported_modules(f)


def test_no_module_refers_to_design_notes_outside_the_repository() -> None:
    """Code and docs cite docs/design/, never the ../shared folder a clone does not have."""
    needle = re.compile(r"\.\./shared|shared/design")
    hits = [
        str(p.relative_to(ROOT))
        for p in tracked_files()
        if p.is_file()
        and p.suffix in {".py", ".md", ".toml", ".yaml"}
        and "tests" not in p.relative_to(ROOT).parts
        and needle.search(p.read_text(encoding="utf-8", errors="ignore"))
    ]
    assert hits == []


def tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    return [ROOT / line for line in out.stdout.splitlines() if line]


def test_no_insecure_port_outside_tests() -> None:
    """No server outside tests/ may listen without TLS."""
    needle = "add_" + "insecure_port"
    hits = [
        str(p.relative_to(ROOT))
        for p in tracked_files()
        if p.suffix == ".py"
        and p.is_file()
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
