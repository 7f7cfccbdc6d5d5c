"""`childreg bench`, audit log: durable appends, and proofs from a million-leaf log.

(d) audit leaves appended per second through the node's AuditLog on a real SQLCipher
    file (each append its own transaction, ``synchronous=FULL``: acknowledged means on
    disk) ÷ raw SQLCipher inserts of rows of the same size, each committed alone with the
    same durability — the physical limit is the commit's fsync;
(e) the time to produce an inclusion proof from a log of 10⁶ leaves held in SQLCipher
    (goal ≤ 2 ms), and a consistency proof beside it.
"""

from __future__ import annotations

import secrets
import statistics
import time
from pathlib import Path
from typing import Any

import sqlcipher3

from childreg.audit import merkle
from node.audit.log import AuditLog
from node.store.sqlcipher import SqlCipherStore

ACTOR = "spiffe://bench.childreg/department-staff/bench.registrar"


def measure_appends(root: Path, n: int) -> dict[str, Any]:
    """(d): durable audit appends per second ÷ durable raw inserts per second."""
    store = SqlCipherStore.open(root / "audit-appends.db", secrets.token_hex(32), create=True)
    audit = AuditLog(store, bytes(32), federation="bench.childreg", department="bench")
    subject = bytes(32)
    start = time.perf_counter()
    for i in range(n):
        audit.append(actor=ACTOR, action="child.read", subject=subject, request=i.to_bytes(8))
    appends = n / (time.perf_counter() - start)
    size = len(store.audit_leaves(0, 1)[0])
    store.close()
    conn: Any = sqlcipher3.connect(str(root / "raw-appends.db"), isolation_level=None)
    conn.execute(f"PRAGMA key = \"x'{secrets.token_hex(32)}'\"")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE leaf(seq INTEGER PRIMARY KEY, body BLOB NOT NULL)")
    body = secrets.token_bytes(size)
    start = time.perf_counter()
    for i in range(n):
        conn.execute("BEGIN")
        conn.execute("INSERT INTO leaf VALUES (?, ?)", (i, body))
        conn.execute("COMMIT")
    raw = n / (time.perf_counter() - start)
    conn.close()
    return {
        "appends": n,
        "leaf_bytes": size,
        "audit_appends_per_second": round(appends),
        "raw_durable_inserts_per_second": round(raw),
        "ratio": round(appends / raw, 3),
    }


def measure_proofs(root: Path, leaves: int, samples: int = 200) -> dict[str, Any]:
    """(e): inclusion and consistency proof times from a log of ``leaves`` leaves."""
    key = secrets.token_hex(32)
    path = root / "audit-proofs.db"
    SqlCipherStore.open(path, key, create=True).close()  # the node's schema
    hashes = merkle.MemoryHashStore()
    tree = merkle.MerkleTree(hashes)
    bodies = [i.to_bytes(8) for i in range(leaves)]
    for body in bodies:
        tree.append(body)
    store_rows = [
        (level, i, hashes.get(level, i))
        for level in range(leaves.bit_length())
        for i in range(leaves >> level)
    ]
    conn: Any = sqlcipher3.connect(str(path), isolation_level=None)
    conn.execute(f"PRAGMA key = \"x'{key}'\"")
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO audit_leaf(seq, body) VALUES (?, ?)", enumerate(bodies))
    conn.executemany("INSERT INTO audit_hash(level, idx, hash) VALUES (?, ?, ?)", store_rows)
    conn.execute("COMMIT")
    conn.close()
    store = SqlCipherStore.open(path, key)
    audit = AuditLog(store, bytes(32), federation="bench.childreg", department="bench")
    inclusion, consistency = [], []
    for _ in range(samples):
        index = secrets.randbelow(leaves)
        start = time.perf_counter()
        audit.inclusion_proof(index, leaves)
        inclusion.append(time.perf_counter() - start)
        start = time.perf_counter()
        audit.consistency_proof(index + 1, leaves)
        consistency.append(time.perf_counter() - start)
    proof = audit.inclusion_proof(leaves // 3, leaves)
    ok = merkle.verify_inclusion(
        merkle.leaf_hash(bodies[leaves // 3]), leaves // 3, leaves, proof, tree.root()
    )
    store.close()
    return {
        "leaves": leaves,
        "inclusion_proof_ms": round(statistics.median(inclusion) * 1000, 3),
        "consistency_proof_ms": round(statistics.median(consistency) * 1000, 3),
        "proof_verifies": ok,
        "goal_max_ms": 2.0,
    }
