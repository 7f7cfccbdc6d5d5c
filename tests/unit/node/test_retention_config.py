"""The ``[retention]`` section of the node's configuration (node/config.py).

Both rules are optional and off by default; a bad value is refused naming its field; the
scheduled run is on only when a rule is set.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from childreg.config import load_config
from childreg.errors import InvalidInput
from node.config import NodeConfig
from tests.unit.node.config_file import node_config


def config(tmp_path: Path, **retention: object) -> Path:
    """A node configuration file with ``retention`` as its [retention] section."""
    return node_config(tmp_path, "retention", retention)


def test_rules_are_off_unless_set(tmp_path: Path) -> None:
    """Without [retention] no rule is set and the serving node runs none."""
    cfg = load_config(NodeConfig, config(tmp_path))
    assert not cfg.retention.any_rule
    assert not cfg.retention.scheduled_run


def test_rules_set_turn_the_scheduled_run_on(tmp_path: Path) -> None:
    """Setting a rule turns the daily scheduled run on, unless scheduled is false."""
    cfg = load_config(NodeConfig, config(tmp_path, erase_years_after_closed=5, erase_at_age=23))
    assert (cfg.retention.erase_years_after_closed, cfg.retention.erase_at_age) == (5, 23)
    assert cfg.retention.scheduled_run
    assert cfg.retention.run_every_hours == 24
    off = load_config(NodeConfig, config(tmp_path, erase_at_age=23, scheduled=False))
    assert not off.retention.scheduled_run


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("erase_at_age", 17),
        ("erase_years_after_closed", 0),
        ("run_every_hours", 0),
        ("erase_after", 3),
    ],
)
def test_a_bad_value_is_refused_naming_its_field(tmp_path: Path, field: str, value: int) -> None:
    """An age under 18, a non-positive period or an unknown key is refused naming the field."""
    with pytest.raises(InvalidInput) as caught:
        load_config(NodeConfig, config(tmp_path, **{field: value}))
    assert [v.field for v in caught.value.violations] == [f"retention.{field}"]
