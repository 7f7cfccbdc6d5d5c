"""One exit-code table: every domain error exits the same whether raised here or by a server.

Locally, the error is raised inside a command run by the CLI's own entry point
(``tools.cli.main.main``); remotely, a real mutual-TLS server's handler raises it, the
boundary sends its status, and the CLI turns the failed call into its error
(``tools.clients.client.rpc_failure``). docs/cli.md shows the same table.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import typer

from childreg import errors
from childreg.authz import Authorizer
from childreg.errors import ChildregError, KeyProblem
from childreg.rpc import make_server, secure_channel
from childreg.v1 import records_pb2 as pb
from childreg.v1 import records_pb2_grpc as pb_grpc
from tests.conftest import FEDERATION, IssueFn, tls
from tools.cli import main as cli_main
from tools.clients import client

ROOT = Path(__file__).resolve().parents[2]
#: Every error class a caller can meet, and the catch-all base.
CLASSES = [*errors.STATUS_TABLE, ChildregError]


def make(cls: type[ChildregError]) -> ChildregError:
    """An instance of ``cls`` with a public message."""
    return KeyProblem("no key", "check the key") if cls is KeyProblem else cls("it failed")


def get_child(request: pb.ChildRef, context: grpc.ServicerContext) -> pb.ChildRecord:
    """RecordsService/GetChild that raises the error class named by the child id."""
    raise make(next(c for c in CLASSES if c.__name__ == request.child_id))


RAISING = grpc.method_handlers_generic_handler(
    "childreg.v1.RecordsService",
    {
        "GetChild": grpc.unary_unary_rpc_method_handler(
            get_child,
            request_deserializer=pb.ChildRef.FromString,
            response_serializer=pb.ChildRecord.SerializeToString,
        )
    },
)


@pytest.fixture(scope="module")
def stub(issue: IssueFn) -> Iterator[pb_grpc.RecordsServiceStub]:
    """A stub to a real mutual-TLS server (OS-chosen port) whose GetChild raises."""
    server, port = make_server(
        lambda s: s.add_generic_rpc_handlers((RAISING,)),
        tls=tls(issue("node", "alpha")),
        bind="127.0.0.1:0",
        authorizer=Authorizer(FEDERATION, department="alpha"),
    )
    channel = secure_channel(
        f"127.0.0.1:{port}",
        tls(issue("department-staff", "alpha.staff")),
        f"alpha.node.{FEDERATION}",
    )
    yield pb_grpc.RecordsServiceStub(channel)
    channel.close()
    server.stop(None)


def local_exit(cls: type[ChildregError], monkeypatch: pytest.MonkeyPatch) -> int:
    """The exit code of the CLI's entry point when a command raises ``cls``."""
    app = typer.Typer()

    @app.command()
    def fail() -> None:
        raise make(cls)

    monkeypatch.setattr(cli_main, "app", app)
    # main() configures logging for a whole process; keep this test process's as it is.
    monkeypatch.setattr("childreg.logsetup.configure", lambda *a, **k: None)
    monkeypatch.setattr("sys.argv", ["childreg"])
    with pytest.raises(SystemExit) as info:
        cli_main.main()
    return int(info.value.code or 0)


def remote_exit(cls: type[ChildregError], stub: pb_grpc.RecordsServiceStub) -> int:
    """The exit code of the CLI's error for a call whose server raised ``cls``."""
    with pytest.raises(grpc.RpcError) as info:
        stub.GetChild(pb.ChildRef(child_id=cls.__name__), timeout=10)
    return client.rpc_failure(info.value, "reading", "node").code


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_an_error_exits_the_same_locally_and_over_rpc(
    cls: type[ChildregError], stub: pb_grpc.RecordsServiceStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Raised in the CLI or by a server, an error class gives the one table's exit code."""
    expected = client.exit_code_of(cls)
    assert local_exit(cls, monkeypatch) == expected
    assert remote_exit(cls, stub) == expected


def test_the_table_has_the_documented_codes() -> None:
    """Resource limits are refusals (7), key problems 4, unknown errors 1, as documented."""
    assert client.exit_code_of(errors.ResourceExhausted) == client.EXIT_REFUSED
    assert client.exit_code_of(errors.KeyProblem) == client.EXIT_KEY
    assert client.exit_code_of(errors.ImportRejected) == client.EXIT_REJECTED
    assert client.exit_code_of(ChildregError) == client.EXIT_INTERNAL


def test_docs_cli_lists_every_class_with_its_code() -> None:
    """docs/cli.md's exit-code table names each error class in the row of its exit code."""
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    rows = {
        int(m.group(1)): m.group(2)
        for m in re.finditer(r"^\| (\d+) \|(.*)$", text, flags=re.MULTILINE)
    }
    for cls, code in client.EXIT_CODES.items():
        assert f"`{cls.__name__}`" in rows[code], (cls.__name__, code)
