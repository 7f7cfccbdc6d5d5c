"""`childreg child …` asks for what is missing on a terminal, and sends values as typed.

The client functions are replaced by recorders (one layer under test: the commands); the
commands against a real node are in tests/e2e/test_child_cli.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from childreg.search import Registration
from tools.cli import child as cli_child
from tools.cli.main import app
from tools.clients import records
from tools.clients.client import EXIT_USAGE, CliError

ENDPOINT = ["--node", "127.0.0.1:1", "--identity", "/nonexistent"]


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """What the commands hand their client functions."""
    calls: list[Any] = []
    monkeypatch.setattr(records, "record_care_setting", lambda _e, fields: calls.append(fields))

    def register(_e: object, fields: object, *, not_duplicate_reason: str | None) -> Registration:
        calls.append((fields, not_duplicate_reason))
        return Registration(registered=True)

    monkeypatch.setattr(records, "register_child", register)
    return calls


def test_on_a_terminal_missing_values_are_asked_for(
    sent: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`child care` with nothing but the endpoint asks for the id, setting and date in turn."""
    monkeypatch.setattr(cli_child, "on_terminal", lambda: True)
    result = CliRunner().invoke(app, ["child", "care", *ENDPOINT], input="K1\nfamily\n2024-03-01\n")
    assert result.exit_code == 0, result.output
    assert sent == [{"child_id": "K1", "care_setting": "family", "since": "2024-03-01"}]


def test_off_a_terminal_nothing_is_asked_and_nothing_sent(
    sent: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Off a terminal, `child register` missing values exits 2 naming each, sending nothing."""
    monkeypatch.setattr(cli_child, "on_terminal", lambda: False)
    result = CliRunner().invoke(
        app, ["child", "register", "K1", "--given-name", "Aysel", *ENDPOINT]
    )
    assert result.exit_code != 0
    assert isinstance(result.exception, CliError)
    assert result.exception.code == EXIT_USAGE
    assert str(result.exception) == "missing --family-name, --born, --sex, --district"
    assert sent == []


def test_register_sends_what_was_typed_and_the_reason(sent: list[Any]) -> None:
    """Codes and dates go to the node unchecked (the node validates); absent ones as ""."""
    args = ["child", "register", "K1", "--given-name", "Aysel", "--family-name", "Məmmədova",
            "--born", "2016-04-02", "--sex", "female", "--district", "anywhere",
            "--not-duplicate", "twin sister", *ENDPOINT]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    [(fields, reason)] = sent
    assert fields["district"] == "anywhere"
    assert fields["national_id"] == ""
    assert reason == "twin sister"
