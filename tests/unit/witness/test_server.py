"""The witness's composition root: the witness a host embeds, and the evidence the CLI reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from childreg.audit.checkpoint import open_checkpoint
from childreg.errors import FailedPrecondition, KeyProblem, NotFound, PermissionDenied
from tests.unit.witness.logs import FORK, LOG, NODE, ORIGIN, OTHER, note_at, signer
from tools.cli.witness import app as witness_cli
from witness.config import (
    WitnessConfig,
    WitnessedNode,
    generate_witness_key,
    load_witness_signer,
)
from witness.cosigning import Witness
from witness.server import embedded_witness, read_evidence
from witness.store import WitnessStore


def test_cli_keygen_and_evidence(tmp_path: Path) -> None:
    """`keygen` prints the verifier key; `evidence --json` lists what the store kept."""
    runner = CliRunner()
    key = tmp_path / "w.key"
    result = runner.invoke(witness_cli, ["keygen", "--out", str(key), "--name", "witness.cli"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == load_witness_signer(key, "witness.cli").verifier().key_string()

    config = tmp_path / "witness.toml"
    config.write_text(
        f'name = "witness.cli"\nsigning_key_file = "w.key"\nstate_dir = "state"\n'
        f'identity_dir = "id"\ndenylist_file = "deny.json"\n'
        f'statistics_authority_key = "authority.pub"\n'
        f'[[nodes]]\norigin = "{ORIGIN}"\nverifier_key = "{NODE.verifier().key_string()}"\n',
        encoding="utf-8",
    )
    store = WitnessStore(tmp_path / "state" / "witness.db")
    w = Witness(store, load_witness_signer(key, "witness.cli"), {ORIGIN: NODE.verifier()})
    w.add_checkpoint(note_at(LOG, 3), 0, [])
    with pytest.raises(FailedPrecondition):
        w.add_checkpoint(note_at(FORK, 3), 3, [])
    store.close()
    result = runner.invoke(witness_cli, ["evidence", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    [item] = json.loads(result.stdout)
    assert (item["kind"], item["origin"], item["submitted_note"]) == (
        "equivocation",
        ORIGIN,
        note_at(FORK, 3),
    )
    table = runner.invoke(witness_cli, ["evidence", "--config", str(config)])
    assert table.exit_code == 0, table.output
    assert "equivocation" in table.stdout


def test_the_embedded_witness_cosigns_the_pinned_logs_and_names_its_service(
    tmp_path: Path,
) -> None:
    """A host's witness loads its key, cosigns only the logs it is given, keeps its state in
    its own database and names the gRPC service a host reports the health of."""
    key = tmp_path / "witness.key"
    generate_witness_key(key, "witness.host")
    db = tmp_path / "state" / "witness.db"
    hosted = embedded_witness(db, key, "witness.host", {ORIGIN: NODE.verifier().key_string()})
    try:
        assert hosted.service_name == "childreg.v1.WitnessService"
        cosigned = hosted.add_checkpoint(note_at(LOG, 4), 0, [])
        _, opened = open_checkpoint(cosigned, [NODE.verifier(), hosted.verifier], origin=ORIGIN)
        assert opened.verified_by == [ORIGIN, "witness.host"]
        assert hosted.state(ORIGIN) == cosigned
        with pytest.raises(PermissionDenied, match="does not witness"):
            hosted.add_checkpoint(note_at(LOG, 2, by=signer(OTHER), origin=OTHER), 0, [])
        with pytest.raises(FailedPrecondition, match="equivocates"):
            hosted.add_checkpoint(note_at(FORK, 4), 4, [])
        assert [e.kind for e in hosted.evidence()] == ["equivocation"]
    finally:
        hosted.close()
    reopened = WitnessStore(db, readonly=True)
    try:
        assert reopened.latest(ORIGIN) is not None
    finally:
        reopened.close()


def test_the_embedded_witness_refuses_a_wrong_key_or_a_misnamed_log_key(tmp_path: Path) -> None:
    """A key named otherwise than configured is a KeyProblem, and a node's log key must be
    named after its origin, before any database is made."""
    key = tmp_path / "witness.key"
    generate_witness_key(key, "witness.host")
    db = tmp_path / "state" / "witness.db"
    with pytest.raises(KeyProblem, match="named"):
        embedded_witness(db, key, "witness.other", {ORIGIN: NODE.verifier().key_string()})
    with pytest.raises(ValueError, match="named"):
        embedded_witness(db, key, "witness.host", {OTHER: NODE.verifier().key_string()})
    assert not db.exists()


def test_reading_evidence_of_a_witness_that_never_ran_is_not_found(tmp_path: Path) -> None:
    """`evidence` on a witness without a database says there is no state, and makes none."""
    config = WitnessConfig(
        identity_dir=tmp_path / "id",
        denylist_file=tmp_path / "deny.json",
        statistics_authority_key=tmp_path / "authority.pub",
        name="witness.cli",
        signing_key_file=tmp_path / "w.key",
        state_dir=tmp_path / "state",
        nodes=(WitnessedNode(origin=ORIGIN, verifier_key=NODE.verifier().key_string()),),
    )
    with pytest.raises(NotFound, match="no witness state"):
        read_evidence(config)
    assert not config.db_path.exists()
