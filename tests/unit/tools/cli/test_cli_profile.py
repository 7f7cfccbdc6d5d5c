"""`childreg stats profile export | sign | show`: the authority's signed country profile.

A shipped country exported for a federation signs and verifies; the signed file is what a
node's configuration can name; a file altered after signing, or a source that is not a
valid profile, is refused with a clear error and nothing written.
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from childreg import profile
from childreg.catalogue import load_verify_key
from tools.cli.main import app
from tools.clients.client import EXIT_REFUSED, EXIT_REJECTED, CliError


def authority(tmp_path: Path) -> Path:
    """A fresh authority key pair's directory."""
    result = CliRunner().invoke(
        app, ["stats", "catalogue", "authority-init", "--out", str(tmp_path / "a")]
    )
    assert result.exit_code == 0, result.output
    return tmp_path / "a"


def test_an_exported_profile_signs_and_verifies(tmp_path: Path) -> None:
    """export --country kz --federation, sign, show --json: the node's verifier accepts it."""
    keys, run = authority(tmp_path), CliRunner()
    src, signed = tmp_path / "p.json", tmp_path / "p.signed.json"
    exported = run.invoke(app, ["stats", "profile", "export", "--country", "kz",
                                "--federation", "kz.example", "--out", str(src)])  # fmt: skip
    assert exported.exit_code == 0, exported.output
    result = run.invoke(app, ["stats", "profile", "sign", str(src), "--key",
                              str(keys / "authority.key"), "--out", str(signed)])  # fmt: skip
    assert result.exit_code == 0, result.output
    verified = profile.read_signed_profile(
        signed, load_verify_key(keys / "authority.pub"), federation="kz.example"
    )
    assert verified.districts() == profile.embedded("kz").districts()
    shown = run.invoke(app, ["stats", "profile", "show", str(signed), "--language", "ru",
                             "--authority", str(keys / "authority.pub"), "--json"])  # fmt: skip
    summary = json.loads(shown.stdout)
    assert (summary["federation"], len(summary["regions"])) == ("kz.example", 20)
    astana = next(r for r in summary["regions"] if r["code"] == "astana")
    assert astana["name"] == "Астана"


def test_a_profile_altered_after_signing_is_refused(tmp_path: Path) -> None:
    """Changing a signed profile's content makes show exit 7 naming the signature."""
    keys, run = authority(tmp_path), CliRunner()
    src, signed = tmp_path / "p.json", tmp_path / "p.signed.json"
    run.invoke(app, ["stats", "profile", "export", "--country", "az", "--out", str(src)])
    run.invoke(app, ["stats", "profile", "sign", str(src), "--key", str(keys / "authority.key"),
                     "--out", str(signed)])  # fmt: skip
    signed.write_text(signed.read_text().replace('"version": 1', '"version": 2'))
    result = run.invoke(app, ["stats", "profile", "show", str(signed), "--authority",
                              str(keys / "authority.pub")])  # fmt: skip
    assert isinstance(result.exception, CliError)
    assert result.exception.code == EXIT_REFUSED
    assert "signature" in str(result.exception)


def test_an_invalid_source_is_refused_and_nothing_written(tmp_path: Path) -> None:
    """A source with a repeated unit code exits 6 naming the problem; no signed file."""
    keys, run = authority(tmp_path), CliRunner()
    src, signed = tmp_path / "p.json", tmp_path / "p.signed.json"
    run.invoke(app, ["stats", "profile", "export", "--country", "az", "--out", str(src)])
    data = json.loads(src.read_text())
    data["regions"][1]["districts"].append(data["regions"][0]["districts"][0])
    src.write_text(json.dumps(data))
    result = run.invoke(app, ["stats", "profile", "sign", str(src), "--key",
                              str(keys / "authority.key"), "--out", str(signed)])  # fmt: skip
    assert isinstance(result.exception, CliError)
    assert result.exception.code == EXIT_REJECTED
    assert "unique" in " ".join(v.problem for v in result.exception.violations)
    assert not signed.exists()
