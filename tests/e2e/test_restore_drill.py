"""The restore drill (issue 18): real node and witness processes, the real `childreg` command.

A witnessed node with a change journal serves 40 children and two consents; it is
backed up while it serves; then it takes more — a registration, a third consent, the
withdrawal of one of the first two, a statistics release that spends the snapshot's
whole budget, one child's erasure — and the witness cosigns all of it. The node is
stopped, its data directory wiped; the backup's files put back by hand make a node that
refuses to start; `childreg node restore` rebuilds it. Afterwards:
`audit verify --witness` exits 0 and the witness holds no evidence; the snapshot's
budget is still spent (the same table comes back as released, another is refused); the
withdrawn consent stays withdrawn; the erased child is not served and its sealed
identity (from the backup, made before the erasure) opens with no key the restored node
holds; the registration and the consent after the backup are listed for re-entry; and a
school's extract works again.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlcipher3

from childreg.audit.checkpoint import childreg_origin
from childreg.errors import KeyProblem, Unavailable
from childreg.v1 import audit_pb2 as apb
from childreg.v1 import audit_pb2_grpc as apb_grpc
from childreg.v1 import records_pb2 as pb
from childreg.v1 import records_pb2_grpc as pb_grpc
from childreg.v1 import statistics_pb2 as spb
from childreg.v1 import statistics_pb2_grpc as spb_grpc
from node.crypto.keys import Keyring
from node.records.registry import IDENTITY_CONTEXT
from node.server import open_node
from tests.e2e.conftest import cli, trim
from tools.clients import importer
from tools.clients.client import EXIT_REFUSED, Endpoint
from tools.dev.federation import WITNESS_NAME, LocalFederation
from tools.dev.synth import DepartmentPlan
from witness.store import WitnessStore

SCHOOL = "school-7"
YEAR = "2023/24"


def sealed_identity(db: Path, keyring: Keyring, child_id: str) -> bytes:
    """A child's sealed identity as a database file holds it."""
    conn: Any = sqlcipher3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        conn.execute(f"PRAGMA key = \"x'{keyring.db_key_hex()}'\"")
        row = conn.execute("SELECT sealed_identity FROM child WHERE child_id = ?", (child_id,))
        return bytes(row.fetchone()[0])
    finally:
        conn.close()


def node_args(fed: LocalFederation, identity: Path) -> list[str]:
    """--node, --server-name and --identity for the department's node."""
    node = fed.nodes[fed.departments[0].id]
    return ["--node", node.address, "--server-name", node.server_name, "--identity", str(identity)]


def grant(fed: LocalFederation, child_id: str, receipts: Path) -> tuple[str, str]:
    """`childreg consent grant` for ``child_id`` to the school; (grant token, consent id)."""
    staff = fed.identity(f"staff-{fed.departments[0].id}")
    today = dt.date.today()
    r = cli("consent", "grant", *node_args(fed, staff), "--child", child_id,
            "--guardian", "Leyla Mammadova", "--purpose", "iep_preparation",
            "--school", f"spiffe://{fed.federation}/school/{SCHOOL}",
            "--from", today.isoformat(), "--until", (today + dt.timedelta(days=30)).isoformat(),
            "--evidence", "form-17", "--receipt-dir", str(receipts), "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    granted = json.loads(r.stdout)
    return str(granted["grant"]), str(granted["consent"]["consent_id"])


def extract(fed: LocalFederation, token: str, key: Path, out: Path) -> int:
    """`childreg extract request` as the school; its exit code."""
    school = fed.identity(f"school-{SCHOOL}")
    r = cli("extract", "request", "--grant", token, *node_args(fed, school),
            "--key-file", str(key), "--out", str(out))  # fmt: skip
    return r.returncode


def noisy_table(fed: LocalFederation, table_id: str) -> list[int]:
    """The node's per-department noisy table, asked as the coordinator."""
    ep = fed.node_endpoint_as(fed.departments[0].id, "coordinator")
    request = spb.NoisyTableRequest(
        signed_catalogue=fed.catalogue_file.read_bytes(), table_id=table_id, academic_year=YEAR
    )
    with ep.channel() as channel:
        reply = spb_grpc.StatisticsServiceStub(channel).NoisyTable(request, timeout=30)
    return list(reply.counts)


def witnessed_size(fed: LocalFederation) -> int:
    """The size of the node's checkpoint the witness holds."""
    party = fed.witness_party
    assert party is not None
    ep = Endpoint(party.address, fed.identity("auditor"), party.server_name, 10)
    origin = childreg_origin(fed.federation, fed.departments[0].id)
    with ep.channel() as channel:
        state = apb_grpc.WitnessServiceStub(channel).GetState(
            apb.WitnessStateRequest(origin=origin), timeout=10
        )
    return int(state.note.splitlines()[1]) if state.note else 0


def node_size(fed: LocalFederation) -> int:
    """The node's log size (as an auditor's checkpoint read: itself a leaf)."""
    ep = fed.node_endpoint_as(fed.departments[0].id, "auditor")
    with ep.channel() as channel:
        note = apb_grpc.AuditLogServiceStub(channel).LatestCheckpoint(
            apb.CheckpointRequest(), timeout=10
        )
    return int(note.note.splitlines()[1])


def wait_witnessed_to(fed: LocalFederation, size: int, timeout: float = 60) -> None:
    """Wait until the witness holds a checkpoint of at least ``size`` leaves."""
    deadline = time.monotonic() + timeout
    while witnessed_size(fed) < size:
        assert time.monotonic() < deadline, "the witness did not cosign the node's log"
        time.sleep(0.2)


def test_restore_drill(tmp_path: Path, synthetic: tuple[list[DepartmentPlan], list[Path]]) -> None:
    """Back up, change, wipe, restore: the witnessed log, the budget, the withdrawal and
    the extracts all hold, and every change after the backup is back or listed."""
    plans, files = synthetic
    (tmp_path / "journal").mkdir()
    fed = LocalFederation(
        tmp_path / "fed", plans[:1], witness=True, max_snapshot_rho="1/32",
        node_settings={"audit_checkpoint_seconds": 0.2, "import_workers": 0,
                       "backup": {"journal_dir": str(tmp_path / "journal")}},
    )  # fmt: skip
    with fed:
        fed.setup()
        fed.issue_identity("school", SCHOOL)
        fed.start_nodes()
        dept = plans[0].id
        party = fed.nodes[dept]
        csv_file = trim(files[0], tmp_path / "a.csv", 40)
        importer.import_file(fed.staff_endpoint(dept), csv_file)
        ids = [line.split(",")[0] for line in csv_file.read_text().splitlines()[1:]]
        fed.wait_witnessed(dept)
        kept, _ = grant(fed, ids[0], tmp_path / "receipts")
        gone, withdrawn = grant(fed, ids[1], tmp_path / "receipts")

        backup = tmp_path / "backup"
        r = cli("node", "backup", "--config", str(party.config), "--out", str(backup), "--json")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["children"] == 40
        r = cli("node", "backup", "verify", str(backup), "--config", str(party.config), "--json")
        assert r.returncode == 0, r.stderr

        # After the backup: a registration, a consent, a withdrawal, a release.
        with fed.staff_endpoint(dept).channel() as channel:
            child = pb.Child(child_id="AFTER-1", given_name="Nurlan", family_name="Quliyev",
                             date_of_birth="2014-04-04", sex="male",
                             district=plans[0].districts[0])  # fmt: skip
            reply = pb_grpc.RecordsServiceStub(channel).RegisterChild(
                pb.RegisterChildRequest(child=child, not_duplicate_reason="drill"), timeout=10
            )
            assert reply.registered
        grant(fed, ids[2], tmp_path / "receipts")
        # An operator's command is another process appending leaves to the same journal.
        r = cli("node", "access-report", ids[0], "--config", str(party.config), "--json")
        assert r.returncode == 0, r.stderr
        staff = fed.identity(f"staff-{dept}")
        r = cli("consent", "withdraw", withdrawn, *node_args(fed, staff), "--json")
        assert r.returncode == 0, r.stderr
        released = noisy_table(fed, "education_form")
        r = cli("child", "erase", ids[3], "--reason", "guardian_request",
                *node_args(fed, staff), "--json")  # fmt: skip
        assert r.returncode == 0, r.stderr
        wait_witnessed_to(fed, node_size(fed))

        fed.stop_party(party)
        held = witnessed_size(fed)
        data_dir = tmp_path / "fed" / "nodes" / dept / "data"
        shutil.rmtree(data_dir)
        # What "back up both" did: the copy put back by hand. The node refuses to start.
        data_dir.mkdir()
        for name in ("records.db", "keyring.json"):
            shutil.copyfile(backup / name, data_dir / name)
        with pytest.raises(Unavailable):
            fed.start_nodes()
        assert "older than the journal" in party.log.read_text()
        shutil.rmtree(data_dir)
        r = cli("node", "restore", "--config", str(party.config), "--from", str(backup), "--json")
        assert r.returncode == 0, r.stderr
        report = json.loads(r.stdout)
        assert report["audit_size"] > held
        assert report["ledger_entries_replayed"] == 1
        assert [a["done"] for a in report["reapplied"]] == [
            "consent withdrawn again",
            "erased again",
        ]
        listed = [(e["action"], e["child_id"]) for e in report["reenter"]]
        assert listed == [("child.register", None), ("consent.grant", ids[2])]
        assert all(e["actor"] and e["time"] and e["pseudonym"] for e in report["reenter"])
        assert report["witnesses"] == [
            {"name": WITNESS_NAME, "reachable": True, "size": held, "extends": True}
        ]

        fed.start_nodes()
        wait_witnessed_to(fed, report["audit_size"])  # the restored log, cosigned
        assert fed.witness_party is not None
        r = cli("audit", "verify", *node_args(fed, fed.identity("auditor")), "--node-key",
                fed.audit_verifier_key(dept), "--witness", fed.witness_party.address,
                "--witness-key", fed.witness_key,
                "--witness-server-name", fed.witness_party.server_name, "--json")  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr
        witness_db = tmp_path / "fed" / "witness" / "state" / "witness.db"
        store = WitnessStore(witness_db, readonly=True)
        try:
            assert store.evidence() == []
        finally:
            store.close()

        # The budget is still spent: the same table as released, another refused.
        assert noisy_table(fed, "education_form") == released
        with pytest.raises(grpc.RpcError) as refused:
            noisy_table(fed, "education_form_by_sex")
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

        # The erased child stays erased: not served, nothing of it held, its id not reused.
        r = cli("child", "show", ids[3], *node_args(fed, staff), "--json")
        assert r.returncode != 0
        assert "erased" in r.stderr
        config, keyring = fed.node_keyring(dept)
        sealed = sealed_identity(backup / "records.db", keyring, ids[3])  # made before
        node_store, _ = open_node(config)
        try:
            assert node_store.get_child(ids[3]) is None
            assert node_store.erasure_of(keyring.pseudonym(ids[3])) is not None
            keys = [row for page in node_store.wrapped_keys() for row in page]
        finally:
            node_store.close()
        for _, child_id, version, wrapped_key in keys:  # no key the node holds opens it
            key = keyring.child_key(child_id, version, wrapped_key)
            with pytest.raises(KeyProblem):
                keyring.unseal(key, ids[3], IDENTITY_CONTEXT, sealed)

        # Extracts work again; the withdrawn consent stays withdrawn.
        fed.wait_witnessed(dept)
        school_key = tmp_path / "school.key"
        assert cli("extract", "keygen", "--out", str(school_key)).returncode == 0
        assert extract(fed, kept, school_key, tmp_path / "x.bin") == 0
        assert extract(fed, gone, school_key, tmp_path / "y.bin") == EXIT_REFUSED
