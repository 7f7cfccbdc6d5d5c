"""Rotating a node's audit key with a witness and an auditor that pinned the old key: the
witness keeps cosigning (no evidence), and `audit verify` with the old pin and its saved
state verifies the log across the rotation, and an evidence bundle made after it verifies
offline with the old pin. Real node and witness over mutual TLS."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from structlog.testing import capture_logs

from childreg.audit.note import NoteVerifier
from childreg.audit.verify import verify_bundle
from childreg.pki import CertificateAuthority
from childreg.rpc import secure_channel
from coordinator.rounds.witnessing import PullWitness
from node.audit.actor import Actor
from node.audit.log import AuditLog
from node.crypto.keys import Keyring
from node.key_rotation import rotate_signing_key, with_signing
from node.store.memory import MemoryStore
from tests.conftest import FEDERATION, IssueFn, make_keyring, tls
from tests.integration.test_audit_witness_race import (
    NODE_NAME,
    Federation,
    checkpointer,
    serve,
    start_federation,
    stop_federation,
    witnessed_size,
)
from tools.clients import audit_bundle, auditor
from tools.clients.client import Endpoint
from witness.config import generate_witness_key
from witness.server import embedded_witness

DEPARTMENT = "alpha"


@dataclass
class Rotating:
    """A node's store and keyring, the federation serving its log, and the auditor's pin."""

    store: MemoryStore
    keyring: Keyring
    fed: Federation
    pinned: NoteVerifier
    issue: IssueFn

    def log(self) -> AuditLog:
        """The node's log signed with the audit key of the generation in use."""
        keyring = with_signing(self.keyring, self.store)
        return AuditLog(
            self.store, keyring.audit_signing_seed(), federation=FEDERATION, department=DEPARTMENT
        )

    def rotate(self) -> None:
        """`rotate-key audit` by the operator, then :meth:`reserve`."""
        rotate_signing_key(
            self.store,
            self.keyring,
            "audit",
            federation=FEDERATION,
            department=DEPARTMENT,
            actor=Actor.operator(DEPARTMENT, "ops-1"),
        )
        self.reserve()

    def reserve(self) -> None:
        """Restart the node's audit service with the log of the key in use (as a node
        restarted after `rotate-key` does)."""
        self.fed.node.stop()
        log = self.log()
        self.fed.node = serve(log, self.store, self.issue, self.fed.tmp_path / f"node-{log.size}")
        self.fed.endpoint = Endpoint(
            self.fed.node.address, self.fed.endpoint.identity_dir, NODE_NAME, 10.0
        )


@pytest.fixture
def rotating(issue: IssueFn, ca: CertificateAuthority, tmp_path: Path) -> Iterator[Rotating]:
    """A node whose log key comes from its keyring, and a witness pinned to that key."""
    store = MemoryStore()
    keyring = make_keyring(tmp_path / "keys")
    log = AuditLog(
        store, keyring.audit_signing_seed(), federation=FEDERATION, department=DEPARTMENT
    )
    fed = start_federation(log, store, issue, ca, tmp_path)
    pinned = NoteVerifier.from_key_string(log.verifier_key)
    yield Rotating(store, keyring, fed, pinned, issue)
    stop_federation(fed)


def test_the_witness_and_a_pinned_auditor_follow_a_rotated_audit_key(
    rotating: Rotating, tmp_path: Path
) -> None:
    """Before and after an audit-key rotation the witness cosigns the node's checkpoints
    (keeping no evidence), an auditor pinned to the old key, with its saved state from
    before, verifies the whole log and what the witness holds after it, and a bundle made
    after it verifies offline with the old key."""
    fed, state = rotating.fed, tmp_path / "auditor-state"
    for _ in range(3):
        rotating.log().append(actor="department-operator/alpha.ops-1", action="audit.read")
    with capture_logs():
        checkpointer(fed, rotating.log()).run_once()
        before = witnessed_size(fed)
        first = auditor.fetch_verified(fed.endpoint, rotating.pinned, state, [fed.witness_ref])
        assert first.report.ok, first.report.problems

        rotating.rotate()
        new_key = NoteVerifier.from_key_string(rotating.log().verifier_key)
        assert new_key != rotating.pinned
        checkpointer(fed, rotating.log()).run_once()
        assert witnessed_size(fed) > before
        assert fed.witness.witness.evidence() == []

        after = auditor.fetch_verified(fed.endpoint, rotating.pinned, state, [fed.witness_ref])
        bundle = tmp_path / "bundle.json"
        audit_bundle.write_bundle(fed.endpoint, rotating.pinned, None, [0, 4], bundle)
    assert after.report.ok, after.report.problems
    offline = verify_bundle(bundle.read_text(), rotating.pinned)  # the old pin, offline
    assert offline.ok, offline.problems
    assert json.loads(bundle.read_text())["key_transitions"]
    assert after.previous is not None  # the state from before the rotation was checked
    assert after.report.previous_size is not None
    assert after.witnessed is not None
    assert after.witnessed.sizes


def test_the_coordinators_pulling_witness_follows_a_rotated_audit_key(
    rotating: Rotating, tmp_path: Path
) -> None:
    """The coordinator's embedded witness, pinned to the node's first key, pulls and cosigns
    the node's checkpoints before and after an audit-key rotation, reading the statements
    from LatestCheckpoint, and keeps no evidence."""
    key = tmp_path / "coordinator-witness.key"
    generate_witness_key(key, "witness.test-coordinator")
    hosted = embedded_witness(
        tmp_path / "coordinator-witness.db",
        key,
        "witness.test-coordinator",
        {rotating.pinned.name: rotating.pinned.key_string()},
    )
    coordinator = rotating.issue("coordinator", "national")
    try:

        def channel_for(_: str) -> grpc.Channel:
            return secure_channel(rotating.fed.node.address, tls(coordinator), NODE_NAME)

        pull = PullWitness(hosted, channel_for, {DEPARTMENT: rotating.pinned.name}, 60.0)
        with capture_logs():
            assert pull.run_once() == {DEPARTMENT: "cosigned"}
            rotating.rotate()
            assert pull.run_once() == {DEPARTMENT: "cosigned"}
        assert hosted.evidence() == []
    finally:
        hosted.close()
