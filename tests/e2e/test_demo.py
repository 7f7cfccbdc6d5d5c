"""`childreg demo` end to end: real processes, real TLS, a privacy-protected national table."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from childreg import codes, profile
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


def test_demo_publishes_the_noisy_table_with_margins(tmp_path: Path) -> None:
    """The default demo publishes the table by form of education with its privacy
    statement and margins, near the seed figures; every export is written; and no private
    key or KEK appears in any log or in the command's output."""
    work = tmp_path / "work"
    result = cli(
        "demo", "--json", "--out", str(tmp_path / "out"), "--workdir", str(work), timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(result.stdout)  # stdout carries only the JSON
    assert data["privacy"]["rho"] == "1/32"
    assert data["privacy"]["snapshot_rho"] == "1/4"
    # Secure aggregation: 14 noise shares of σ²/(t−1) each (t = 12 of 14 may finish a
    # round, with the default 2 tolerated dropouts), the nation only.
    assert data["privacy"]["mechanism"] == "discrete_gaussian/zcdp/secure-aggregation"
    assert data["privacy"]["participants"] == 14
    assert data["privacy"]["colluders"] == 1
    assert data["privacy"]["share_sigma_squared"] == "16/11"
    assert data["missing_departments"] == []
    nation = data["areas"][0]
    assert nation["area"] == "national"
    assert len(nation["departments"]) == 14
    assert len(data["areas"]) == 1  # no department's or region's table is unmasked
    by_form = {c["education_form"]: c for c in nation["cells"]}
    assert set(by_form) == set(codes.EDUCATION_FORMS)
    comparison = {c["name"]: c for c in data["comparison"]}
    assert set(comparison) == set(SEED_FORM_COUNTS) | set(SEED_TOTALS)
    for name, figure in SEED_FORM_COUNTS.items():
        cell = by_form[name]
        assert cell["margin"] == 9  # 1.96 × 4 × √(14/11), rounded up (stage 1: 30)
        # Each within its margin with probability ≈ 95 %; within twice it, ≈ 1 - 6e-5.
        assert abs(cell["value"] - figure) <= 2 * cell["margin"], name
        assert comparison[name]["within_margin"] == (abs(cell["value"] - figure) <= 9)
    assert data["imported"] == sum(SEED_FORM_COUNTS.values())
    out = tmp_path / "out"
    written = json.loads((out / "national_table.json").read_text())
    assert written["areas"] == data["areas"]
    csv_lines = (out / "national_table.csv").read_text().splitlines()
    assert csv_lines[0] == "area,education_form,value,margin_95,confidential"
    assert (out / "national_table.png").read_bytes().startswith(b"\x89PNG")
    assert (out / "national_table.sdmx.csv").read_text().startswith("STRUCTURE,")
    assert b"GenericData" in (out / "national_table.xml").read_bytes()
    secrets = key_material(work)
    assert len(secrets) > 14 * 2  # every node's key and KEK, and more, were found
    logs = [p.read_bytes() for p in work.rglob("*.log")]
    assert len(logs) == 15  # 14 nodes and the coordinator
    assert all(b'"event": "rpc"' in log for log in logs)  # JSON log lines, one per RPC
    for text in [*logs, result.stdout.encode(), result.stderr.encode()]:
        for secret in secrets:
            assert secret not in text
    authority_file = work / "federation" / "authority" / "authority.key"
    authority_key = authority_file.read_bytes().strip().split(b":")[-1]  # the base64 seed
    for text in [*logs, result.stdout.encode(), result.stderr.encode()]:
        assert authority_key not in text


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
    assert data["reference"] is None
    assert data["comparison"] == []
    assert len(data["areas"][0]["departments"]) == 3


def test_demo_runs_a_kazakh_federation(tmp_path: Path) -> None:
    """`demo --country kz` runs a Kazakh federation (its profile signed and installed at
    every party) end to end and publishes the national table over Kazakh departments."""
    result = cli(
        "demo", "--country", "kz", "--departments", "3", "--json",
        "--out", str(tmp_path / "out"), "--workdir", str(tmp_path / "work"), timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(result.stdout)
    nation = data["areas"][0]
    assert nation["area"] == "national"
    assert len(nation["departments"]) == 3
    assert data["missing_departments"] == []
    kz = profile.embedded("kz")
    with profile.installed(kz):
        kz_districts = set(codes.districts())
    configs = list((tmp_path / "work").rglob("node.toml"))
    assert len(configs) == 3
    for config in configs:
        districts = tomllib.loads(config.read_text())["districts"]
        assert districts
        assert set(districts) <= kz_districts
    assert data["imported"] > 0
    assert any(c["value"] for c in nation["cells"] if c["value"] is not None)
