"""The witness's configuration and key file: private keys, pinned node keys, the example."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from childreg.config import load_config
from childreg.errors import AlreadyExists, KeyProblem
from tests.unit.witness.logs import NODE, ORIGIN, OTHER, signer
from witness.config import (
    WitnessConfig,
    WitnessedNode,
    generate_witness_key,
    load_witness_signer,
)

ROOT = Path(__file__).resolve().parents[3]


def test_witness_key_file_is_private_and_never_overwritten(tmp_path: Path) -> None:
    """keygen writes 0600 and refuses to replace a key; loading checks mode and name."""
    path = tmp_path / "witness.key"
    verifier = generate_witness_key(path, "witness.test")
    assert os.stat(path).st_mode & 0o777 == 0o600
    signer_ = load_witness_signer(path, "witness.test")
    assert signer_.verifier().key_string() == verifier
    with pytest.raises(AlreadyExists):
        generate_witness_key(path, "witness.test")
    with pytest.raises(KeyProblem, match="named"):
        load_witness_signer(path, "witness.other")
    path.chmod(0o644)
    with pytest.raises(KeyProblem, match="other users"):
        load_witness_signer(path, "witness.test")
    with pytest.raises(KeyProblem):
        load_witness_signer(tmp_path / "absent.key", "witness.test")


def test_pinned_node_keys_are_checked() -> None:
    """A node's pinned key must parse and be named after its origin; origins are childreg's."""
    WitnessedNode(origin=ORIGIN, verifier_key=NODE.verifier().key_string())
    with pytest.raises(ValueError, match="named"):
        WitnessedNode(origin=OTHER, verifier_key=NODE.verifier().key_string())
    with pytest.raises(ValueError, match="verifier_key"):
        WitnessedNode(origin=ORIGIN, verifier_key="nonsense")
    with pytest.raises(ValueError, match="origin"):
        WitnessedNode(origin="alpha", verifier_key=signer("alpha").verifier().key_string())


def test_example_config_is_valid() -> None:
    """deploy/config/witness.example.toml validates."""
    cfg = load_config(WitnessConfig, ROOT / "deploy" / "config" / "witness.example.toml")
    assert cfg.name == "witness.az-ombudsman"
    assert [n.origin for n in cfg.nodes] == [
        "childreg.az.childreg/baku",
        "childreg.az.childreg/nakhchivan",
    ]
    assert cfg.db_path.name == "witness.db"
