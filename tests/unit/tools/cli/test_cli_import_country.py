"""`childreg node import --country`: a department checks its file against its own country's
code lists before anything is sent.

A Kazakh file passes the check with `--country kz` and is refused, naming the district on
each line, against the default Azerbaijan profile; an unknown country names --country.
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from childreg.errors import InvalidInput
from tools.cli.main import app
from tools.clients.client import CliError

ENDPOINT = ["--node", "127.0.0.1:1", "--identity", "."]  # never contacted with --check-only


def a_kazakh_file(tmp_path: Path) -> Path:
    """One synthetic Kazakh department's CSV."""
    result = CliRunner().invoke(
        app, ["synth", "--country", "kz", "--departments", "20", "--out", str(tmp_path / "s"),
              "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return min((tmp_path / "s").glob("*.csv"), key=lambda p: p.stat().st_size)


def test_a_kazakh_file_is_checked_against_the_kazakh_profile(tmp_path: Path) -> None:
    """--country kz accepts every row; the default (az) refuses them naming the district."""
    csv = a_kazakh_file(tmp_path)
    run = CliRunner()
    ok = run.invoke(app, ["node", "import", str(csv), *ENDPOINT, "--check-only",
                          "--country", "kz", "--json"])  # fmt: skip
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["valid_rows"] > 0
    refused = run.invoke(app, ["node", "import", str(csv), *ENDPOINT, "--check-only"])
    assert isinstance(refused.exception, CliError)
    assert {v.field for v in refused.exception.violations} == {"district"}


def test_an_unknown_country_is_refused_naming_the_option(tmp_path: Path) -> None:
    """--country xx is refused as invalid input naming country."""
    csv = tmp_path / "one.csv"
    csv.write_text("child_id\n")
    result = CliRunner().invoke(
        app, ["node", "import", str(csv), *ENDPOINT, "--check-only", "--country", "xx"]
    )
    assert isinstance(result.exception, InvalidInput)
    assert [v.field for v in result.exception.violations] == ["country"]
