"""The node's AuditLogService over real mutual TLS, and the auditor's commands against it.

Every call to the service is itself one "audit.read" leaf, appended before the answer:
the checkpoint an auditor verifies covers its own query.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import pytest
from structlog.testing import capture_logs
from typer.testing import CliRunner

from childreg.audit.leaf import AuditEvent
from childreg.authz import Authorizer
from childreg.pki import IdentityFiles
from childreg.rpc import make_server, secure_channel
from childreg.v1 import audit_pb2 as apb
from childreg.v1 import audit_pb2_grpc as apb_grpc
from node.audit.log import AuditLog
from node.audit.reads import LogReads
from node.audit.service import Audited
from node.crypto.keys import KekSource, Keyring, generate_key_file
from node.rpc.audit import AuditLogServicer
from node.store.memory import MemoryStore
from tests.conftest import FEDERATION, IssueFn, tls
from tools.cli.audit import app
from tools.clients.client import EXIT_REFUSED, EXIT_UNVERIFIED, EXIT_USAGE, CliError

DEPARTMENT = "alpha"
SERVER_NAME = f"{DEPARTMENT}.node.{FEDERATION}"
AUDITOR = f"spiffe://{FEDERATION}/auditor/inspector-1"
STAFF = f"spiffe://{FEDERATION}/department-staff/alpha.registrar-1"
SCHOOL = f"spiffe://{FEDERATION}/school/school-7"
CHILD = bytes(range(32))


@dataclass
class Node:
    """A running node serving only its audit log."""

    log: AuditLog
    store: MemoryStore
    address: str
    auditor: IdentityFiles

    def cli(self, *args: str, key: str | None = None) -> tuple[int, str, BaseException | None]:
        """Run `childreg audit …` against this node: (exit code, stdout, exception)."""
        command, *rest = args
        argv = [command, "--node-key", key or self.log.verifier_key, *rest]
        if command != "verify-bundle":
            argv += ["--node", self.address, "--identity", str(self.auditor.directory)]
            argv += ["--server-name", SERVER_NAME]
        with capture_logs():  # the in-process server's log lines stay out of stdout
            result = CliRunner().invoke(app, argv)
        exc = result.exception
        code = exc.code if isinstance(exc, CliError) else result.exit_code
        return code, result.stdout, exc

    def leaves(self) -> list[AuditEvent]:
        """Every leaf the node holds now."""
        return [AuditEvent.from_bytes(b) for b in self.log.entries(0, self.log.size)]


def populate(log: AuditLog) -> None:
    """A staff read, a denial, a break-glass read and a school reading three children."""
    log.append(actor=STAFF, action="child.read", subject=CHILD, purpose="case work")
    log.append(actor=SCHOOL, action="denied", purpose="/childreg.v1.RecordsService/GetChild",
               outcome="PERMISSION_DENIED")  # fmt: skip
    log.append(actor=STAFF, action="breakglass.read", subject=CHILD, purpose="emergency")
    for i in range(3):
        log.append(actor=SCHOOL, action="child.read", subject=bytes([i]) * 32, purpose="enrolment")


@pytest.fixture
def node(issue: IssueFn, tmp_path: Path) -> Iterator[Node]:
    """A node with a few leaves on a real mutual-TLS server (port chosen by the OS)."""
    store = MemoryStore()
    log = AuditLog(store, bytes(32), federation=FEDERATION, department=DEPARTMENT)
    populate(log)
    generate_key_file(tmp_path / "kek.key")
    keyring = Keyring.create(
        tmp_path / "keyring.json", KekSource.from_key_file(tmp_path / "kek.key")
    )
    reads = LogReads(Audited(store, keyring, log))
    server, port = make_server(
        partial(apb_grpc.add_AuditLogServiceServicer_to_server, AuditLogServicer(reads)),
        tls=tls(issue("node", DEPARTMENT)),
        bind="127.0.0.1:0",
        authorizer=Authorizer(FEDERATION, department=DEPARTMENT),
    )
    yield Node(log, store, f"127.0.0.1:{port}", issue("auditor", "inspector-1"))
    server.stop(None)


def stub_for(node: Node, files: IdentityFiles) -> tuple[grpc.Channel, apb_grpc.AuditLogServiceStub]:
    """A channel and stub to the node as the holder of ``files``."""
    channel = secure_channel(node.address, tls(files), SERVER_NAME)
    return channel, apb_grpc.AuditLogServiceStub(channel)


def test_each_call_is_one_audit_read_leaf_written_before_the_answer(node: Node) -> None:
    """Every method adds exactly one leaf by the caller; the checkpoint includes its own leaf."""
    channel, stub = stub_for(node, node.auditor)
    with channel:
        calls: list[tuple[Any, Any]] = [
            (stub.LatestCheckpoint, apb.CheckpointRequest()),
            (stub.GetEntries, apb.EntriesRequest(start=0, end=3)),
            (stub.InclusionProof, apb.InclusionRequest(index=1, tree_size=5)),
            (stub.ConsistencyProof, apb.ConsistencyRequest(old_size=2, new_size=5)),
        ]
        for method, request in calls:
            before = node.log.size
            reply = method(request, timeout=5)
            assert node.log.size == before + 1
            last = node.leaves()[-1]
            assert (last.actor, last.action, last.outcome) == (AUDITOR, "audit.read", "OK")
            assert last.subject == ""
            if isinstance(reply, apb.SignedCheckpoint):
                assert f"\n{before + 1}\n" in reply.note  # the size after this call's leaf


@pytest.mark.parametrize(
    ("method", "request_"),
    [
        ("GetEntries", apb.EntriesRequest(start=5, end=2)),
        ("GetEntries", apb.EntriesRequest(start=0, end=99)),
        ("GetEntries", apb.EntriesRequest(start=0, end=1001)),
        ("InclusionProof", apb.InclusionRequest(index=3, tree_size=3)),
        ("InclusionProof", apb.InclusionRequest(index=0, tree_size=99)),
        ("ConsistencyProof", apb.ConsistencyRequest(old_size=4, new_size=2)),
        ("ConsistencyProof", apb.ConsistencyRequest(old_size=1, new_size=99)),
    ],
)
def test_invalid_ranges_are_invalid_argument_and_logged(
    node: Node, method: str, request_: Any
) -> None:
    """A range outside the log is INVALID_ARGUMENT, and the refusal is still one leaf."""
    channel, stub = stub_for(node, node.auditor)
    before = node.log.size
    with channel, pytest.raises(grpc.RpcError) as caught:
        getattr(stub, method)(request_, timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert node.log.size == before + 1
    assert node.leaves()[-1].outcome == "INVALID_ARGUMENT"


def test_a_range_ending_at_the_callers_own_leaf_is_served(node: Node) -> None:
    """The answer is computed after the append, so the newest leaf is the caller's own."""
    channel, stub = stub_for(node, node.auditor)
    size = node.log.size
    with channel:
        reply = stub.GetEntries(apb.EntriesRequest(start=size, end=size + 1), timeout=5)
    assert AuditEvent.from_bytes(reply.leaves[0]).action == "audit.read"


def test_a_school_may_not_read_the_log_and_leaves_no_read_leaf(node: Node, issue: IssueFn) -> None:
    """Only auditors and witnesses may call; a refused caller never reaches the log."""
    before = node.log.size
    channel, stub = stub_for(node, issue("school", "school-7"))
    with channel, pytest.raises(grpc.RpcError) as caught:
        stub.LatestCheckpoint(apb.CheckpointRequest(), timeout=5)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert node.log.size == before


def test_verify_ok_and_its_own_queries_are_in_the_log(node: Node, tmp_path: Path) -> None:
    """`audit verify` verifies; it reads one checkpoint and one page (two leaves), then with
    --state it also proves consistency with the previous run (three leaves)."""
    before = node.log.size
    code, stdout, exc = node.cli("verify", "--json")
    assert code == 0, exc
    data = json.loads(stdout)
    assert data["ok"] is True
    assert data["size"] == before + 1  # its own LatestCheckpoint leaf is covered
    assert node.log.size == before + 2
    state = tmp_path / "state"
    assert node.cli("verify", "--state", str(state))[0] == 0
    code, stdout, exc = node.cli("verify", "--state", str(state), "--json")
    assert code == 0, exc
    assert json.loads(stdout)["previous_size"] == before + 3
    assert node.log.size == before + 2 + 2 + 3
    code, stdout, _ = node.cli("verify")
    assert "OK" in stdout


def test_verify_detects_an_edited_leaf_and_a_wrong_key(node: Node, issue: IssueFn) -> None:
    """An insider's edit of a stored leaf, or a key that is not the node's, fails with 8."""
    code, stdout, exc = node.cli("verify", "--json", key=AuditLog(
        MemoryStore(), bytes([5]) * 32, federation=FEDERATION, department=DEPARTMENT
    ).verifier_key)  # fmt: skip
    assert code == EXIT_UNVERIFIED, exc
    assert json.loads(stdout)["problems"][0]["code"] == "bad-signature"
    node.store._state.leaves[1] = node.store._state.leaves[1].replace(b"school-7", b"school-8")
    code, stdout, _ = node.cli("verify", "--json")
    assert code == EXIT_UNVERIFIED
    assert [p["code"] for p in json.loads(stdout)["problems"]] == ["root-mismatch"]
    assert node.cli("verify", key="not a key")[0] == EXIT_USAGE


def test_a_rewritten_log_is_refused_and_both_notes_kept(node: Node, tmp_path: Path) -> None:
    """A node whose new checkpoint does not extend the saved one is reported as rewritten,
    with both signed notes in the state directory; the saved checkpoint stays the old one."""
    state = tmp_path / "state"
    assert node.cli("verify", "--state", str(state))[0] == 0
    saved = next(state.glob("*.checkpoint")).read_text(encoding="utf-8")
    forked = MemoryStore()  # the same node key, a different history
    node.log._store = forked  # the insider swaps the database
    for _ in range(40):
        node.log.append(actor=STAFF, action="child.update", subject=CHILD)
    code, stdout, exc = node.cli("verify", "--state", str(state), "--json")
    assert code == EXIT_UNVERIFIED, exc
    data = json.loads(stdout)
    assert data["rewritten"] is True
    evidence = Path(data["evidence"])
    assert (evidence / "previous.checkpoint").read_text(encoding="utf-8") == saved
    assert (
        (evidence / "new.checkpoint")
        .read_text(encoding="utf-8")
        .startswith("childreg.test.childreg/alpha\n")
    )
    assert next(state.glob("*.checkpoint")).read_text(encoding="utf-8") == saved


def test_search_by_child_actor_action_and_time(node: Node) -> None:
    """`audit search` lists only the leaves matching every filter, after verifying."""
    code, stdout, exc = node.cli("search", "--subject", CHILD.hex(), "--json")
    assert code == 0, exc
    found = json.loads(stdout)["matches"]
    assert [(m["actor"], m["action"]) for m in found] == [
        (STAFF, "child.read"),
        (STAFF, "breakglass.read"),
    ]
    code, stdout, _ = node.cli("search", "--actor", SCHOOL, "--action", "child.read", "--json")
    assert len(json.loads(stdout)["matches"]) == 3
    code, stdout, _ = node.cli("search", "--until", "2000-01-01", "--json")
    assert json.loads(stdout)["matches"] == []
    code, stdout, _ = node.cli("search", "--since", "2000-01-01T00:00:00+02:00")
    assert code == 0
    assert "matching leaves" in stdout
    assert node.cli("search", "--subject", "xyz")[0] == EXIT_USAGE
    assert node.cli("search", "--action", "child.delete")[0] == EXIT_USAGE


def test_report_counts_denials_and_anomalies(node: Node) -> None:
    """`audit report` counts accesses, lists denials, flags a busy school and break-glass."""
    code, stdout, exc = node.cli("report", "--school-limit", "2", "--json")
    assert code == 0, exc
    data = json.loads(stdout)
    assert {"actor": SCHOOL, "action": "child.read", "purpose": "enrolment", "count": 3} in data[
        "accesses"
    ]
    assert [d["actor"] for d in data["denials"]] == [SCHOOL]
    kinds = sorted(a["kind"] for a in data["anomalies"])
    assert kinds == ["breakglass", "school-many-children"]
    code, stdout, _ = node.cli("report")
    assert code == 0
    assert "Anomalies (1)" in stdout  # the default limit of 20 is not reached
    assert "breakglass" in stdout


def test_bundle_and_offline_verification(node: Node, tmp_path: Path) -> None:
    """`audit bundle` writes evidence with inclusion proofs; `verify-bundle` checks it offline,
    and a changed leaf in the file makes it fail."""
    path = tmp_path / "evidence.json"
    code, _, exc = node.cli("bundle", "--out", str(path), "--leaf", "0", "--leaf", "4")
    assert code == 0, exc
    data = json.loads(path.read_text(encoding="utf-8"))
    assert [p["index"] for p in data["inclusion_proofs"]] == [0, 4]
    code, stdout, exc = node.cli("verify-bundle", str(path), "--json")
    assert code == 0, exc
    assert json.loads(stdout)["size"] == len(data["leaves"])
    data["leaves"][2] = data["leaves"][3]
    path.write_text(json.dumps(data), encoding="utf-8")
    code, stdout, _ = node.cli("verify-bundle", str(path))
    assert code == EXIT_UNVERIFIED
    assert "FAILED" in stdout
    assert node.cli("bundle", "--out", str(path), "--leaf", "999")[0] == EXIT_USAGE


def test_a_refused_auditor_gets_the_refused_exit_code(node: Node, issue: IssueFn) -> None:
    """A caller whose role may not read the log gets EXIT_REFUSED from the CLI."""
    staff = issue("department-staff", "alpha.registrar-1")
    result = CliRunner().invoke(
        app,
        ["verify", "--node", node.address, "--node-key", node.log.verifier_key,
         "--identity", str(staff.directory), "--server-name", SERVER_NAME],
    )  # fmt: skip
    assert isinstance(result.exception, CliError)
    assert result.exception.code == EXIT_REFUSED
