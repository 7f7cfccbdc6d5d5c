"""The coordinator's composition root takes the witness its configuration asks for, or
refuses to start: departments' audit logs are never left unwitnessed silently."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc
import pytest

from childreg.errors import FailedPrecondition, KeyProblem
from coordinator.config import CoordinatorConfig
from coordinator.rounds.witnessing import HostedWitness
from coordinator.server import start_coordinator

FED = "test.childreg"
AUDIT_KEY = "childreg.test.childreg/alpha+01234567+AQ"  # only carried, never parsed here


class RecordingWitness:
    """A stand-in for the hosted witness that only records whether it was closed."""

    service_name = "childreg.v1.WitnessService"

    def __init__(self) -> None:
        self.closed = False

    def add_checkpoint(
        self, note: str, old_size: int, proof: Sequence[bytes], transitions: Sequence[str] = ()
    ) -> str:
        raise AssertionError("a coordinator that refuses to start cosigns nothing")

    def state(self, origin: str) -> str | None:
        return None

    def register(self, server: grpc.Server) -> None:
        raise AssertionError("a coordinator that refuses to start serves nothing")

    def close(self) -> None:
        self.closed = True


def config(tmp_path: Path, *, witness: bool) -> CoordinatorConfig:
    """A coordinator configuration (its files need not exist: nothing is opened)."""
    data: dict[str, Any] = {
        "federation": FED,
        "identity_dir": tmp_path / "identity",
        "denylist_file": tmp_path / "denylist.json",
        "statistics_authority_key": tmp_path / "authority.pub",
        "catalogue_file": tmp_path / "catalogue.json",
        "state_dir": tmp_path / "state",
        "aggregation": "per-department",
        "statisticians": [{"id": "alice", "rho": "1/8"}],
        "departments": [
            {"id": "alpha", "address": "n0.example:7443", "region": "baku", "audit_key": AUDIT_KEY}
        ],
    }
    if witness:
        data["witness"] = {"name": "witness.coordinator", "signing_key_file": tmp_path / "w.key"}
    return CoordinatorConfig.model_validate(data)


def test_a_witness_section_without_a_witness_refuses_to_start(tmp_path: Path) -> None:
    """With a `witness` section but no witness given, the coordinator refuses before opening
    anything, naming the section and saying how to start it with one."""
    with pytest.raises(FailedPrecondition) as caught:
        start_coordinator(config(tmp_path, witness=True))
    message = str(caught.value)
    assert "`witness` section" in message
    assert "without a witness" in message
    assert "childreg coordinator serve" in message
    assert not (tmp_path / "state").exists()


def test_a_witness_without_a_witness_section_is_refused_and_closed(tmp_path: Path) -> None:
    """A witness handed to a coordinator whose configuration has no `witness` section is
    refused (its interval is unknown) and closed, since the coordinator owns it."""
    hosted = RecordingWitness()
    as_protocol: HostedWitness = hosted  # the stand-in satisfies the protocol
    with pytest.raises(FailedPrecondition, match="no `witness` section"):
        start_coordinator(config(tmp_path, witness=False), witness=as_protocol)
    assert hosted.closed
    assert not (tmp_path / "state").exists()


def test_a_witness_is_closed_when_the_coordinator_fails_to_start(tmp_path: Path) -> None:
    """A coordinator given its witness but failing later (here: no identity to serve with)
    closes the witness it was given before the error reaches the caller."""
    hosted = RecordingWitness()
    with pytest.raises(KeyProblem, match="identity files missing"):
        start_coordinator(config(tmp_path, witness=True), witness=hosted)
    assert hosted.closed


def test_the_witnessed_logs_are_the_departments_with_an_audit_key(tmp_path: Path) -> None:
    """Only departments whose audit key is configured are witnessed, under their log origin."""
    cfg = config(tmp_path, witness=True)
    beta = cfg.departments[0].model_copy(
        update={"id": "beta", "address": "n1.example:7443", "audit_key": None}
    )
    cfg = cfg.model_copy(update={"departments": (*cfg.departments, beta)})
    assert cfg.audit_origins() == {"alpha": f"childreg.{FED}/alpha"}
    assert cfg.witnessed_logs() == {f"childreg.{FED}/alpha": AUDIT_KEY}
    assert cfg.witness_db_path == tmp_path / "state" / "witness.db"
