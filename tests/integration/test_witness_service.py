"""The witness as a real mutual-TLS service: nodes submit, auditors read, others are refused;
stand-alone, and hosted by a real coordinator that is given the witness (never imports it)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from nacl.signing import SigningKey

from childreg.audit.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from childreg.audit.merkle import MerkleTree
from childreg.audit.note import NoteSigner, NoteVerifier, generate_signer
from childreg.catalogue import parse_catalogue, public_key_text, sign_catalogue
from childreg.pki import CertificateAuthority
from childreg.revocation import DENYLIST_FILE
from childreg.rpc import secure_channel, violations_from_error
from childreg.v1 import audit_pb2 as apb
from childreg.v1 import audit_pb2_grpc as apb_grpc
from coordinator.config import CoordinatorConfig
from coordinator.server import CoordinatorApp, start_coordinator
from tests.conftest import FEDERATION, IssueFn, tls
from witness.config import WitnessConfig, WitnessedNode, generate_witness_key
from witness.server import WitnessApp, embedded_witness, start_witness
from witness.store import WitnessStore

ORIGIN = f"childreg.{FEDERATION}/alpha"
SERVER_NAME = f"ombudsman.witness.{FEDERATION}"
NODE = NoteSigner.from_key_string(generate_signer(ORIGIN)[0])
TIMEOUT = 10.0


def tree(prefix: bytes, size: int) -> MerkleTree:
    """A log of ``size`` leaves."""
    t = MerkleTree()
    for i in range(size):
        t.append(prefix + b"-%d" % i)
    return t


def note_at(t: MerkleTree, size: int) -> str:
    """The node-signed checkpoint of ``t`` at ``size``."""
    return sign_checkpoint(Checkpoint(ORIGIN, size, t.root(size)), NODE)


@pytest.fixture
def witness(
    issue: IssueFn, ca: CertificateAuthority, tmp_path: Path
) -> Iterator[tuple[WitnessApp, NoteVerifier]]:
    """A witness started the way `childreg audit witness serve` starts it, on port 0."""
    identity = issue("witness", "ombudsman", dns_names=(SERVER_NAME,), ip_addresses=("127.0.0.1",))
    assert ca.directory is not None
    key = tmp_path / "witness.key"
    verifier = NoteVerifier.from_key_string(generate_witness_key(key, "witness.test-ombudsman"))
    config = WitnessConfig(
        listen="127.0.0.1:0",
        identity_dir=identity.directory,
        denylist_file=ca.directory / DENYLIST_FILE,
        statistics_authority_key=tmp_path / "authority.pub",  # not used by a witness
        name="witness.test-ombudsman",
        signing_key_file=key,
        state_dir=tmp_path / "state",
        nodes=(WitnessedNode(origin=ORIGIN, verifier_key=NODE.verifier().key_string()),),
    )
    app = start_witness(config)
    yield app, verifier
    app.stop(grace=0)


def stub(
    app: WitnessApp | CoordinatorApp,
    issue: IssueFn,
    role: str,
    ident: str,
    server_name: str = SERVER_NAME,
) -> apb_grpc.WitnessServiceStub:
    """A client of the witness (or of the coordinator hosting one) holding ``role``/``ident``."""
    channel = secure_channel(f"127.0.0.1:{app.port}", tls(issue(role, ident)), server_name)
    return apb_grpc.WitnessServiceStub(channel)


def add(client: apb_grpc.WitnessServiceStub, note: str, old_size: int, proof: list[bytes]) -> str:
    """AddCheckpoint; the cosigned note."""
    request = apb.WitnessRequest(note=note, old_size=old_size, consistency=proof)
    return client.AddCheckpoint(request, timeout=TIMEOUT).cosigned_note


def test_a_node_grows_its_log_and_equivocation_is_refused(
    witness: tuple[WitnessApp, NoteVerifier], issue: IssueFn
) -> None:
    """Growth is cosigned twice; a second root for the held size is FAILED_PRECONDITION."""
    app, verifier = witness
    node = stub(app, issue, "node", "alpha")
    log, fork = tree(b"log", 12), tree(b"fork", 12)
    add(node, note_at(log, 4), 0, [])
    cosigned = add(node, note_at(log, 12), 4, log.consistency_proof(4, 12))
    cp, opened = open_checkpoint(cosigned, [NODE.verifier(), verifier], origin=ORIGIN)
    assert cp.size == 12
    assert opened.verified_by == [ORIGIN, verifier.name]
    with pytest.raises(grpc.RpcError) as caught:
        add(node, note_at(fork, 12), 12, [])
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "equivocates" in (caught.value.details() or "")
    [ev] = app.witness.evidence()
    assert (ev.kind, ev.submitted_note) == ("equivocation", note_at(fork, 12))

    auditor = stub(app, issue, "auditor", "inspector")
    state = auditor.GetState(apb.WitnessStateRequest(origin=ORIGIN), timeout=TIMEOUT)
    assert (state.origin, state.note) == (ORIGIN, cosigned)
    other = auditor.GetState(apb.WitnessStateRequest(origin="childreg.x/y"), timeout=TIMEOUT)
    assert other.note == ""


def test_malformed_requests_name_the_field(
    witness: tuple[WitnessApp, NoteVerifier], issue: IssueFn
) -> None:
    """A proof hash of the wrong length is INVALID_ARGUMENT naming `consistency`."""
    app, _ = witness
    node = stub(app, issue, "node", "alpha")
    with pytest.raises(grpc.RpcError) as caught:
        add(node, note_at(tree(b"log", 2), 2), 0, [b"\x00" * 31])
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in violations_from_error(caught.value)] == ["consistency"]
    with pytest.raises(grpc.RpcError) as caught:
        add(node, "", 0, [])
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_an_unknown_log_is_refused(
    witness: tuple[WitnessApp, NoteVerifier], issue: IssueFn
) -> None:
    """A checkpoint of a log the witness does not pin is PERMISSION_DENIED."""
    app, _ = witness
    other = NoteSigner.from_key_string(generate_signer(f"childreg.{FEDERATION}/beta")[0])
    note = sign_checkpoint(Checkpoint(other.name, 1, tree(b"b", 1).root()), other)
    with pytest.raises(grpc.RpcError) as caught:
        add(stub(app, issue, "node", "beta"), note, 0, [])
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize("role", ["school", "auditor", "statistician"])
def test_only_nodes_may_submit(
    witness: tuple[WitnessApp, NoteVerifier], issue: IssueFn, role: str
) -> None:
    """Anyone but a node is refused AddCheckpoint before the witness sees the note."""
    app, _ = witness
    with pytest.raises(grpc.RpcError) as caught:
        add(stub(app, issue, role, "someone"), note_at(tree(b"log", 1), 1), 0, [])
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert app.witness.state(ORIGIN) is None


def test_a_school_may_not_read_the_state(
    witness: tuple[WitnessApp, NoteVerifier], issue: IssueFn
) -> None:
    """GetState is for nodes, auditors and the coordinator; a school is refused."""
    app, _ = witness
    with pytest.raises(grpc.RpcError) as caught:
        stub(app, issue, "school", "school-1").GetState(
            apb.WitnessStateRequest(origin=ORIGIN), timeout=TIMEOUT
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_serve_runs_until_sigterm(issue: IssueFn, ca: CertificateAuthority, tmp_path: Path) -> None:
    """`serve` loads a TOML configuration, writes its ready file, answers, stops on SIGTERM."""
    identity = issue("witness", "ombudsman", dns_names=(SERVER_NAME,), ip_addresses=("127.0.0.1",))
    assert ca.directory is not None
    generate_witness_key(tmp_path / "witness.key", "witness.test-ombudsman")
    config = tmp_path / "witness.toml"
    config.write_text(
        'name = "witness.test-ombudsman"\nsigning_key_file = "witness.key"\n'
        f'state_dir = "state"\nlisten = "127.0.0.1:0"\nidentity_dir = "{identity.directory}"\n'
        f'denylist_file = "{ca.directory / DENYLIST_FILE}"\n'
        'statistics_authority_key = "authority.pub"\n'
        f'[[nodes]]\norigin = "{ORIGIN}"\nverifier_key = "{NODE.verifier().key_string()}"\n',
        encoding="utf-8",
    )
    ready = tmp_path / "ready.json"
    code = "from tools.cli.witness import app; app()"
    args = ["serve", "--config", str(config), "--ready-file", str(ready)]
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the witness did not become ready"
            time.sleep(0.05)
        address = json.loads(ready.read_text(encoding="utf-8"))["address"]
        channel = secure_channel(address, tls(issue("node", "alpha")), SERVER_NAME)
        client = apb_grpc.WitnessServiceStub(channel)
        cosigned = add(client, note_at(tree(b"log", 3), 3), 0, [])
        state = client.GetState(apb.WitnessStateRequest(origin=ORIGIN), timeout=TIMEOUT)
        assert state.note == cosigned
        channel.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert b"witness.serving" in stderr


def test_a_node_may_not_submit_another_departments_log(
    witness: tuple[WitnessApp, NoteVerifier], issue: IssueFn
) -> None:
    """Department beta replaying alpha's (validly signed) note is refused, and no evidence
    is recorded against alpha."""
    app, _ = witness
    log = tree(b"log", 6)
    add(stub(app, issue, "node", "alpha"), note_at(log, 6), 0, [])
    with pytest.raises(grpc.RpcError) as caught:
        add(stub(app, issue, "node", "beta"), note_at(log, 2), 0, [])
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert app.witness.evidence() == []


COORDINATOR_NAME = f"national.coordinator.{FEDERATION}"
AUTHORITY = SigningKey(bytes(range(32)))
CATALOGUE = {
    "federation": FEDERATION,
    "version": 1,
    "snapshot_rho": "1/4",
    "delta": 1e-9,
    "display_threshold": 10,
    "tables": [{"id": "sex", "title": "By sex", "dimensions": ["sex"], "rho": "1/32"}],
}


def coordinator_config(
    issue: IssueFn, ca: CertificateAuthority, tmp_path: Path
) -> CoordinatorConfig:
    """A per-department coordinator of one department whose audit key is pinned, with a
    `witness` section; the department is never dialled."""
    assert ca.directory is not None
    (tmp_path / "authority.pub").write_text(public_key_text(AUTHORITY.verify_key) + "\n")
    signed = sign_catalogue(parse_catalogue(CATALOGUE), AUTHORITY)
    (tmp_path / "catalogue.signed.json").write_bytes(signed)
    key = tmp_path / "coordinator-witness.key"
    generate_witness_key(key, "witness.test-coordinator")
    return CoordinatorConfig.model_validate(
        {
            "federation": FEDERATION,
            "listen": "127.0.0.1:0",
            "identity_dir": issue("coordinator", "national").directory,
            "denylist_file": ca.directory / DENYLIST_FILE,
            "statistics_authority_key": tmp_path / "authority.pub",
            "catalogue_file": tmp_path / "catalogue.signed.json",
            "state_dir": tmp_path / "coordinator-state",
            "aggregation": "per-department",
            "statisticians": [{"id": "alice", "rho": "1/8"}],
            "departments": [
                {
                    "id": "alpha",
                    "address": "127.0.0.1:9",
                    "region": "baku",
                    "audit_key": NODE.verifier().key_string(),
                }
            ],
            "witness": {
                "name": "witness.test-coordinator",
                "signing_key_file": key,
                "interval_seconds": 3600,
            },
        }
    )


def test_the_coordinator_serves_the_witness_it_is_given(
    issue: IssueFn, ca: CertificateAuthority, tmp_path: Path
) -> None:
    """A coordinator started with the witness `childreg coordinator serve` builds serves
    WitnessService on its own mutual-TLS port (healthy), cosigns the pinned department's
    pushed checkpoints with its witness key, and keeps them in state_dir/witness.db."""
    config = coordinator_config(issue, ca, tmp_path)
    assert config.witness is not None
    hosted = embedded_witness(
        config.witness_db_path,
        config.witness.signing_key_file,
        config.witness.name,
        config.witnessed_logs(),
    )
    app = start_coordinator(config, witness=hosted)
    try:
        node = stub(app, issue, "node", "alpha", COORDINATOR_NAME)
        log = tree(b"log", 7)
        add(node, note_at(log, 3), 0, [])
        cosigned = add(node, note_at(log, 7), 3, log.consistency_proof(3, 7))
        _, opened = open_checkpoint(cosigned, [NODE.verifier(), hosted.verifier], origin=ORIGIN)
        assert opened.verified_by == [ORIGIN, "witness.test-coordinator"]
        auditor = stub(app, issue, "auditor", "inspector", COORDINATOR_NAME)
        state = auditor.GetState(apb.WitnessStateRequest(origin=ORIGIN), timeout=TIMEOUT)
        assert state.note == cosigned
        with pytest.raises(grpc.RpcError) as caught:  # the same authorization as anywhere
            add(stub(app, issue, "school", "school-1", COORDINATOR_NAME), note_at(log, 7), 7, [])
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        channel = secure_channel(
            f"127.0.0.1:{app.port}", tls(issue("auditor", "inspector")), COORDINATOR_NAME
        )
        health = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="childreg.v1.WitnessService"), timeout=TIMEOUT
        )
        channel.close()
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        assert app.witness is not None  # its pull loop: the department is not running
        assert app.witness.run_once() == {"alpha": "unreachable"}
    finally:
        app.stop(grace=0)
    held = WitnessStore(config.witness_db_path, readonly=True)
    try:
        assert (held.latest(ORIGIN) or pytest.fail("nothing held")).note == cosigned
    finally:
        held.close()
