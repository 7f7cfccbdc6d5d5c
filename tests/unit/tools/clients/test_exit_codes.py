"""The exit-code table seen from the client alone: statuses without the error's class, the
documented table, and failures outside the hierarchy (tests/integration/test_exit_codes.py
checks every class raised locally and by a real server)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import grpc
import pytest
import typer

import tools.cli.main as cli_main
from childreg.errors import STATUS_TABLE, ChildregError, Unavailable, error_class_for
from tools.clients import client
from tools.clients.client import EXIT_CODES, EXIT_INTERNAL, exit_code_of, rpc_failure

ROOT = Path(__file__).resolve().parents[4]


class FakeRpcError(grpc.RpcError):
    """A failed call carrying only a status and details (no ErrorInfo, e.g. via a proxy)."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self._code = code
        self._details = details

    def code(self) -> grpc.StatusCode:
        """The status the server sent."""
        return self._code

    def details(self) -> str:
        """The public message the server sent."""
        return self._details

    def trailing_metadata(self) -> Any:
        """No rich status details."""
        return ()


@pytest.mark.parametrize("code", list(grpc.StatusCode), ids=lambda c: c.name)
def test_a_status_without_its_class_exits_as_the_most_general_class_of_that_status(
    code: grpc.StatusCode,
) -> None:
    """With no ErrorInfo, a status exits as the first class of the status table that has it
    (DEADLINE_EXCEEDED as Unavailable, any other status 1)."""
    failure = rpc_failure(FakeRpcError(code, "details"), "the call", "localhost:1")
    listed = [cls for cls in STATUS_TABLE if cls.status == code]
    if listed:
        expected = exit_code_of(listed[0])
    elif code == grpc.StatusCode.DEADLINE_EXCEEDED:
        expected = exit_code_of(Unavailable)
    else:
        expected = EXIT_INTERNAL
    assert failure.code == expected == exit_code_of(error_class_for(code))


def test_an_unexpected_exception_exits_1_without_quoting_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An exception outside the hierarchy exits 1 with one line that does not quote it."""
    app = typer.Typer()

    @app.command()
    def fail() -> None:
        raise ZeroDivisionError("a value from a record")

    monkeypatch.setattr(cli_main, "app", app)
    monkeypatch.setattr("childreg.logsetup.configure", lambda *a, **k: None)
    monkeypatch.setattr("sys.argv", ["childreg"])
    monkeypatch.delenv("CHILDREG_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exited:
        cli_main.main()
    assert exited.value.code == EXIT_INTERNAL
    shown = capsys.readouterr().err
    assert "unexpected ZeroDivisionError" in shown
    assert "a value from a record" not in shown
    assert "Traceback" not in shown


def documented() -> dict[int, set[str]]:
    """docs/cli.md's exit-code table: each code and the error classes its row names."""
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    section = text.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    rows: dict[int, set[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0].isdigit():
            rows[int(cells[0])] = set(re.findall(r"`([A-Za-z]+)`", cells[2]))
    return rows


def test_the_documented_table_is_exactly_the_code_table() -> None:
    """docs/cli.md has a row for every exit code and names in each row exactly the error
    classes the code table maps to it."""
    rows = documented()
    constants = {v for k, v in vars(client).items() if k.startswith("EXIT_") and type(v) is int}
    assert set(rows) == constants
    for code, names in rows.items():
        expected = {cls.__name__ for cls, c in EXIT_CODES.items() if c == code}
        assert names == expected, code
    assert all(issubclass(cls, ChildregError) for cls in EXIT_CODES)
