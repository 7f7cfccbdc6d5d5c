"""The access log end to end: real node, witness, coordinator and auditor processes.

Every call that touches a child leaves a leaf without personal data; the auditor's
`childreg audit verify` checks the whole log offline; the independent witness cosigns the
node's checkpoints; and an insider who rewrites a past leaf directly in the node's
database — even recomputing every hash so that the node's new checkpoints look whole — is
caught by the witness (evidence kept) and by the auditor (exit 8, evidence saved).
"""

from __future__ import annotations

import base64
import getpass
import json
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlcipher3

from childreg.audit import merkle
from childreg.audit.leaf import AuditEvent
from childreg.v1 import audit_pb2 as apb
from childreg.v1 import audit_pb2_grpc as apb_grpc
from childreg.v1 import records_pb2 as pb
from childreg.v1 import records_pb2_grpc as pb_grpc
from node.config import NodeConfig
from node.crypto.keys import KekSource, Keyring
from tests.e2e.conftest import cli, trim
from tools.clients import importer
from tools.dev.federation import LocalFederation
from tools.dev.synth import DepartmentPlan
from witness.store import WitnessStore

NAME, NATIONAL_ID = "Gunel", "AZE7654321"


@pytest.fixture(scope="module")
def fed(
    tmp_path_factory: pytest.TempPathFactory, synthetic: tuple[list[DepartmentPlan], list[Path]]
) -> Iterator[LocalFederation]:
    """One department with a witness, 30 imported children and one planted child."""
    plans, files = synthetic
    root = tmp_path_factory.mktemp("audit")
    federation = LocalFederation(
        root / "fed", plans[:1], witness=True, node_settings={"audit_checkpoint_seconds": 0.2}
    )
    with federation:
        federation.setup()
        federation.start_nodes()
        dept = plans[0].id
        importer.import_file(federation.staff_endpoint(dept), trim(files[0], root / "a.csv", 30))
        with federation.staff_endpoint(dept).channel() as channel:
            stub = pb_grpc.RecordsServiceStub(channel)
            planted = pb.Child(child_id="PLANTED1", national_id=NATIONAL_ID, given_name=NAME,
                               family_name="Hasanova", date_of_birth="2016-06-06",
                               sex="female", district=plans[0].districts[0])  # fmt: skip
            reply = stub.RegisterChild(pb.RegisterChildRequest(child=planted), timeout=10)
            assert reply.registered
            stub.GetChild(pb.ChildRef(child_id="PLANTED1"), timeout=10)
        federation.start_coordinator()  # the coordinator witnesses the log too
        yield federation


def audit(fed: LocalFederation, command: str, *args: str) -> tuple[int, str, str]:
    """`childreg audit COMMAND` against the department's node, as the auditor."""
    dept = fed.departments[0].id
    ep = fed.node_endpoint_as(dept, "auditor")
    r = cli("audit", command, "--node", ep.address, "--server-name", ep.server_name or "",
            "--identity", str(ep.identity_dir), "--node-key", fed.audit_verifier_key(dept),
            *args)  # fmt: skip
    return r.returncode, r.stdout, r.stderr


def witnessed_size(fed: LocalFederation, who: str = "witness") -> int:
    """The size of the node's checkpoint a witness holds (0 if none): the independent
    witness, or the coordinator."""
    party = fed.witness_party if who == "witness" else fed.coordinator
    assert party is not None
    origin = f"childreg.{fed.federation}/{fed.departments[0].id}"
    ep = fed.node_endpoint_as(fed.departments[0].id, "auditor")
    ep = type(ep)(party.address, ep.identity_dir, party.server_name, 10)
    with ep.channel() as channel:
        state = apb_grpc.WitnessServiceStub(channel).GetState(
            apb.WitnessStateRequest(origin=origin), timeout=10
        )
    return int(state.note.splitlines()[1]) if state.note else 0


def test_the_auditor_verifies_the_log_and_no_leaf_holds_personal_data(
    fed: LocalFederation, tmp_path: Path
) -> None:
    """`audit verify` passes; every leaf parses; the planted name and national id, and every
    child id, appear in no leaf; the import, the registration and the read are there."""
    code, out, err = audit(fed, "verify", "--json", "--state", str(tmp_path / "state"))
    assert code == 0, err
    assert json.loads(out)["ok"] is True
    code, _, err = audit(fed, "bundle", "--out", str(tmp_path / "bundle.json"))
    assert code == 0, err
    bundle = json.loads((tmp_path / "bundle.json").read_text())
    leaves = [base64.b64decode(b) for b in bundle["leaves"]]
    events = [AuditEvent.from_bytes(b) for b in leaves]
    actions = [e.action for e in events]
    assert actions[:3] == ["records.import", "child.register", "child.read"]
    assert actions.count("audit.read") >= 1  # the auditor's own queries are leaves
    raw = b"".join(leaves)
    for secret in (NAME, NATIONAL_ID, "PLANTED1"):
        assert secret.encode() not in raw


def test_a_guardians_access_report_is_made_at_the_department(fed: LocalFederation) -> None:
    """The department lists who registered and read the planted child, from its own log
    (read while the node runs); the report is itself an access, by the operator, that the
    next report lists."""
    party = fed.nodes[fed.departments[0].id]
    r = cli("node", "access-report", "PLANTED1", "--config", str(party.config), "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    staff = f"spiffe://{fed.federation}/department-staff/{fed.departments[0].id}.registrar"
    assert [(a["action"], a["who"]) for a in report["accesses"]][:2] == [
        ("child.register", staff),
        ("child.read", staff),
    ]
    assert NAME not in r.stdout
    r = cli("node", "access-report", "PLANTED1", "--config", str(party.config), "--json")
    assert r.returncode == 0, r.stderr
    operator = f"department-operator/{fed.departments[0].id}.{getpass.getuser()}"
    last = json.loads(r.stdout)["accesses"][-1]
    assert (last["action"], last["who"], last["purpose"]) == (
        "audit.read",
        operator,
        "access-report",
    )


def test_the_witness_cosigns_the_nodes_checkpoints(fed: LocalFederation) -> None:
    """Within a few intervals both witnesses (independent, pushed to by the node; the
    coordinator, pulling) hold a checkpoint of the log."""
    deadline = time.monotonic() + 20
    while min(witnessed_size(fed), witnessed_size(fed, "coordinator")) < 3:
        assert time.monotonic() < deadline, "a witness holds no checkpoint"
        time.sleep(0.2)


def test_an_insider_rewriting_a_past_leaf_is_caught(fed: LocalFederation, tmp_path: Path) -> None:
    """Rewrite leaf 2 (the read) in the database, recompute every hash, drop the node's old
    checkpoints: the witness refuses the node's next checkpoint and keeps evidence, and the
    auditor's verify against its saved state exits 8 with evidence saved."""
    state = tmp_path / "state"
    code, _, err = audit(fed, "verify", "--state", str(state))
    assert code == 0, err
    dept = fed.departments[0].id
    party = fed.nodes[dept]
    fed.stop_party(party)
    held = witnessed_size(fed)  # read once the node is down: it cannot grow any more
    assert held >= 3
    rewrite_leaf(party.config, 2)
    fed.start_nodes()  # the node restarts, appends, checkpoints and asks the witness
    fed.restart_coordinator()  # on the node's new port; its witness state is kept
    with fed.staff_endpoint(dept).channel() as channel:
        pb_grpc.RecordsServiceStub(channel).GetChild(pb.ChildRef(child_id="PLANTED1"), timeout=10)
    assert fed.witness_party is not None
    deadline = time.monotonic() + 20
    evidence: list[Any] = []
    while not evidence and time.monotonic() < deadline:
        time.sleep(0.3)
        r = cli("audit", "witness", "evidence", "--config", str(fed.witness_party.config), "--json")
        assert r.returncode == 0, r.stderr
        evidence = json.loads(r.stdout)
    assert evidence, "the witness kept no evidence of the rewritten history"
    assert witnessed_size(fed) == held  # it did not cosign the rewritten log
    coordinator_db = fed.root / "coordinator" / "state" / "witness.db"
    deadline = time.monotonic() + 20
    while not coordinator_evidence(coordinator_db):
        assert time.monotonic() < deadline, "the coordinator kept no evidence"
        time.sleep(0.3)
    code, out, _ = audit(fed, "verify", "--json", "--state", str(state))
    assert code == 8
    report = json.loads(out)
    assert report["ok"] is False
    assert report["rewritten"] is True
    assert any((state / "evidence").iterdir())
    # An auditor who never saw this log before is not fooled either: the witness holds the
    # history the node gave it.
    party_w = fed.witness_party
    code, out, _ = audit(fed, "verify", "--json", "--witness", party_w.address,
                         "--witness-key", fed.witness_key,
                         "--witness-server-name", party_w.server_name)  # fmt: skip
    assert code == 8
    assert json.loads(out)["rewritten"] is True


def coordinator_evidence(db: Path) -> list[object]:
    """The evidence the coordinator's witness has kept."""
    store = WitnessStore(db, readonly=True)
    try:
        return list(store.evidence())
    finally:
        store.close()


def rewrite_leaf(config_file: Path, index: int) -> None:
    """What an insider with the database key could do: change a leaf and make the stored
    tree agree with it (triggers dropped, every hash recomputed, old checkpoints removed)."""
    config = NodeConfig.model_validate(tomllib.loads(config_file.read_text()))
    assert config.kek_file is not None
    keyring = Keyring.open(config.keyring_path, KekSource.from_key_file(config.kek_file))
    conn: Any = sqlcipher3.connect(str(config.db_path), isolation_level=None)
    try:
        conn.execute(f"PRAGMA key = \"x'{keyring.db_key_hex()}'\"")
        for name in [
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'")
        ]:
            conn.execute(f'DROP TRIGGER "{name}"')
        body = conn.execute("SELECT body FROM audit_leaf WHERE seq = ?", (index,)).fetchone()[0]
        event = AuditEvent.from_bytes(bytes(body))
        forged = AuditEvent(**{**event.__dict__, "actor": "spiffe://x/department-staff/nobody"})
        conn.execute("UPDATE audit_leaf SET body = ? WHERE seq = ?", (forged.to_bytes(), index))
        leaves = [bytes(r[0]) for r in conn.execute("SELECT body FROM audit_leaf ORDER BY seq")]
        tree = merkle.MerkleTree()
        for leaf in leaves:
            tree.append(leaf)
        conn.execute("DELETE FROM audit_hash")
        rows = [(lvl, i, tree._store.get(lvl, i)) for lvl in range(len(leaves).bit_length())
                for i in range(len(leaves) >> lvl)]  # fmt: skip
        conn.executemany("INSERT INTO audit_hash(level, idx, hash) VALUES (?, ?, ?)", rows)
        conn.execute("DELETE FROM audit_checkpoint")
    finally:
        conn.close()
