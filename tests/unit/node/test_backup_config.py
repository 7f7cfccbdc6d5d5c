"""The ``[backup]`` section of the node's configuration (node/config.py): the journal
directory is optional, resolved against the configuration file's directory, and an
unknown key is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from childreg.config import load_config
from childreg.errors import InvalidInput
from node.config import NodeConfig
from tests.unit.node.config_file import node_config


def config(tmp_path: Path, **backup: object) -> Path:
    """A node configuration file with ``backup`` as its [backup] section."""
    return node_config(tmp_path, "backup", backup)


def test_no_journal_unless_set(tmp_path: Path) -> None:
    """Without [backup] the node has no change journal."""
    assert load_config(NodeConfig, config(tmp_path)).backup.journal_dir is None


def test_a_relative_journal_dir_is_resolved_against_the_file(tmp_path: Path) -> None:
    """journal_dir = "../journal" names the directory beside the configuration's own."""
    (tmp_path / "etc").mkdir()
    cfg = load_config(NodeConfig, config(tmp_path / "etc", journal_dir="../journal"))
    assert cfg.backup.journal_dir == (tmp_path / "journal").resolve()


def test_an_unknown_backup_key_is_refused(tmp_path: Path) -> None:
    """A misspelt key in [backup] is refused, naming it."""
    with pytest.raises(InvalidInput) as refused:
        load_config(NodeConfig, config(tmp_path, journal_directory="/mnt/j"))
    assert any("journal_directory" in v.field for v in refused.value.violations)
