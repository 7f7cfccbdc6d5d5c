"""ConsentService over real mutual TLS, driven by `childreg consent …` as department staff.

Each RPC leaves exactly one audit leaf (grant and withdrawal commit with theirs); a school
calling the staff's service is refused before the servicer runs.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import grpc
import pytest
from structlog.testing import capture_logs
from typer.testing import CliRunner

from childreg.audit.leaf import AuditEvent
from childreg.authz import Authorizer
from childreg.models import ChildIn
from childreg.pki import IdentityFiles
from childreg.rpc import make_server, secure_channel
from childreg.v1 import consent_pb2 as cpb
from childreg.v1 import consent_pb2_grpc as cpb_grpc
from node.audit.log import AuditLog
from node.audit.service import Audited
from node.consent.desk import GRANT_RE, ConsentDesk
from node.crypto.keys import KekSource, Keyring, generate_key_file
from node.records.registry import Registry
from node.rpc.consent import ConsentServicer
from node.store.memory import MemoryStore
from tests.conftest import FEDERATION, IssueFn, tls
from tools.cli.consent import app
from tools.clients.client import EXIT_REFUSED, EXIT_REJECTED, CliError

DEPARTMENT = "alpha"
SERVER_NAME = f"{DEPARTMENT}.node.{FEDERATION}"
STAFF = f"spiffe://{FEDERATION}/department-staff/alpha.registrar-1"
SCHOOL = f"spiffe://{FEDERATION}/school/school-7"
GUARDIAN = "Leyla Planted-Guardian"


@dataclass
class Node:
    """A running node serving ConsentService, with one child C1."""

    store: MemoryStore
    keyring: Keyring
    log: AuditLog
    address: str
    staff: IdentityFiles
    school: IdentityFiles

    def cli(self, *args: str, who: IdentityFiles | None = None) -> tuple[int, str, object]:
        """Run `childreg consent …`: (exit code, stdout, exception)."""
        command, *rest = args
        ident = who or self.staff
        argv = [command, *rest, "--node", self.address, "--identity", str(ident.directory)]
        argv += ["--server-name", SERVER_NAME]
        with capture_logs():
            result = CliRunner().invoke(app, argv)
        exc = result.exception
        code = exc.code if isinstance(exc, CliError) else result.exit_code
        return code, result.stdout, exc

    def leaves(self) -> list[AuditEvent]:
        """Every leaf the node holds now."""
        return [AuditEvent.from_bytes(b) for b in self.log.entries(0, self.log.size)]


@pytest.fixture
def node(issue: IssueFn, tmp_path: Path) -> Iterator[Node]:
    """A real mutual-TLS server with the consent servicer (port chosen by the OS)."""
    store = MemoryStore()
    generate_key_file(tmp_path / "kek.key")
    keyring = Keyring.create(
        tmp_path / "keyring.json", KekSource.from_key_file(tmp_path / "kek.key")
    )
    Registry(store, keyring).register_child(
        ChildIn(child_id="C1", given_name="Aysel", family_name="M", sex="female",
                date_of_birth=dt.date(2015, 3, 14), district="nasimi")
    )  # fmt: skip
    log = AuditLog(store, bytes(32), federation=FEDERATION, department=DEPARTMENT)
    servicer = ConsentServicer(
        ConsentDesk(store, keyring, FEDERATION), Audited(store, keyring, log)
    )
    server, port = make_server(
        partial(cpb_grpc.add_ConsentServiceServicer_to_server, servicer),
        tls=tls(issue("node", DEPARTMENT)),
        bind="127.0.0.1:0",
        authorizer=Authorizer(FEDERATION, department=DEPARTMENT),
    )
    yield Node(
        store, keyring, log, f"127.0.0.1:{port}",
        issue("department-staff", "alpha.registrar-1"), issue("school", "school-7"),
    )  # fmt: skip
    server.stop(None)


def grant_args(**changes: str) -> list[str]:
    """`consent grant` options for a valid consent starting today."""
    today = dt.date.today()
    opts = {
        "--child": "C1",
        "--guardian": GUARDIAN,
        "--purpose": "iep_preparation",
        "--school": SCHOOL,
        "--from": today.isoformat(),
        "--until": (today + dt.timedelta(days=180)).isoformat(),
        "--evidence": "folder 12",
    } | changes
    return ["grant", *[x for kv in opts.items() for x in kv]]


def test_staff_grant_list_show_withdraw_each_one_leaf(node: Node, tmp_path: Path) -> None:
    """The whole desk round through the CLI; every RPC is exactly one OK leaf by the staff."""
    receipts = tmp_path / "receipts"
    size = node.log.size
    code, out, exc = node.cli(*grant_args(), "--receipt-dir", str(receipts), "--json")
    assert code == 0, (out, exc)
    granted = json.loads(out)
    consent_id, token = granted["consent"]["consent_id"], granted["grant"]
    assert GRANT_RE.fullmatch(token)
    assert "secure" in granted["notice"]
    assert node.store.extract_source(node.keyring.grant_hash(token), "2024/25") is not None
    assert GUARDIAN in (receipts / f"{consent_id}-grant.html").read_text()
    assert (receipts / f"{consent_id}-grant.pdf").read_bytes().startswith(b"%PDF-")
    school = json.loads((receipts / f"{consent_id}-grant.json").read_text())["school"]
    assert school["id"] == SCHOOL.rsplit("/", 1)[1]
    assert node.log.size == size + 1

    code, out, _ = node.cli("list", "--child", "C1", "--json")
    assert code == 0
    assert [c["consent_id"] for c in json.loads(out)["consents"]] == [consent_id]
    code, out, _ = node.cli("show", consent_id)
    assert code == 0
    assert consent_id in out
    assert token not in out
    code, out, _ = node.cli("withdraw", consent_id, "--receipt-dir", str(receipts))
    assert code == 0
    assert "withdrew" in out
    assert (receipts / f"{consent_id}-withdrawal.html").exists()
    assert (receipts / f"{consent_id}-withdrawal.pdf").exists()
    code, out, _ = node.cli("withdraw", consent_id)
    assert code == EXIT_REFUSED  # already withdrawn

    leaves = node.leaves()[size:]
    assert [(e.action, e.outcome) for e in leaves] == [
        ("consent.grant", "OK"),
        ("child.read", "OK"),
        ("child.read", "OK"),
        ("consent.withdraw", "OK"),
        ("consent.withdraw", "FAILED_PRECONDITION"),
    ]
    assert {e.actor for e in leaves} == {STAFF}
    subject = node.keyring.pseudonym("C1").hex()
    assert all(e.subject == subject for e in leaves)
    assert all(GUARDIAN.encode() not in b for b in node.log.entries(0, node.log.size))


def test_grant_token_only_in_the_grant_answer(node: Node) -> None:
    """Human output shows the grant once with the advice to hand it over securely."""
    code, out, _ = node.cli(*grant_args())
    assert code == 0
    assert "grant:" in out
    assert "secure channel" in out
    token = out.split("grant:")[1].split()[0]
    consent_id = out.split("consent id:")[1].split()[0]
    _, shown, _ = node.cli("show", consent_id, "--json")
    _, listed, _ = node.cli("list", "--child", "C1", "--json")
    assert token not in shown
    assert token not in listed


def test_receipts_are_written_by_default_in_the_chosen_language(
    node: Node, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --receipt-dir the CLI writes the receipt's HTML and PDF (and JSON) under
    $XDG_DATA_HOME/childreg/receipts, in the language chosen at the grant, which the
    withdrawal's receipt keeps."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    home = tmp_path / "data" / "childreg" / "receipts"
    code, out, exc = node.cli(*grant_args(), "--language", "ru", "--json")
    assert code == 0, (out, exc)
    granted = json.loads(out)
    consent_id = granted["consent"]["consent_id"]
    stem = home / f"{consent_id}-grant"
    assert sorted(granted["receipt_files"]) == sorted(
        str(stem) + suffix for suffix in (".html", ".json", ".pdf")
    )
    page = Path(f"{stem}.html").read_text()
    assert "Согласие дано" in page
    assert "spiffe://" not in page
    assert Path(f"{stem}.pdf").read_bytes().startswith(b"%PDF-")
    assert Path(f"{stem}.pdf").stat().st_mode & 0o077 == 0
    code, _, _ = node.cli("withdraw", consent_id)
    assert code == 0
    withdrawn = (home / f"{consent_id}-withdrawal.html").read_text()
    assert "Согласие отозвано" in withdrawn
    assert "Что перестаёт передаваться" in withdrawn
    assert (home / f"{consent_id}-withdrawal.pdf").exists()


def test_invalid_and_unknown_are_rejected_with_one_leaf_each(node: Node) -> None:
    """Field errors come back named (an unknown receipt language too); an unknown child is
    NOT_FOUND; each is one leaf."""
    size = node.log.size
    code, _, exc = node.cli(*grant_args(**{"--school": "spiffe://other/school/x"}))
    assert code == EXIT_REJECTED
    assert isinstance(exc, CliError)
    assert "school" in {v.field for v in exc.violations}
    assert GUARDIAN not in str(exc)
    code, _, _ = node.cli(*grant_args(**{"--child": "C404"}))
    assert code == EXIT_REJECTED
    code, _, exc = node.cli(*grant_args(), "--language", "xx")
    assert code == EXIT_REJECTED
    assert isinstance(exc, CliError)
    assert {v.field for v in exc.violations} == {"language"}
    assert node.store.consents_of("C1") == []
    assert [(e.action, e.outcome) for e in node.leaves()[size:]] == [
        ("consent.grant", "INVALID_ARGUMENT"),
        ("consent.grant", "NOT_FOUND"),
        ("consent.grant", "INVALID_ARGUMENT"),
    ]


def test_a_school_is_refused(node: Node) -> None:
    """A school may not call the staff's consent service: PERMISSION_DENIED, nothing stored."""
    channel = secure_channel(node.address, tls(node.school), SERVER_NAME)
    with channel, pytest.raises(grpc.RpcError) as caught:
        cpb_grpc.ConsentServiceStub(channel).ListConsents(
            cpb.ChildConsentsRequest(child_id="C1"), timeout=5
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    code, _, _ = node.cli(*grant_args(), who=node.school)
    assert code == EXIT_REFUSED
    assert node.store.consents_of("C1") == []
