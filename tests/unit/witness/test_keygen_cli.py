"""`childreg audit witness keygen`: the verifier key childreg pins, and the C2SP form.

Both keys name the same Ed25519 public key; the C2SP one is a cosigner vkey (type 0x04)
that other tlog-cosignature/v1 implementations read.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from typer.testing import CliRunner

from childreg.audit.note import NoteVerifier
from tools.cli.main import app


def test_keygen_gives_both_forms_of_one_key(tmp_path: Path) -> None:
    """--json prints the pinned verifier key and the C2SP cosigner key of the same key."""
    result = CliRunner().invoke(
        app, ["audit", "witness", "keygen", "--out", str(tmp_path / "w.key"),
              "--name", "witness.test", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    keys = json.loads(result.stdout)
    ours = NoteVerifier.from_key_string(keys["verifier_key"])
    c2sp = keys["c2sp_cosigner_key"]
    name, _, blob = c2sp.split("+", 2)
    raw = base64.b64decode(blob)
    assert (name, raw[0], raw[1:]) == ("witness.test", 0x04, ours.public_key)
    assert NoteVerifier.from_key_string(c2sp).public_key == ours.public_key
