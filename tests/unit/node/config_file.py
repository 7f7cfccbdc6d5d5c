"""A minimal node configuration file with one optional section, for the tests of a
configuration section (``[backup]``, ``[retention]``, …)."""

from __future__ import annotations

from pathlib import Path

import tomli_w


def node_config(tmp_path: Path, section: str, values: dict[str, object]) -> Path:
    """A node configuration file in ``tmp_path`` with ``values`` as its ``[section]`` (none
    when empty)."""
    data: dict[str, object] = {
        "department_id": "alpha", "name": "Alpha", "region": "shaki_zagatala",
        "districts": ["shaki"], "data_dir": "data", "identity_dir": "identity",
        "kek_file": "kek.key", "denylist_file": "denylist.json",
        "statistics_authority_key": "authority.pub",
    }  # fmt: skip
    if values:
        data[section] = values
    path = tmp_path / "node.toml"
    path.write_text(tomli_w.dumps(data))
    return path
