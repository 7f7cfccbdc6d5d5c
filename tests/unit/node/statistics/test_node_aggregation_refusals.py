"""What a node refuses in secure aggregation, before reading a record or charging anything.

Bad rosters and participant sets, strangers and stale keys, a table already released the
other way, an exhausted budget; and the servicer: malformed requests, the wrong mode, one
audit leaf per share. Successful rounds are in test_node_aggregation.py.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import grpc
import pytest
from nacl.signing import SigningKey
from structlog.testing import capture_logs

from childreg.audit.leaf import AuditEvent
from childreg.errors import (
    ChildregError,
    FailedPrecondition,
    InvalidInput,
    PermissionDenied,
    ResourceExhausted,
    status_for,
)
from childreg.models import NoisyTableQuestion
from childreg.secagg.roster import KIND, Participation, parse_roster, sign_roster
from childreg.signed import canonical_json, sign_document
from childreg.v1 import statistics_pb2 as spb
from node.audit.log import AuditLog
from node.audit.service import Audited
from node.rpc.statistics import StatisticsServicer
from node.statistics.aggregation import Readiness, roster_entry
from tests.conftest import authority_key
from tests.unit.secagg_nodes import (
    CALLER,
    FEDERATION,
    YEAR,
    Node,
    make_keyring,
    make_node,
    ready_question,
    roster_object,
    round_id,
    run_round,
    share_question,
    signed_catalogue,
    signed_roster,
)

TABLE = "sex_by_age"


@pytest.fixture
def nodes(tmp_path: Path) -> list[Node]:
    """Departments a, b, c, d with a few children each, on in-memory stores."""
    return [make_node(d, make_keyring(tmp_path / d), children=12) for d in "abcd"]


def untouched(node: Node) -> bool:
    """Nothing charged, no set recorded."""
    return node.ledger() == [] and node.store.participation(YEAR) is None


def never_count(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make reading the node's records fail the test."""

    def counted(*_: object) -> None:
        raise AssertionError("the records were read")

    monkeypatch.setattr(node.store, "count_table", counted)


def forged(content: dict[str, Any], key: SigningKey | None = None) -> bytes:
    """A roster document signed as it stands (by the test authority unless ``key``)."""
    signer = key if key is not None else authority_key()
    return sign_document(KIND, content, canonical_json(content), signer)


def altered(blob: bytes) -> bytes:
    """The signed roster with its version changed after signing."""
    document = json.loads(blob)
    document["roster"]["version"] += 1
    return json.dumps(document).encode()


BadRound = Callable[[list[Node]], tuple[bytes, str]]
BAD_ROUNDS: dict[str, tuple[BadRound, type[ChildregError]]] = {
    "altered roster": (lambda ns: (altered(signed_roster(ns)), "abcd"), PermissionDenied),
    "other authority": (
        lambda ns: (signed_roster(ns, key=SigningKey(bytes(32))), "abcd"),
        PermissionDenied,
    ),
    "other federation": (
        lambda ns: (
            sign_roster(
                parse_roster(
                    roster_object(
                        roster_entry(
                            n.keyring, federation="other.childreg", department=n.department
                        )
                        for n in ns
                    )
                    | {"federation": "other.childreg"}
                ),
                authority_key(),
            ),
            "abcd",
        ),
        PermissionDenied,
    ),
    "a catalogue as roster": (lambda ns: (signed_catalogue(), "abcd"), InvalidInput),
    "duplicate roster member": (
        lambda ns: (forged(roster_object([n.entry() for n in ns] + [ns[1].entry()])), "abcd"),
        InvalidInput,
    ),
    "duplicate participant": (lambda ns: (signed_roster(ns), "abcc"), InvalidInput),
    "unknown participant": (lambda ns: (signed_roster(ns[:3]), "abcd"), InvalidInput),
    "fewer than three": (lambda ns: (signed_roster(ns), "ab"), FailedPrecondition),
    "n not above colluders": (
        lambda ns: (signed_roster(ns, colluders=3), "abc"),
        FailedPrecondition,
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_ROUNDS))
def test_bad_rosters_and_sets_are_refused_before_any_count_or_charge(
    nodes: list[Node], monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    """Unsigned, altered, foreign or malformed rosters and unsound participant sets: refused
    with the same error by every node, records unread, nothing charged or recorded."""
    make, error = BAD_ROUNDS[case]
    roster, participants = make(nodes)
    for node in nodes[:3]:
        never_count(node, monkeypatch)
        with pytest.raises(error):
            node.desk.share(share_question(roster, TABLE, participants), CALLER)
        assert untouched(node)


@pytest.mark.parametrize("case", ["altered roster", "other authority", "other federation"])
def test_ready_refuses_a_roster_the_authority_did_not_sign_for_this_federation(
    nodes: list[Node], case: str
) -> None:
    """Ready checks the roster's signature and federation as Share does."""
    make, error = BAD_ROUNDS[case]
    with pytest.raises(error):
        nodes[0].desk.ready(ready_question(make(nodes)[0], TABLE))


def test_a_department_outside_the_roster_or_the_set_is_refused(nodes: list[Node]) -> None:
    """Not in the roster: Ready and Share refused; in the roster but not in the round's set:
    Share refused. Nothing charged."""
    three = signed_roster(nodes[:3])
    d = nodes[3]
    with pytest.raises(FailedPrecondition, match="roster-entry"):
        d.desk.ready(ready_question(three, TABLE))
    with pytest.raises(FailedPrecondition):
        d.desk.share(share_question(three, TABLE, "abc"), CALLER)
    with pytest.raises(FailedPrecondition, match="not among the round's participants"):
        d.desk.share(share_question(signed_roster(nodes), TABLE, "abc"), CALLER)
    assert untouched(d)


def test_a_roster_with_other_keys_for_this_department_is_refused(
    nodes: list[Node], tmp_path: Path
) -> None:
    """Keys the node does not hold (an old keyring, or keys slipped in by someone else):
    refused, telling the operator to give the authority a new roster entry."""
    stranger = roster_entry(make_keyring(tmp_path / "new"), federation=FEDERATION, department="d")
    roster = forged(roster_object([n.entry() for n in nodes[:3]] + [stranger]))
    d = nodes[3]
    with pytest.raises(FailedPrecondition, match="childreg node roster-entry"):
        d.desk.ready(ready_question(roster, TABLE))
    with pytest.raises(FailedPrecondition, match="other keys"):
        d.desk.share(share_question(roster, TABLE, "abcd"), CALLER)
    assert untouched(d)
    # Only the upload key swapped is refused just the same.
    entry = nodes[3].entry() | {"upload_key": stranger["upload_key"]}
    roster = forged(roster_object([n.entry() for n in nodes[:3]] + [entry]))
    with pytest.raises(FailedPrecondition, match="other keys"):
        d.desk.share(share_question(roster, TABLE, "abcd"), CALLER)


def test_an_unusable_peer_masking_key_is_refused_before_the_charge(nodes: list[Node]) -> None:
    """A signed roster with a small-order masking key cannot mask: refused before the ledger."""
    bad = nodes[3].entry() | {"masking_key": base64.b64encode(b"\x01" + bytes(31)).decode()}
    roster = forged(roster_object([n.entry() for n in nodes[:3]] + [bad]))
    with pytest.raises(FailedPrecondition, match="masking key of department d"):
        nodes[0].desk.share(share_question(roster, TABLE, "abcd"), CALLER)
    assert untouched(nodes[0])


def stage_1(node: Node) -> NoisyTableQuestion:
    """The stage-1 question for the test table."""
    return NoisyTableQuestion(
        signed_catalogue=signed_catalogue(), table_id=TABLE, academic_year=YEAR
    )


def test_a_table_answered_per_department_is_not_aggregated_too(nodes: list[Node]) -> None:
    """After a stage-1 answer, Ready and Share of the same table are refused, nothing added."""
    a = nodes[0]
    a.statistics.answer(stage_1(a), CALLER)
    roster = signed_roster(nodes)
    with pytest.raises(FailedPrecondition, match="per department"):
        a.desk.ready(ready_question(roster, TABLE))
    with pytest.raises(FailedPrecondition, match="per department"):
        a.desk.share(share_question(roster, TABLE, "abcd", holders=nodes), CALLER)
    assert [e.mechanism for e in a.ledger()] == ["per-department"]
    assert a.store.participation(YEAR) is None


def test_a_share_is_never_answered_in_the_clear(nodes: list[Node]) -> None:
    """After a round, a stage-1 question for the same table is refused: the stored share (less
    noise than σ²) never leaves unmasked."""
    run_round(nodes, signed_roster(nodes), TABLE)
    for node in nodes:
        with pytest.raises(FailedPrecondition, match="secure aggregation"):
            node.statistics.answer(stage_1(node), CALLER)
        assert [e.mechanism for e in node.ledger()] == ["secure-aggregation"]


def test_the_budget_caps_shares_and_ready_says_so_without_charging(tmp_path: Path) -> None:
    """With a node cap of 1/16 two tables of 1/32 fit; the third is refused by Ready and by
    Share, uncharged and unrecorded; Ready of a paid table still answers, with its set."""
    nodes = [make_node(d, make_keyring(tmp_path / d), max_rho=Fraction(1, 16)) for d in "abc"]
    roster = signed_roster(nodes)
    a = nodes[0]
    assert a.desk.ready(ready_question(roster, "education_form")) == Readiness(
        department="a", roster_version=1, recorded_participants=()
    )
    run_round(nodes, roster, "education_form")
    run_round(nodes, roster, TABLE)
    with pytest.raises(ResourceExhausted):
        a.desk.ready(ready_question(roster, "care_by_age"))
    with pytest.raises(ResourceExhausted):
        a.desk.share(share_question(roster, "care_by_age", "abc", holders=nodes), CALLER)
    assert [e.table_id for e in a.ledger()] == ["education_form", TABLE]
    assert a.store.participation(YEAR) == Participation(frozenset("abc"), 1)
    reply = a.desk.ready(ready_question(roster, TABLE))
    assert list(reply.recorded_participants) == ["a", "b", "c"]
    run_round(nodes, roster, TABLE)  # a retry of a paid table costs nothing
    assert sum(e.rho for e in a.ledger()) == Fraction(1, 16)


def test_no_new_share_under_a_superseded_catalogue_version(nodes: list[Node]) -> None:
    """Once version 2 was used, a table of version 1 is refused (the shared version rule)."""
    roster = signed_roster(nodes)
    a = nodes[0]
    a.desk.share(
        share_question(roster, TABLE, "abcd", cat=signed_catalogue(2), holders=nodes), CALLER
    )
    with pytest.raises(FailedPrecondition, match="older"):
        a.desk.share(share_question(roster, "education_form", "abcd", holders=nodes), CALLER)


def test_logs_hold_ids_and_sizes_never_vectors(nodes: list[Node]) -> None:
    """A round's log lines carry no counts, shares or uploads."""
    with capture_logs() as logs:
        run_round(nodes, signed_roster(nodes), TABLE)
    assert {e["event"] for e in logs} == {"statistics.released", "statistics.share"}
    for event in logs:
        assert not any(isinstance(v, list | tuple | bytes) for v in event.values())
        assert not {"counts", "values", "released", "share"} & set(event)


# --- the servicer ----------------------------------------------------------------------


class Context:
    """The part of a gRPC context the servicers use: the coordinator's verified identity."""

    def auth_context(self) -> dict[str, list[bytes]]:
        return {"x509_subject_alternative_name": [CALLER.encode()]}


def servicer_for(node: Node, *, secure: bool) -> tuple[StatisticsServicer, AuditLog]:
    """The node's statistics servicer in one mode, with its audit log."""
    audit = AuditLog(node.store, bytes(32), federation=FEDERATION, department=node.department)
    audited = Audited(node.store, node.keyring, audit)
    return StatisticsServicer(node.statistics, audited, node.desk if secure else None), audit


def leaves(audit: AuditLog) -> list[tuple[str, str]]:
    """(action, outcome) of every audit leaf."""
    return [
        (e.action, e.outcome)
        for e in (AuditEvent.from_bytes(b) for b in audit.entries(0, audit.size))
    ]


def share_request(roster: bytes, **changes: Any) -> spb.ShareRequest:
    """A well-formed Share request for the test table over a, b, c, d, with ``changes``."""
    fields: dict[str, Any] = {
        "signed_catalogue": signed_catalogue(),
        "signed_roster": roster,
        "table_id": TABLE,
        "academic_year": YEAR,
        "round_id": round_id(),
        "participants": list("abcd"),
    }
    return spb.ShareRequest(**(fields | changes))


@pytest.mark.parametrize(
    "changes",
    [
        {"round_id": "not-hex"},
        {"round_id": "A" * 32},
        {"round_id": "0" * 31},
        {"round_id": " " + "0" * 32},
        {"participants": [f"d{i}" for i in range(1001)]},
        {"participants": ["Not An Id", "b", "c"]},
        {"table_id": "Sex"},
        {"signed_roster": b""},
        {"senders": ["a", "b"], "sealed": b"\x00" * 171},
        {"survivors": ["Not An Id"]},
    ],
    ids=[
        "not hex", "upper case", "short", "padded", "too many", "bad id", "bad table", "empty",
        "sealed length", "bad survivor",
    ],
)  # fmt: skip
def test_a_malformed_share_request_is_invalid_argument(
    nodes: list[Node], changes: dict[str, Any]
) -> None:
    """Malformed requests never reach the desk: INVALID_ARGUMENT naming fields, not values."""
    servicer, _ = servicer_for(nodes[0], secure=True)
    with pytest.raises(InvalidInput) as caught:
        servicer.Share(share_request(signed_roster(nodes), **changes), Context())  # type: ignore[arg-type]
    assert status_for(caught.value) == grpc.StatusCode.INVALID_ARGUMENT
    assert "Not An Id" not in str(caught.value.violations)
    assert untouched(nodes[0])


def test_a_secure_node_refuses_noisy_table_and_a_per_department_node_refuses_rounds(
    nodes: list[Node],
) -> None:
    """The configured mode decides: the other mode's RPCs are FAILED_PRECONDITION; a refused
    release or share still leaves its audit leaf; nothing is charged."""
    roster = signed_roster(nodes)
    secure, secure_audit = servicer_for(nodes[0], secure=True)
    noisy = spb.NoisyTableRequest(
        signed_catalogue=signed_catalogue(), table_id=TABLE, academic_year=YEAR
    )
    with pytest.raises(FailedPrecondition, match="secure aggregation only") as caught:
        secure.NoisyTable(noisy, Context())  # type: ignore[arg-type]
    assert status_for(caught.value) == grpc.StatusCode.FAILED_PRECONDITION
    assert leaves(secure_audit) == [("statistics.release", "FAILED_PRECONDITION")]
    clear, clear_audit = servicer_for(nodes[1], secure=False)
    ready = spb.ReadyRequest(
        signed_catalogue=signed_catalogue(),
        signed_roster=roster,
        table_id=TABLE,
        academic_year=YEAR,
    )
    with pytest.raises(FailedPrecondition, match="per department only"):
        clear.Ready(ready, Context())  # type: ignore[arg-type]
    with pytest.raises(FailedPrecondition, match="per department only"):
        clear.Share(share_request(roster), Context())  # type: ignore[arg-type]
    assert leaves(clear_audit) == [("statistics.share", "FAILED_PRECONDITION")]
    assert nodes[0].ledger() == nodes[1].ledger() == []


def test_a_share_through_the_servicer_is_one_leaf_and_ready_none(nodes: list[Node]) -> None:
    """Ready moves no data and leaves no leaf; a share is one leaf, as a release is."""
    roster = signed_roster(nodes)
    servicer, audit = servicer_for(nodes[0], secure=True)
    ready = spb.ReadyRequest(
        signed_catalogue=signed_catalogue(),
        signed_roster=roster,
        table_id=TABLE,
        academic_year=YEAR,
    )
    reply = servicer.Ready(ready, Context())  # type: ignore[arg-type]
    assert (reply.department, reply.roster_version, list(reply.recorded_participants)) == (
        "a",
        1,
        [],
    )
    request = share_request(roster)
    for node in nodes:  # the round keys the coordinator collected and forwards
        node_servicer, _ = servicer_for(node, secure=True)
        key = node_servicer.RoundKeys(request, Context())  # type: ignore[arg-type]
        request.round_keys.append(key)
    assert leaves(audit) == []  # RoundKeys moves no data and leaves no leaf either
    upload = servicer.Share(request, Context())  # type: ignore[arg-type]
    assert len(upload.signature) == 64
    assert leaves(audit) == [("statistics.share", "OK")]
    assert [e.requested_by for e in nodes[0].ledger()] == [CALLER]
    reply = servicer.Ready(ready, Context())  # type: ignore[arg-type]
    assert list(reply.recorded_participants) == ["a", "b", "c", "d"]
