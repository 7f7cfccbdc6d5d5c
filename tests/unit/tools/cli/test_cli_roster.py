"""`childreg stats roster sign|show|verify`: the authority's commands for the signed roster."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from nacl.public import PrivateKey
from nacl.signing import SigningKey
from typer.testing import CliRunner

from childreg.catalogue import generate_authority_key
from tools.cli.roster import app
from tools.clients.client import EXIT_REFUSED, EXIT_REJECTED, CliError

DEPARTMENTS = ("baku", "ganja", "shaki", "guba")


def authored(path: Path, *, colluders: int = 1, departments: tuple[str, ...] = DEPARTMENTS) -> Path:
    """A roster file as the authority writes it, with fresh public keys."""
    lines = [
        'federation = "az.childreg"',
        "version = 3",
        'first_snapshot = "2023/24"',
        'last_snapshot = "2025/26"',
        f"colluders = {colluders}",
    ]
    for d in departments:
        masking = base64.b64encode(bytes(PrivateKey.generate().public_key)).decode()
        upload = base64.b64encode(bytes(SigningKey.generate().verify_key)).decode()
        lines += [
            "[[members]]",
            f'department = "{d}"',
            f'identity = "spiffe://az.childreg/node/{d}"',
            f'masking_key = "{masking}"',
            f'upload_key = "{upload}"',
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def invoke(args: list[str]) -> tuple[int, str, BaseException | None]:
    """Exit code (a CliError's, as `childreg` would exit with it), output, exception."""
    result = CliRunner().invoke(app, args)
    code = result.exception.code if isinstance(result.exception, CliError) else result.exit_code
    return code, result.output, result.exception


def test_sign_verify_and_show(tmp_path: Path) -> None:
    """A signed roster verifies; show --json gives every member, the range and c."""
    secret, public = generate_authority_key(tmp_path / "authority")
    signed = tmp_path / "roster.signed.json"
    source = authored(tmp_path / "roster.toml")
    code, output, exc = invoke(["sign", str(source), "--key", str(secret), "--out", str(signed)])
    assert code == 0, (output, exc)
    code, output, _ = invoke(["verify", str(signed), "--authority", str(public), "--json"])
    assert code == 0
    assert json.loads(output) | {"key_id": ""} == {
        "valid": True,
        "federation": "az.childreg",
        "version": 3,
        "first_snapshot": "2023/24",
        "last_snapshot": "2025/26",
        "members": 4,
        "colluders": 1,
        "key_id": "",
    }
    code, output, _ = invoke(["show", str(signed), "--authority", str(public), "--json"])
    assert code == 0
    shown = json.loads(output)
    assert [m["department"] for m in shown["members"]] == list(DEPARTMENTS)
    assert (shown["first_snapshot"], shown["last_snapshot"], shown["colluders"]) == (
        "2023/24",
        "2025/26",
        1,
    )
    assert secret.read_text(encoding="ascii").split(":")[-1].strip() not in output


def test_an_invalid_roster_is_rejected_listing_every_problem(tmp_path: Path) -> None:
    """Too many colluders and a department listed twice: exit 6, each named, nothing written."""
    secret, _ = generate_authority_key(tmp_path / "authority")
    twice = ("baku", "ganja", "shaki", "shaki")
    source = authored(tmp_path / "roster.toml", colluders=5, departments=twice)
    out = tmp_path / "roster.signed.json"
    code, _, exc = invoke(["sign", str(source), "--key", str(secret), "--out", str(out)])
    assert code == EXIT_REJECTED
    assert isinstance(exc, CliError)
    assert {v.field for v in exc.violations} >= {
        "colluders",
        "members.3.department",
        "members.3.identity",
    }
    assert not out.exists()


def test_an_altered_or_foreign_roster_is_refused(tmp_path: Path) -> None:
    """One changed byte of the signed file, or another authority's key: refused, one line."""
    secret, public = generate_authority_key(tmp_path / "authority")
    signed = tmp_path / "roster.signed.json"
    source = authored(tmp_path / "roster.toml")
    assert invoke(["sign", str(source), "--key", str(secret), "--out", str(signed)])[0] == 0
    text = signed.read_text(encoding="utf-8").replace('"colluders": 1', '"colluders": 0')
    altered = tmp_path / "altered.json"
    altered.write_text(text, encoding="utf-8")
    code, output, exc = invoke(["verify", str(altered), "--authority", str(public)])
    assert code == EXIT_REFUSED
    assert isinstance(exc, CliError)
    assert "Traceback" not in output
    _, other = generate_authority_key(tmp_path / "other")
    code, _, _ = invoke(["verify", str(signed), "--authority", str(other)])
    assert code == EXIT_REFUSED
