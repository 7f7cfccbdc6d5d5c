"""Kill -9 harness: an acknowledged audit leaf survives any crash, and the log verifies.

A real node process takes registrations as fast as a client can send them (each one a
change and its leaf in one transaction) while it signs checkpoints every 50 ms; it is
killed with SIGKILL at a random moment, 25 times. After each kill, reading the files:
every acknowledged registration and its leaf are there, leaf indices are contiguous
from 0, every stored checkpoint is signed by the node and recomputes from the stored
leaves, and SQLCipher's integrity check is clean.
"""

from __future__ import annotations

import secrets
import threading
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import sqlcipher3
from nacl.signing import SigningKey

from childreg.audit import merkle
from childreg.audit.checkpoint import childreg_origin, open_checkpoint
from childreg.audit.leaf import AuditEvent
from childreg.audit.note import NoteSigner
from childreg.v1 import records_pb2 as pb
from childreg.v1 import records_pb2_grpc as pb_grpc
from node.config import NodeConfig
from node.crypto.keys import KekSource, Keyring
from tools.dev import synth
from tools.dev.federation import LocalFederation

ROUNDS = 25


def register_until_stopped(
    fed: LocalFederation, dept: str, prefix: str, acked: list[str], stop: threading.Event
) -> None:
    """Register children one by one; remember those the node acknowledged."""
    with fed.staff_endpoint(dept, timeout=5).channel() as channel:
        stub = pb_grpc.RecordsServiceStub(channel)
        n = 0
        while not stop.is_set():
            cid = f"{prefix}{n:05d}"
            n += 1
            child = pb.Child(child_id=cid, given_name="Nurlan", family_name="Quliyev",
                             date_of_birth="2014-04-04", sex="male", district="shaki")  # fmt: skip
            try:
                # Every child looks like the others: each is confirmed not a duplicate.
                stub.RegisterChild(
                    pb.RegisterChildRequest(child=child, not_duplicate_reason="load test"),
                    timeout=5,
                )
            except grpc.RpcError:
                return  # the node is gone
            acked.append(cid)


@dataclass
class OnDisk:
    """What the node's files hold after a crash."""

    leaves: list[bytes]
    checkpoints: list[tuple[int, str]]
    children: set[str]
    integrity: str


def inspect(config: NodeConfig, keyring: Keyring) -> OnDisk:
    """The log's leaves, its checkpoints, the children and the integrity check."""
    conn: Any = sqlcipher3.connect(str(config.db_path), isolation_level=None)
    try:
        conn.execute(f"PRAGMA key = \"x'{keyring.db_key_hex()}'\"")
        rows = conn.execute("SELECT seq, body FROM audit_leaf ORDER BY seq").fetchall()
        assert [int(s) for s, _ in rows] == list(range(len(rows)))  # contiguous from 0
        notes = conn.execute("SELECT size, note FROM audit_checkpoint").fetchall()
        return OnDisk(
            leaves=[bytes(b) for _, b in rows],
            checkpoints=[(int(s), str(n)) for s, n in notes],
            children={str(r[0]) for r in conn.execute("SELECT child_id FROM child")},
            integrity=str(conn.execute("PRAGMA integrity_check").fetchone()[0]),
        )
    finally:
        conn.close()


def test_acknowledged_leaves_survive_kill_9(tmp_path: Path) -> None:
    """25 kills at random moments under load: nothing acknowledged is lost, all verifies."""
    plan = synth.plan_departments(1)[0]
    fed = LocalFederation(
        tmp_path / "fed", [plan], node_settings={"audit_checkpoint_seconds": 0.05}
    )
    with fed:
        fed.setup()
        party = fed.nodes[plan.id]
        config = NodeConfig.model_validate(tomllib.loads(party.config.read_text()))
        assert config.kek_file is not None
        keyring = Keyring.open(config.keyring_path, KekSource.from_key_file(config.kek_file))
        origin = childreg_origin(fed.federation, plan.id)
        verifier = NoteSigner(origin, SigningKey(keyring.audit_signing_seed())).verifier()
        acked: list[str] = []
        for round_no in range(ROUNDS):
            fed.start_nodes()
            stop = threading.Event()
            args = (fed, plan.id, f"R{round_no:02d}-", acked, stop)
            load = threading.Thread(target=register_until_stopped, args=args)
            load.start()
            time.sleep(0.2 + secrets.randbelow(600) / 1000)  # a random moment
            assert party.proc is not None
            party.proc.kill()  # SIGKILL: no clean shutdown, no WAL checkpoint
            party.proc.wait()
            stop.set()
            load.join(timeout=10)
            disk = inspect(config, keyring)
            assert disk.integrity == "ok"
            assert set(acked) <= disk.children
            events = [AuditEvent.from_bytes(b) for b in disk.leaves]
            ok = [e for e in events if e.action == "child.register" and e.outcome == "OK"]
            assert len(ok) >= len(acked)  # every acknowledged change has its leaf
            assert {keyring.pseudonym(c).hex() for c in acked} <= {e.subject for e in ok}
            assert disk.checkpoints  # the node signed checkpoints under load
            for size, note in disk.checkpoints:
                checkpoint, _ = open_checkpoint(note, [verifier], origin=origin)
                assert checkpoint.size == size <= len(disk.leaves)
                assert checkpoint.root == merkle.root_from_leaves(disk.leaves[:size])
        assert len(acked) > ROUNDS  # the load really ran
