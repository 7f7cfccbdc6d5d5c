"""Secure rounds that survive departments going down, at 20 departments (issue 19, item 3).

Twenty real node desks (real keyrings, stores, ledgers, shares, Shamir shares and masks;
node/statistics/aggregation.py) and the coordinator's real secure rounds
(coordinator/rounds/secure.py and steps.py), joined by the in-process transport of
tests/unit/secagg_nodes.py: a "killed" node stops answering from a given step on, as a
closed port does (UNAVAILABLE). Twenty node processes are too heavy for the shared test
machine; tests/e2e/test_secure_aggregation.py kills a real node process of four.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from google.protobuf.message import Message
from nacl.public import PrivateKey

from childreg.catalogue import verify_catalogue
from childreg.errors import FailedPrecondition
from childreg.secagg import recovery, shamir, unmasking
from childreg.secagg.masks import MODULUS, mask_stream, pair_seed
from childreg.secagg.recovery import Signed
from childreg.secagg.roster import Roster, verify_roster
from childreg.secagg.unmasking import NotEnoughShares
from childreg.v1 import statistics_pb2 as spb
from coordinator.publication.releases import ReleaseStore
from coordinator.rounds.federation import IncompleteRound, TableRound
from coordinator.rounds.secure import SecureRounds, SignedRoster
from node.rpc.statistics import masked_share_to_proto
from tests.conftest import authority_key
from tests.unit.secagg_nodes import (
    CALLER,
    FEDERATION,
    YEAR,
    InProcessStub,
    Node,
    make_keyring,
    make_node,
    share_question,
    signed_catalogue,
    signed_roster,
)

N = 20


@dataclass
class Twenty:
    """Twenty departments, their stubs and the coordinator's rounds over them."""

    nodes: list[Node]
    stubs: dict[str, InProcessStub]
    roster: bytes
    listed: Roster
    secure: SecureRounds
    store: ReleaseStore
    transcript: list[tuple[str, Message]]

    def kill(self, department: str, from_step: str) -> None:
        """The department's node stops answering from ``from_step`` on."""
        self.stubs[department].down_from = from_step

    def stored(self, department: str, table_id: str) -> tuple[int, ...]:
        node = next(n for n in self.nodes if n.department == department)
        [entry] = [e for e in node.ledger() if e.table_id == table_id]
        return entry.released


@pytest.fixture(scope="module")
def twenty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twenty]:
    """Twenty departments of a few children each; the snapshot's set is settled with all."""
    root = tmp_path_factory.mktemp("twenty")
    nodes = [
        make_node(f"d{i:02d}", make_keyring(root / f"k{i:02d}"), children=3 + i % 4)
        for i in range(N)
    ]
    roster = signed_roster(nodes)
    listed = verify_roster(roster, authority_key().verify_key, federation=FEDERATION)
    stubs = {n.department: InProcessStub(n) for n in nodes}
    store = ReleaseStore(root / "releases.db")
    transcript: list[tuple[str, Message]] = []
    secure = SecureRounds(
        stubs,  # type: ignore[arg-type]  # the in-process stand-in for the gRPC stubs
        SignedRoster(roster, listed),
        store,
        deadline_seconds=10,
        retry_interval=0.01,
        on_message=lambda d, m: transcript.append((d, m)),
    )
    yield Twenty(nodes, stubs, roster, listed, secure, store, transcript)
    store.close()


def question(table_id: str) -> TableRound:
    blob = signed_catalogue()
    catalogue = verify_catalogue(blob, authority_key().verify_key)
    return TableRound(blob, catalogue.version, catalogue.table(table_id), YEAR)


def column_sums(vectors: Sequence[Sequence[int]]) -> list[int]:
    return [sum(col) for col in zip(*vectors, strict=True)]


def test_the_threshold_of_twenty_tolerates_two_dropouts(twenty: Twenty) -> None:
    """With 20 departments, c = 1 and the default 2 tolerated dropouts, a round needs 18
    survivors: more than half the roster, and more than (n + c)/2."""
    assert twenty.listed.threshold(N) == 18


def test_one_then_two_departments_killed_after_settling_are_named_and_left_out(
    twenty: Twenty,
) -> None:
    """The snapshot settles with all 20 (first table); d07 is killed before its upload in the
    next table, which publishes over the other 19 in one attempt naming d07; then d13 is
    killed too, after its upload in a third table: it is named as lost, its upload still
    counts (its self mask rebuilt from the others' shares), and d07 stays out."""
    first = twenty.secure.measure(question("education_form"))
    assert first.dropped_departments == first.missing_departments == ()

    twenty.kill("d07", "Share")
    second = twenty.secure.measure(question("sex_by_age"))
    assert second.dropped_departments == second.missing_departments == ("d07",)
    (area,) = second.areas.values()
    alive = [n.department for n in twenty.nodes if n.department != "d07"]
    assert area.departments == tuple(alive)
    assert list(area.values) == column_sums([twenty.stored(d, "sex_by_age") for d in alive])
    assert [e.table_id for e in twenty.nodes[7].ledger()] == ["education_form"]  # uncharged
    assert second.statement.participants == 19
    assert second.unit_variance == 19 * question("sex_by_age").sigma_squared / (18 - 1)

    twenty.kill("d07", "Ready")
    twenty.kill("d13", "Unmask")  # killed just after its masked upload
    before = len(twenty.stubs["d13"].calls)
    third = twenty.secure.measure(question("care_by_age"))
    assert third.dropped_departments == ("d07", "d13")
    assert third.missing_departments == ("d07",)
    (area,) = third.areas.values()
    assert "d13" in area.departments
    assert "d07" not in area.departments
    assert list(area.values) == column_sums([twenty.stored(d, "care_by_age") for d in alive])
    assert twenty.stubs["d13"].calls[before:].count("Share") == 1  # one attempt, one round id


def test_no_message_the_coordinator_saw_equals_a_departments_vector(twenty: Twenty) -> None:
    """Observer: of every upload the coordinator received in the rounds above (with and
    without dropouts) none equals, or shares a cell with, any department's stored share."""
    uploads = [m for _, m in twenty.transcript if isinstance(m, spb.MaskedShare)]
    assert len(uploads) >= N + 19
    shares = [e.released for n in twenty.nodes for e in n.ledger()]
    encoded = {tuple(v % MODULUS for v in s) for s in shares}
    cells = {v % MODULUS for s in shares for v in s}
    for upload in uploads:
        values = tuple(spb.ShareBody.FromString(upload.body).values)
        assert values not in encoded
        assert not set(values) & cells
    steps = [json.loads(m.body) for _, m in twenty.transcript if isinstance(m, spb.SignedBody)]
    assert steps  # round keys, then names; sealed and revealed shares are the raw blobs
    assert {frozenset(s) for s in steps} <= {
        frozenset({"federation", "department", "round_id", "mask_key"}),
        frozenset({"federation", "department", "round_id", "recipients"}),
        frozenset({"federation", "department", "round_id", "survivors", "self_of", "key_of"}),
    }


def test_fewer_survivors_than_the_threshold_abort_in_one_line(twenty: Twenty) -> None:
    """With 10 of 20 departments killed (fewer than a majority alive) and again with 3 (more
    than the 2 tolerated), the round aborts with a one-line reason naming the threshold and
    the lost departments, and nothing is unmasked."""
    for count in (10, 3):
        for stub in twenty.stubs.values():
            stub.down_from = None
        victims = [f"d{i:02d}" for i in range(count)]
        for d in victims:
            twenty.kill(d, "RoundKeys")
        with pytest.raises(IncompleteRound) as info:
            twenty.secure.measure(question("form_by_care_by_age"))
        message = str(info.value)
        assert "\n" not in message
        assert message.startswith("incomplete round:")
        assert "needs at least 18" in message
        assert all(f"{d} (UNAVAILABLE)" in message for d in victims)
    for stub in twenty.stubs.values():
        stub.down_from = None


# --- a coordinator that lies about who dropped ------------------------------------------


def _step_all(nodes: Sequence[Node], call: Callable[[Node], Signed]) -> dict[str, Signed]:
    return {n.department: call(n) for n in nodes}


def test_a_coordinator_claiming_a_live_department_dropped_learns_nothing(
    tmp_path: Path,
) -> None:
    """All 20 upload; the coordinator tells 18 nodes that the victim dropped (so it gets the
    victim's round mask key from their shares and strips the victim's pairwise masks) and the
    other 2 that it survived. It never gets 18 shares of the victim's self-mask seed, so the
    stripped upload is the share plus a uniform self mask — not the victim's table; the 18
    refuse a second, conflicting split, and the victim refuses to be counted as dropped."""
    nodes = [
        make_node(f"d{i:02d}", make_keyring(tmp_path / f"k{i:02d}"), children=5) for i in range(N)
    ]
    roster = signed_roster(nodes)
    listed = verify_roster(roster, authority_key().verify_key, federation=FEDERATION)
    departments = [n.department for n in nodes]
    q = share_question(roster, "form_by_care_by_age", departments, holders=nodes)
    fed = {"federation": FEDERATION, "round_id": q.round_id}
    keys = {
        d: recovery.open_advert(Signed(b, s), listed.member(d).verify_key, department=d, **fed)
        for d, (b, s) in zip(departments, q.round_keys, strict=True)
    }
    sealed = {
        n.department: recovery.open_key_shares(
            n.desk.key_shares(q),
            listed.member(n.department).verify_key,
            department=n.department,
            **fed,
        )
        for n in nodes
    }
    uploads = {
        n.department: list(
            spb.ShareBody.FromString(masked_share_to_proto(n.desk.share(q, CALLER)).body).values
        )
        for n in nodes
    }
    victim = "d05"
    told_dropped = [n for n in nodes if n.department != victim][:18]
    told_alive = [n for n in nodes if n not in told_dropped]  # the victim and one other
    without = tuple(d for d in departments if d != victim)

    def unmask(node: Node, survivors: Sequence[str]) -> recovery.Reveal:
        asked = q.model_copy(
            update={
                "survivors": tuple(survivors),
                "sealed": tuple((s, c[node.department]) for s, c in sealed.items()),
            }
        )
        return recovery.open_reveal(
            node.desk.unmask(asked),
            listed.member(node.department).verify_key,
            department=node.department,
            **fed,
        )

    reveals = [unmask(n, without) for n in told_dropped]
    reveals += [unmask(n, departments) for n in told_alive]
    # The victim's round mask key is rebuilt from the 18 that were told it dropped ...
    points = recovery.positions(departments)
    key_shares = {
        points[r.department]: r.key_shares[victim] for r in reveals if victim in r.key_shares
    }
    assert len(key_shares) == 18
    mask_key = PrivateKey(shamir.reconstruct(key_shares).to_bytes(32, "big"))
    assert bytes(mask_key.public_key) == bytes(keys[victim])
    # ... so the coordinator strips every pairwise mask from the victim's upload:
    catalogue = verify_catalogue(q.signed_catalogue, authority_key().verify_key)
    context = recovery.round_context(
        federation=FEDERATION,
        catalogue_version=catalogue.version,
        catalogue_digest=recovery.catalogue_digest(q.signed_catalogue),
        dimensions=catalogue.table(q.table_id).dimensions,
        roster_version=listed.version,
        participants=departments,
    )
    stripped = list(uploads[victim])
    for peer in departments:
        if peer == victim:
            continue
        seed = pair_seed(
            mask_key,
            keys[peer],
            my_id=victim,
            peer_id=peer,
            round_id=q.round_id,
            table_id=q.table_id,
            snapshot=YEAR,
            context=context,
        )
        sign = 1 if peer > victim else -1
        stripped = [
            (u - sign * m) % MODULUS for u, m in zip(stripped, mask_stream(seed, 462), strict=True)
        ]
    share = next(e.released for e in nodes[5].ledger())
    assert stripped != [v % MODULUS for v in share]
    # What is left is the share under the self mask: spread over all of [0, 2⁶⁴), where the
    # share itself is a few small counts.
    assert statistics.median(min(v, MODULUS - v) for v in stripped) > 2**50
    # ... and the self-mask seed cannot be rebuilt: only 2 shares of it were revealed.
    self_shares = [r for r in reveals if victim in r.self_shares]
    assert len(self_shares) == 2
    with pytest.raises(NotEnoughShares):
        unmasking.unmask(
            {victim: uploads[victim]},
            self_shares,
            {victim: keys[victim]},
            participants=departments,
            t=18,
            round_id=q.round_id,
            table_id=q.table_id,
            snapshot=YEAR,
            context=context,
        )
    # Honest nodes refuse the conflicting request: counting the victim alive after they
    # revealed its mask-key share (in this round or any other of the table) ...
    for node in told_dropped:
        with pytest.raises(FailedPrecondition, match="another set of survivors"):
            unmask(node, departments)
    # ... and the victim reveals nothing when it is counted as dropped.
    with pytest.raises(FailedPrecondition, match="listed as dropped"):
        unmask(nodes[5], without)
