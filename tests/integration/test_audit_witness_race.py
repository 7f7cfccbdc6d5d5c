"""`audit verify --witness` against an honest node whose log grows while it runs: the
verify's own reads (and another auditor's) are leaves, the node checkpoints them and the
witness cosigns a larger size than the verify fetched. The verifier asks the node for a
consistency proof up to the witnessed size instead of calling that a rewrite; a node
showing another history is still caught. Real node and witness over mutual TLS."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import pytest
from structlog.testing import capture_logs

from childreg.audit.checkpoint import Checkpoint
from childreg.audit.note import NoteVerifier, note_text
from childreg.audit.verify import LOG_REWRITTEN, verify_bundle
from childreg.authz import Authorizer
from childreg.pki import CertificateAuthority, IdentityFiles
from childreg.revocation import DENYLIST_FILE
from childreg.rpc import make_server, secure_channel
from childreg.v1 import audit_pb2 as apb
from childreg.v1 import audit_pb2_grpc as apb_grpc
from node.audit.checkpointer import Checkpointer
from node.audit.log import AuditLog
from node.audit.reads import LogReads
from node.audit.service import Audited
from node.config import WitnessEndpoint
from node.crypto.keys import KekSource, Keyring, generate_key_file
from node.rpc.audit import AuditLogServicer
from node.rpc.witnesses import GrpcWitnesses
from node.store.memory import MemoryStore
from tests.conftest import FEDERATION, IssueFn, tls
from tools.clients import audit_bundle, auditor
from tools.clients.client import Endpoint
from witness.config import WitnessConfig, WitnessedNode, generate_witness_key
from witness.server import WitnessApp, start_witness

DEPARTMENT = "alpha"
NODE_NAME = f"{DEPARTMENT}.node.{FEDERATION}"
WITNESS_NAME = f"ombudsman.witness.{FEDERATION}"
RUNS = 50
READER = f"spiffe://{FEDERATION}/auditor/inspector-9"


@dataclass
class Served:
    """A node serving its audit log, and how to stop it."""

    log: AuditLog
    address: str
    server: grpc.Server

    def stop(self) -> None:
        """Stop serving at once."""
        self.server.stop(None)


def serve(log: AuditLog, store: MemoryStore, issue: IssueFn, tmp_path: Path) -> Served:
    """``log`` (kept in ``store``) behind a real node's AuditLogService (default rate
    limit), on a port chosen by the OS."""
    tmp_path.mkdir(parents=True)
    generate_key_file(tmp_path / "kek.key")
    keyring = Keyring.create(
        tmp_path / "keyring.json", KekSource.from_key_file(tmp_path / "kek.key")
    )
    reads = LogReads(Audited(store, keyring, log))
    server, port = make_server(
        partial(apb_grpc.add_AuditLogServiceServicer_to_server, AuditLogServicer(reads)),
        tls=tls(issue("node", DEPARTMENT)),
        bind="127.0.0.1:0",
        authorizer=Authorizer(FEDERATION, department=DEPARTMENT),
    )
    return Served(log, f"127.0.0.1:{port}", server)


def new_log() -> tuple[AuditLog, MemoryStore]:
    """An empty log of the department (always the same signing key), and its store."""
    store = MemoryStore()
    return AuditLog(store, bytes(32), federation=FEDERATION, department=DEPARTMENT), store


@dataclass
class Federation:
    """One node, its witness, an auditor's endpoint and the witness as the auditor pins it."""

    node: Served
    witness: WitnessApp
    endpoint: Endpoint
    witness_ref: auditor.WitnessRef
    node_files: IdentityFiles
    tmp_path: Path


def start_federation(
    log: AuditLog, store: MemoryStore, issue: IssueFn, ca: CertificateAuthority, tmp_path: Path
) -> Federation:
    """``log`` served by a node and a stand-alone witness pinned to its key, both serving;
    stop them with :func:`stop_federation`."""
    node = serve(log, store, issue, tmp_path / "node")
    files = issue("witness", "ombudsman", dns_names=(WITNESS_NAME,), ip_addresses=("127.0.0.1",))
    assert ca.directory is not None
    key = tmp_path / "witness.key"
    verifier = NoteVerifier.from_key_string(generate_witness_key(key, "witness.test-ombudsman"))
    app = start_witness(
        WitnessConfig(
            listen="127.0.0.1:0",
            identity_dir=files.directory,
            denylist_file=ca.directory / DENYLIST_FILE,
            statistics_authority_key=tmp_path / "authority.pub",  # not used by a witness
            name="witness.test-ombudsman",
            signing_key_file=key,
            state_dir=tmp_path / "state",
            nodes=(WitnessedNode(origin=log.origin, verifier_key=log.verifier_key),),
        )
    )
    inspector = issue("auditor", "inspector-1")
    ref = auditor.WitnessRef(
        Endpoint(f"127.0.0.1:{app.port}", inspector.directory, WITNESS_NAME, 10.0), verifier
    )
    endpoint = Endpoint(node.address, inspector.directory, NODE_NAME, 10.0)
    return Federation(node, app, endpoint, ref, issue("node", DEPARTMENT), tmp_path)


def stop_federation(fed: Federation) -> None:
    """Stop the node (the one serving now) and the witness."""
    fed.node.stop()
    fed.witness.stop(grace=0)


@pytest.fixture
def federation(issue: IssueFn, ca: CertificateAuthority, tmp_path: Path) -> Iterator[Federation]:
    """A node with a few leaves and a stand-alone witness of its log, both serving."""
    log, store = new_log()
    fed = start_federation(log, store, issue, ca, tmp_path)
    yield fed
    stop_federation(fed)


def checkpointer(fed: Federation, log: AuditLog) -> Checkpointer:
    """The node's checkpoint loop, giving ``log``'s checkpoints to the witness very often."""
    witness = WitnessEndpoint(
        name="ombudsman",
        address=f"127.0.0.1:{fed.witness.port}",
        server_name=WITNESS_NAME,
        verifier_key=fed.witness_ref.verifier.key_string(),
    )
    return Checkpointer(log, GrpcWitnesses(fed.node_files), (witness,), interval=0.01)


def witnessed_size(fed: Federation) -> int:
    """The size of the node's checkpoint the witness holds now (0 if none)."""
    note = fed.witness.witness.state(fed.node.log.origin)
    return 0 if note is None else Checkpoint.parse(note_text(note)).size


def keep_reading(fed: Federation, files: IdentityFiles, stop: threading.Event) -> None:
    """Another auditor's continuous audit reads (one leaf each), under the rate limit."""
    with secure_channel(fed.node.address, tls(files), NODE_NAME) as channel:
        stub = apb_grpc.AuditLogServiceStub(channel)
        while not stop.wait(0.03):
            stub.LatestCheckpoint(apb.CheckpointRequest(), timeout=10.0)


def test_an_honest_growing_log_is_never_called_rewritten(
    federation: Federation, issue: IssueFn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """50 verifies with the witness, while another auditor reads continuously and the node
    checkpoints to the witness, all verify. In each run the node also checkpoints right after
    the verify fetched (its own reads included), so the witness always holds more leaves than
    were fetched: the case once called a rewrite is run every time, not by chance."""
    fed = federation
    loop = checkpointer(fed, fed.node.log)
    fetch = auditor.fetch

    def fetch_then_witness(*args: Any, **kwargs: Any) -> auditor.Fetched:
        fetched = fetch(*args, **kwargs)
        for _ in range(20):  # the background loop may race this one; the witness decides
            loop.run_once()  # the witness cosigns the log grown by the verify's own reads
            if witnessed_size(fed) > len(fetched.leaves):
                break
        return fetched

    monkeypatch.setattr(auditor, "fetch", fetch_then_witness)
    stop = threading.Event()
    reader = threading.Thread(
        target=keep_reading, args=(fed, issue("auditor", "inspector-2"), stop), daemon=True
    )
    verifier = NoteVerifier.from_key_string(fed.node.log.verifier_key)
    ahead = 0
    with capture_logs():
        loop.run_once()
        loop.start()
        reader.start()
        try:
            for _ in range(RUNS):
                found = auditor.fetch_verified(fed.endpoint, verifier, None, [fed.witness_ref])
                assert found.report.ok, found.report.problems
                assert found.witnessed is not None
                assert found.witnessed.sizes
                ahead += max(found.witnessed.sizes) > len(found.fetched.leaves)
        finally:
            stop.set()
            loop.stop()
            reader.join(timeout=10)
    assert ahead == RUNS


def test_a_node_showing_another_history_is_still_caught(
    federation: Federation, issue: IssueFn
) -> None:
    """After the witness cosigned the honest log, a node (same key) serving a log that
    differs from leaf 0, longer than the witnessed one, cannot prove it extends it."""
    fed = federation
    honest = fed.node.log
    for i in range(5):
        honest.append(actor=READER, action="audit.read", request=bytes([i]))
    checkpointer(fed, honest).run_once()
    held = honest.size
    fed.node.stop()
    fork, fork_store = new_log()
    for i in range(held - 2):  # shorter than witnessed, so the node must prove the growth
        fork.append(actor=READER, action="audit.read", request=bytes([i]))
    forged = serve(fork, fork_store, issue, fed.tmp_path / "fork")
    try:
        endpoint = Endpoint(forged.address, fed.endpoint.identity_dir, NODE_NAME, 10.0)
        verifier = NoteVerifier.from_key_string(fork.verifier_key)
        with capture_logs():
            found = auditor.fetch_verified(endpoint, verifier, None, [fed.witness_ref])
        assert len(found.fetched.leaves) < held
        assert LOG_REWRITTEN in [p.code for p in found.report.problems]
    finally:
        forged.stop()


def test_a_bundle_of_1000_leaves_with_consistency_proofs(federation: Federation) -> None:
    """`audit bundle` with 1,000 leaves' inclusion proofs succeeds under the node's rate
    limit, carries the consistency proofs to the previous and the witnessed checkpoints,
    and `verify-bundle` checks them (a changed proof fails)."""
    fed = federation
    log = fed.node.log
    for i in range(1000):
        log.append(actor=READER, action="audit.read", request=i.to_bytes(2, "big"))
    verifier = NoteVerifier.from_key_string(log.verifier_key)
    state = fed.tmp_path / "auditor-state"
    with capture_logs():
        assert auditor.fetch_verified(fed.endpoint, verifier, state).report.ok
        for _ in range(3):  # the log grows past what the auditor verified
            log.append(actor=READER, action="audit.read", request=b"more")
        checkpointer(fed, log).run_once()  # the witness holds a checkpoint
        out = fed.tmp_path / "bundle.json"
        made = audit_bundle.write_bundle(
            fed.endpoint, verifier, state, range(1000), out, witnesses=[fed.witness_ref]
        )
    assert made.verified.report.ok, made.verified.report.problems
    assert (made.proofs, made.consistency) == (1000, 2)
    text = out.read_text(encoding="utf-8")
    assert verify_bundle(text, verifier).ok
    data = json.loads(text)
    sizes = {(p["old_size"], p["new_size"]) for p in data["consistency_proofs"]}
    assert len(sizes) == 2
    assert all(made.leaves in (old, new) for old, new in sizes)
    data["consistency_proofs"][0]["hashes"][0] = base64.b64encode(bytes(32)).decode("ascii")
    report = verify_bundle(json.dumps(data), verifier)
    assert "bad-consistency-proof" in [p.code for p in report.problems]
