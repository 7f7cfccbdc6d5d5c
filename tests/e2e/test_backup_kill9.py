"""Kill -9 during writes with backups running, 25 times: nothing acknowledged is lost.

A real node process with a change journal and a witness takes registrations as fast as
a client sends them while this process backs it up again and again (online, beside the
writes); the node is killed with SIGKILL at a random moment. Each round then: every
backup made verifies; the data directory is moved aside and the node restored from the
newest backup and the journal; every acknowledged registration is in the restored node
or was listed for re-entry under its child's pseudonym (by this restore or an earlier
one; now and then an older backup is restored, so more is replayed and listed); the
restored log starts with every leaf the crashed node had committed, byte for byte; the
witness's checkpoint is extended (the restore checks it) and the witness holds no
evidence. The restored node serves the
next round. At the end `audit verify --witness` exits 0.
"""

from __future__ import annotations

import secrets
import shutil
import threading
import time
from pathlib import Path

import grpc

from childreg.config import load_config
from childreg.v1 import records_pb2 as pb
from childreg.v1 import records_pb2_grpc as pb_grpc
from node.config import NodeConfig
from node.crypto.keys import Keyring
from node.server import backup_node, open_node, restore_node, verify_backup
from node.store.sqlcipher.backup import CopyReader, online_copy
from tests.e2e.conftest import cli
from tools.dev import synth
from tools.dev.federation import LocalFederation
from witness.store import WitnessStore

ROUNDS = 25


def register_until_stopped(
    fed: LocalFederation, dept: str, prefix: str, acked: list[str], stop: threading.Event
) -> None:
    """Register children one by one; remember those the node acknowledged."""
    district = fed.departments[0].districts[0]
    with fed.staff_endpoint(dept, timeout=5).channel() as channel:
        stub = pb_grpc.RecordsServiceStub(channel)
        n = 0
        while not stop.is_set():
            cid = f"{prefix}{n:05d}"
            n += 1
            child = pb.Child(child_id=cid, given_name="Nurlan", family_name="Quliyev",
                             date_of_birth="2014-04-04", sex="male", district=district)  # fmt: skip
            try:
                stub.RegisterChild(
                    pb.RegisterChildRequest(child=child, not_duplicate_reason="load test"),
                    timeout=5,
                )
            except grpc.RpcError:
                return  # the node is gone
            acked.append(cid)


def back_up_until_stopped(
    cfg: NodeConfig, root: Path, made: list[Path], stop: threading.Event
) -> None:
    """Back the serving node up again and again; remember each backup that finished."""
    while not stop.is_set():
        out = root / f"b{len(made):03d}-{secrets.token_hex(3)}"
        try:
            backup_node(cfg, out)
        except Exception:  # the node was killed mid-backup: that copy may be partial
            return
        made.append(out)
        time.sleep(0.05)


def committed_leaves(keyring: Keyring, data_dir: Path) -> list[bytes]:
    """The leaves a crashed data directory had committed (its WAL folded in by a copy)."""
    copy_path = data_dir / "read.db"
    online_copy(data_dir / "records.db", keyring.db_key_hex(), copy_path)
    with CopyReader(copy_path, keyring.db_key_hex()) as copy:
        return copy.audit_leaves(0, copy.audit_size())


def test_kill_9_during_writes_and_backups_loses_nothing(tmp_path: Path) -> None:
    """25 kills under writes and backups: every backup verifies, every acknowledged
    registration is back or listed, the log is the witnessed one, no evidence."""
    plan = synth.plan_departments(1)[0]
    (tmp_path / "journal").mkdir()
    fed = LocalFederation(
        tmp_path / "fed", [plan], witness=True,
        node_settings={"audit_checkpoint_seconds": 0.05, "import_workers": 0,
                       "backup": {"journal_dir": str(tmp_path / "journal")}},
    )  # fmt: skip
    backups = tmp_path / "backups"
    backups.mkdir()
    with fed:
        fed.setup()
        party = fed.nodes[plan.id]
        cfg = load_config(NodeConfig, party.config)
        _, keyring = fed.node_keyring(plan.id)
        made: list[Path] = [backups / "initial"]
        verified: set[Path] = set()
        listed: set[str] = set()  # every registration a restore listed for re-entry
        replayed = 0
        backup_node(cfg, made[0])
        acked: list[str] = []
        for round_no in range(ROUNDS):
            fed.start_nodes()
            cfg = load_config(NodeConfig, party.config)  # now naming the witness
            stop = threading.Event()
            writer = threading.Thread(
                target=register_until_stopped, args=(fed, plan.id, f"R{round_no:02d}-", acked, stop)
            )
            backer = threading.Thread(target=back_up_until_stopped, args=(cfg, backups, made, stop))
            writer.start()
            backer.start()
            time.sleep(0.3 + secrets.randbelow(700) / 1000)  # a random moment
            assert party.proc is not None
            party.proc.kill()  # SIGKILL: no clean shutdown
            party.proc.wait()
            stop.set()
            writer.join(timeout=10)
            backer.join(timeout=30)

            for backup in made:
                if backup not in verified:
                    verify_backup(cfg, backup)
                    verified.add(backup)
            crashed = tmp_path / f"crashed-{round_no:02d}"
            shutil.move(cfg.data_dir, crashed)
            before = committed_leaves(keyring, crashed)
            # The newest backup, or now and then an older one (more to replay and list).
            pick = made[-1] if round_no % 3 else made[secrets.randbelow(len(made))]
            report = restore_node(cfg, pick)

            store, _ = open_node(cfg)
            try:
                held = {r[1] for page in store.wrapped_keys() for r in page}
                leaves = store.audit_leaves(0, store.audit_size())
            finally:
                store.close()
            listed |= {r.pseudonym for r in report.reenter if r.action == "child.register"}
            lost = [c for c in acked if c not in held and keyring.pseudonym(c).hex() not in listed]
            assert lost == [], f"round {round_no}: acknowledged registrations lost"
            assert leaves[: len(before)] == before
            assert all(w.get("extends") for w in report.witnesses)
            assert report.witnesses, "the restore checked the witness's checkpoint"
            replayed += report.leaves_replayed
            shutil.rmtree(crashed)
        assert len(acked) > ROUNDS  # the load really ran
        assert len(made) > ROUNDS  # and so did the backups
        assert replayed > ROUNDS  # and the restores replayed journaled leaves

        fed.start_nodes()
        fed.wait_witnessed(plan.id)
        assert fed.witness_party is not None
        node = fed.nodes[plan.id]
        r = cli("audit", "verify", "--node", node.address, "--server-name", node.server_name,
                "--identity", str(fed.identity("auditor")), "--node-key",
                fed.audit_verifier_key(plan.id), "--witness", fed.witness_party.address,
                "--witness-key", fed.witness_key,
                "--witness-server-name", fed.witness_party.server_name, "--json")  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr
        store_w = WitnessStore(tmp_path / "fed" / "witness" / "state" / "witness.db", readonly=True)
        try:
            assert store_w.evidence() == []
        finally:
            store_w.close()
