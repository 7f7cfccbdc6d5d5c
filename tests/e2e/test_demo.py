"""`childreg demo` end to end: real processes, real TLS, the published figures reproduced."""

from __future__ import annotations

import json
from pathlib import Path

from childreg.seed import SEED_FORM_COUNTS, SEED_TOTALS
from tests.e2e.conftest import cli, trim


def key_material(root: Path) -> list[bytes]:
    """Every secret under the federation: each private key's base64 body lines, each KEK."""
    secrets: list[bytes] = []
    for key in [*root.rglob("tls.key"), *root.rglob("ca.key")]:
        body = [ln for ln in key.read_bytes().splitlines() if ln and not ln.startswith(b"-----")]
        secrets += [ln for ln in body if len(ln) >= 16]
    secrets += [k.read_bytes().strip() for k in root.rglob("*.kek")]
    return secrets


def test_demo_reproduces_the_published_figures(tmp_path: Path) -> None:
    """The default demo's table equals the seed figures for the nine forms and two totals,
    and no private key or KEK appears in any log or in the command's output."""
    work = tmp_path / "work"
    result = cli(
        "demo", "--json", "--out", str(tmp_path / "out"), "--workdir", str(work), timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(result.stdout)  # stdout carries only the JSON
    by_form = {c["education_form"]: c["count"] for c in data["cells"]}
    assert {f: by_form[f] for f in SEED_FORM_COUNTS} == SEED_FORM_COUNTS
    assert data["totals"] == SEED_TOTALS
    assert by_form["day_care_centre"] == 0
    assert by_form["not_enrolled"] == 0
    assert data["complete"] is True
    assert data["missing_departments"] == []
    assert len(data["answered_departments"]) == 14
    assert data["matches_reference"] is True
    assert data["imported"] == sum(SEED_FORM_COUNTS.values())
    written = json.loads((tmp_path / "out" / "national_table.json").read_text())
    assert written["cells"] == data["cells"]
    csv_lines = (tmp_path / "out" / "national_table.csv").read_text().splitlines()
    assert csv_lines[0] == "education_form,count"
    assert "preschool,509" in csv_lines
    secrets = key_material(work)
    assert len(secrets) > 14 * 2  # every node's key and KEK, and more, were found
    logs = [p.read_bytes() for p in work.rglob("*.log")]
    assert len(logs) == 15  # 14 nodes and the coordinator
    assert all(b'"event": "rpc"' in log for log in logs)  # JSON log lines, one per RPC
    for text in [*logs, result.stdout.encode(), result.stderr.encode()]:
        for secret in secrets:
            assert secret not in text


def test_demo_from_dir_uses_the_given_files(
    tmp_path: Path, synthetic: tuple[list[object], list[Path]]
) -> None:
    """--from-dir imports exactly the given per-department files (no synthetic data added)."""

    _, files = synthetic
    src = tmp_path / "in"
    src.mkdir()
    for i, f in enumerate(files):
        trim(f, src / f"department-{i}.csv", 40 + i)
    result = cli("demo", "--json", "--from-dir", str(src), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(result.stdout)
    assert data["imported"] == 40 + 41 + 42
    assert sum(c["count"] for c in data["cells"]) == 123
    assert data["reference"] is None
    assert len(data["answered_departments"]) == 3
