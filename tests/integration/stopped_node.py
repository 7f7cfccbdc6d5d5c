"""A stopped SQLCipher node on its host, shared by the key-handling tests
(test_kek_rotation.py, test_rekey_db.py): its configuration, its children and its log."""

from __future__ import annotations

import shutil
from pathlib import Path

from childreg.audit.leaf import AuditEvent
from node.audit.log import AuditLog
from node.config import NodeConfig
from node.records.registry import Registry
from node.server import open_node
from tests.conftest import FEDERATION

DEPARTMENT = "alpha"


def node_config(root: Path, identity: Path, kek: Path) -> dict[str, object]:
    """A node configuration of DEPARTMENT with its files under ``root`` and KEK ``kek``."""
    return {
        "department_id": DEPARTMENT, "name": "Alpha", "region": "shaki_zagatala",
        "districts": ["shaki"], "data_dir": str(root / "data"), "identity_dir": str(identity),
        "kek_file": str(kek), "denylist_file": str(root / "denylist.json"),
        "statistics_authority_key": str(root / "authority.pub"),
    }  # fmt: skip


def copy_node(template: Path, root: Path, configs: tuple[str, ...]) -> None:
    """Copy a template node's directory to ``root``, its ``configs`` pointed at the copy."""
    shutil.copytree(template, root)
    for name in configs:
        (root / name).write_text((root / name).read_text().replace(str(template), str(root)))


def read_children(cfg: NodeConfig, count: int) -> dict[str, str]:
    """Children C0000.. as the registry reads them (sealed fields opened)."""
    store, keyring = open_node(cfg)
    try:
        registry = Registry(store, keyring)
        ids = [f"C{i:04d}" for i in range(count)]
        return {cid: registry.get_child(cid).model_dump_json() for cid in ids}
    finally:
        store.close()


def audit_leaves(cfg: NodeConfig) -> list[AuditEvent]:
    """Every leaf of the node's log."""
    store, keyring = open_node(cfg)
    try:
        log = AuditLog(
            store, keyring.audit_signing_seed(), federation=FEDERATION, department=DEPARTMENT
        )
        return [AuditEvent.from_bytes(leaf) for leaf in log.leaves()]
    finally:
        store.close()
