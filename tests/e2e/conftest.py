"""End-to-end helpers: run the real `childreg` command in a subprocess; small synthetic files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tools.dev import synth

ROOT = Path(__file__).resolve().parents[2]


def cli(
    *args: str, timeout: float = 180, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `childreg ARGS…` as a separate process from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "tools.cli.main", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def trim(src: Path, dst: Path, rows: int) -> Path:
    """Copy the header and the first ``rows`` data lines of a CSV file."""
    lines = src.read_text(encoding="utf-8").splitlines(keepends=True)
    dst.write_text("".join(lines[: rows + 1]), encoding="utf-8")
    return dst


@pytest.fixture(scope="session")
def synthetic(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[list[synth.DepartmentPlan], list[Path]]:
    """Three synthetic departments (plans and their full CSV files), made once."""
    out = tmp_path_factory.mktemp("synthetic")
    manifest = synth.generate(3, out, seed=11, academic_year="2023/24")
    plans = [
        synth.DepartmentPlan(d.id, d.name, d.region, d.districts) for d in manifest.departments
    ]
    return plans, [out / d.file for d in manifest.departments]
