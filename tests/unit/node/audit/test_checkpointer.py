"""The node's checkpoint publisher: signs when the log grows, fails closed without witnesses."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from childreg.errors import FailedPrecondition
from childreg.pki import IdentityFiles
from node.audit.checkpointer import Checkpointer
from node.audit.log import AuditLog
from node.rpc.witnesses import GrpcWitnesses
from node.store.memory import MemoryStore


def checkpointer(tmp_path: Path) -> Checkpointer:
    """A checkpointer over an empty in-memory log, with no witnesses."""
    audit = AuditLog(MemoryStore(), bytes(32), federation="test.childreg", department="alpha")
    client = GrpcWitnesses(IdentityFiles(tmp_path))
    return Checkpointer(audit, client, witnesses=(), interval=60)


def test_run_once_signs_the_current_size(tmp_path: Path) -> None:
    """A checkpoint of the current size, the same note while the log does not grow."""
    cp = checkpointer(tmp_path)
    cp.audit.append(actor="x", action="child.read")
    first = cp.run_once()
    assert first.splitlines()[1] == "1"
    assert cp.run_once() == first
    cp.audit.append(actor="x", action="child.read")
    assert cp.run_once().splitlines()[1] == "2"


def test_disclosures_fail_closed_without_a_recent_witness(tmp_path: Path) -> None:
    """Never witnessed, or witnessed too long ago: refused; recently: allowed."""
    cp = checkpointer(tmp_path)
    with pytest.raises(FailedPrecondition, match="not been witnessed recently"):
        cp.require_recent_witness(3600)
    cp.witnessed_at["w"] = time.monotonic() - 120
    with pytest.raises(FailedPrecondition):
        cp.require_recent_witness(60)
    cp.require_recent_witness(300)
