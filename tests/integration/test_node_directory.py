"""A node whose department the country profile's directory lacks says so at start-up."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from childreg.profile import embedded
from node.config import NodeConfig
from node.server import start_node
from tools.dev.directory import with_directory
from tools.dev.federation import LocalFederation
from tools.dev.synth import DepartmentPlan

DEPT = DepartmentPlan("alpha", "Alpha", "baku", ("nasimi",))


def started_events(root: Path, listed: str) -> list[str]:
    """The events a real node of department alpha logs at start-up when the signed
    profile's directory lists department ``listed``."""
    profile = with_directory(embedded(), [(listed, "baku")])
    fed = LocalFederation(root / "fed", [DEPT], profile=profile)
    fed.setup()
    config = NodeConfig.model_validate(tomllib.loads(fed.nodes[DEPT.id].config.read_text()))
    with capture_logs() as logs:
        node = start_node(config)
        node.stop(grace=0)
    return [str(entry["event"]) for entry in logs]


@pytest.mark.parametrize(("listed", "warned"), [("beta", True), ("alpha", False)])
def test_a_department_missing_from_the_directory_is_warned_about(
    tmp_path: Path, listed: str, warned: bool
) -> None:
    """Start-up logs node.not_in_directory only when the directory lacks the department."""
    assert ("node.not_in_directory" in started_events(tmp_path, listed)) is warned
