"""Erasing a child through the RecordsService over mutual TLS on a real SQLCipher store.

Department staff erase a child: the answer carries the guardian's receipt, the call is one
``child.erase`` leaf naming only the pseudonym and the reason code, and every later read
is NOT_FOUND with the reason Erased. Any other role is refused at the door.
"""

from __future__ import annotations

import json

import grpc
import pytest

from childreg import codes
from childreg.errors import Erased
from childreg.rpc import error_class_of, secure_channel
from childreg.v1 import records_pb2 as pb
from childreg.v1 import records_pb2_grpc as pb_grpc
from tests.conftest import FEDERATION, IssueFn, tls
from tests.integration.test_find_and_register import SERVER_NAME, Node, child, node, register

__all__ = ["node"]  # the fixture

STAFF = f"spiffe://{FEDERATION}/department-staff/alpha.registrar-1"


def test_staff_erase_a_child_and_every_read_answers_erased(node: Node) -> None:
    """EraseChild returns the receipt, leaves one leaf, and GetChild is then Erased."""
    s = node.stub
    assert register(node, child("C1", "Aysel", "Məmmədova")).registered
    s.RecordPlacement(
        pb.Placement(child_id="C1", academic_year="2023/24", education_form="inclusive_class"),
        timeout=10,
    )
    pseudonym = node.keyring.pseudonym("C1").hex()
    n = len(node.leaves())

    reply = s.EraseChild(pb.Erasure(child_id="C1", reason="guardian_request"), timeout=10)
    assert reply.pseudonym == pseudonym
    receipt = json.loads(reply.receipt_json)
    assert (receipt["receipt"], receipt["pseudonym"], receipt["reason"]) == (
        "erasure",
        pseudonym,
        "guardian_request",
    )
    assert {item["kind"] for item in receipt["erased"]} >= {"identity", "placements"}
    assert pseudonym in reply.receipt_html

    (leaf,) = node.leaves()[n:]
    assert (leaf.action, leaf.subject, leaf.actor, leaf.purpose, leaf.outcome) == (
        "child.erase",
        pseudonym,
        STAFF,
        "guardian_request",
        "OK",
    )
    assert "Aysel" not in json.dumps(leaf.__dict__)

    with pytest.raises(grpc.RpcError) as caught:
        s.GetChild(pb.ChildRef(child_id="C1"), timeout=10)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_class_of(caught.value) is Erased
    assert "erased" in (caught.value.details() or "")
    ref = codes.reference_date("2023/24")
    assert node.store.count_table("2023/24", ref, ["sex"]) == {}


def test_a_bad_reason_is_refused_and_nothing_is_erased(node: Node) -> None:
    """A reason outside the codes is INVALID_ARGUMENT; the child is still held."""
    assert register(node, child("C1", "Aysel", "Məmmədova")).registered
    with pytest.raises(grpc.RpcError) as caught:
        node.stub.EraseChild(pb.Erasure(child_id="C1", reason="because I say so"), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert node.store.get_child("C1") is not None
    assert node.leaves()[-1].purpose == ""  # free text never reaches a leaf


def test_a_receipt_in_russian_with_its_pdf_and_an_unknown_language_erases_nothing(
    node: Node,
) -> None:
    """The receipt comes in the language asked for, with its PDF; a language childreg does
    not speak is INVALID_ARGUMENT before anything is erased."""
    assert register(node, child("C1", "Aysel", "Məmmədova")).registered
    assert register(node, child("C2", "Leyla", "Həsənova")).registered
    with pytest.raises(grpc.RpcError) as caught:
        node.stub.EraseChild(
            pb.Erasure(child_id="C1", reason="guardian_request", language="xx"), timeout=10
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "language" in (caught.value.details() or "")
    assert node.store.get_child("C1") is not None
    reply = node.stub.EraseChild(
        pb.Erasure(child_id="C2", reason="registered_in_error", language="ru"), timeout=10
    )
    assert "Запись удалена" in reply.receipt_html
    assert "spiffe://" not in reply.receipt_html
    assert reply.receipt_pdf.startswith(b"%PDF-")
    assert json.loads(reply.receipt_json)["language"] == "ru"


def test_only_department_staff_may_erase(node: Node, issue: IssueFn) -> None:
    """An auditor's or a school's EraseChild is PERMISSION_DENIED and erases nothing."""
    assert register(node, child("C1", "Aysel", "Məmmədova")).registered
    for role, name in (("auditor", "a1"), ("school", "s1")):
        channel = secure_channel(node.address, tls(issue(role, name)), SERVER_NAME)
        try:
            with pytest.raises(grpc.RpcError) as caught:
                pb_grpc.RecordsServiceStub(channel).EraseChild(
                    pb.Erasure(child_id="C1", reason="guardian_request"), timeout=10
                )
            assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        finally:
            channel.close()
    assert node.store.get_child("C1") is not None
