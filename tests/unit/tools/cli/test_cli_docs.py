"""Every `childreg` command has --help and is documented; example configurations are valid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from childreg.config import load_config
from coordinator.config import CoordinatorConfig
from node.config import NodeConfig
from tools.cli.main import app

ROOT = Path(__file__).resolve().parents[4]


def command_paths() -> list[tuple[str, ...]]:
    root = typer.main.get_command(app)
    paths: list[tuple[str, ...]] = []

    def walk(cmd: Any, path: tuple[str, ...]) -> None:
        if hasattr(cmd, "commands"):  # a group (typer vendors click; no isinstance against it)
            for name, sub in cmd.commands.items():
                walk(sub, (*path, name))
        else:
            paths.append(path)

    walk(root, ())
    return paths


COMMANDS = command_paths()


def test_the_command_tree_is_what_the_docs_promise() -> None:
    """The CLI has the commands of every person (a guard against an empty walk)."""
    expected = {("demo",), ("synth",), ("bench",), ("node", "import"), ("stats", "table")}
    expected |= {("coordinator", "serve"), ("node", "serve"), ("pki", "issue")}
    assert expected <= set(COMMANDS)


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    """`childreg … --help` exits 0 and describes the command."""
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_is_documented(path: tuple[str, ...]) -> None:
    """Every command appears in docs/cli.md as `childreg <command>`."""
    assert f"childreg {' '.join(path)}" in (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["node.example.toml"])
def test_example_node_config_is_valid(name: str) -> None:
    """The shipped node configuration example validates."""
    cfg = load_config(NodeConfig, ROOT / "deploy" / "config" / name)
    assert cfg.kek_file is not None


def test_example_coordinator_config_is_valid() -> None:
    """The shipped coordinator configuration example validates."""
    cfg = load_config(CoordinatorConfig, ROOT / "deploy" / "config" / "coordinator.example.yaml")
    assert [d.id for d in cfg.departments] == ["baku", "ganja_dashkasan", "nakhchivan"]
    assert cfg.aggregation == "secure"
    assert cfg.roster_file is not None
    assert cfg.roster_file.name == "roster.signed.json"


def test_example_catalogue_is_the_demos_default() -> None:
    """deploy/config/catalogue.toml and the embedded default catalogue are the same tables."""
    from childreg.catalogue import load_catalogue
    from tools.dev.federation import default_catalogue

    shipped = load_catalogue(ROOT / "deploy" / "config" / "catalogue.toml")
    embedded = default_catalogue(shipped.federation, shipped.version)
    assert shipped.canonical_bytes() == embedded.canonical_bytes()
