"""A few in-process department nodes for the secure-aggregation tests: keys, stores, desks.

Why this module exists: the node-side tests of stage 2 (test_node_aggregation*.py) all need
the same small federation — real keyrings, real stores, real statistics and aggregation
desks, a catalogue and a roster signed by a test authority — and the same way to run a
round and open its uploads as the coordinator would.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import grpc
from google.protobuf.message import Message
from nacl.signing import SigningKey

from childreg import codes
from childreg.catalogue import Catalogue, parse_catalogue, sign_catalogue, verify_catalogue
from childreg.errors import ChildregError, status_for
from childreg.models import ChildIn, ImportRecord, PlacementIn
from childreg.secagg import recovery, unmasking
from childreg.secagg.roster import Roster, parse_roster, sign_roster, verify_roster
from childreg.secagg.upload import open_share
from childreg.v1 import statistics_pb2 as spb
from node.crypto.keys import Keyring
from node.records.registry import Registry
from node.rpc.statistics import (
    masked_share_to_proto,
    ready_question_from_proto,
    ready_reply_to_proto,
    share_body_bytes,
    share_question_from_proto,
    signed_body_to_proto,
)
from node.statistics.aggregation import AggregationDesk, ReadyQuestion, ShareQuestion, roster_entry
from node.statistics.desk import StatisticsDesk
from node.store.base import LedgerEntry, RecordStore
from node.store.memory import MemoryStore
from tests.conftest import authority_key
from tests.conftest import make_keyring as make_keyring  # noqa: PLC0414 -- kept for importers
from tools.dev.inprocess import FakeRpcError, Method

FEDERATION = "test.childreg"
YEAR = "2023/24"
CALLER = f"spiffe://{FEDERATION}/coordinator/national"
#: Table id -> dimensions (11, 12, 42 and 462 cells), each costing 1/32.
TABLES: dict[str, tuple[str, ...]] = {
    "education_form": ("education_form",),
    "sex_by_age": ("sex", "age_band"),
    "care_by_age": ("care_setting", "age_band"),
    "form_by_care_by_age": ("education_form", "care_setting", "age_band"),
}


def catalogue(version: int = 1, federation: str = FEDERATION) -> Catalogue:
    """The test catalogue: every table of :data:`TABLES` at ρ = 1/32, cap 1/4."""
    return parse_catalogue(
        {
            "federation": federation,
            "version": version,
            "snapshot_rho": "1/4",
            "delta": 1e-9,
            "display_threshold": 10,
            "tables": [
                {"id": i, "title": i.replace("_", " "), "dimensions": list(d), "rho": "1/32"}
                for i, d in TABLES.items()
            ],
        }
    )


def signed_catalogue(version: int = 1, key: SigningKey | None = None) -> bytes:
    """The test catalogue signed by ``key`` (the test authority by default)."""
    return sign_catalogue(catalogue(version), key if key is not None else authority_key())


def import_record(i: int, *, born_from: int = 2008, birth_years: int = 12) -> ImportRecord:
    """Child number ``i``, placed in 2023/24 (forms, sexes and birth years — from
    ``born_from``, over ``birth_years`` years — spread over ``i``)."""
    child_id = f"C{i:05d}"
    return ImportRecord(
        line=i + 2,
        child=ChildIn(
            child_id=child_id,
            given_name="Aysel",
            family_name="Mammadova",
            date_of_birth=dt.date(born_from + i % birth_years, 1 + i % 12, 1),
            sex=codes.SEXES[i % 2],
            district="shaki",
        ),
        placement=PlacementIn(
            child_id=child_id,
            academic_year=YEAR,
            education_form=codes.EDUCATION_FORMS[i % len(codes.EDUCATION_FORMS)],
        ),
    )


@dataclass
class Node:
    """One department's node: its keyring, store and desks."""

    department: str
    keyring: Keyring
    store: RecordStore
    statistics: StatisticsDesk
    desk: AggregationDesk

    def entry(self) -> dict[str, str]:
        """Its roster member entry."""
        return roster_entry(self.keyring, federation=FEDERATION, department=self.department)

    def ledger(self) -> list[LedgerEntry]:
        """Its privacy ledger for the test snapshot."""
        return self.store.ledger(YEAR)


def statistics_desk(
    store: RecordStore, keyring: Keyring, max_rho: Fraction = Fraction(1, 4)
) -> StatisticsDesk:
    """A node's statistics desk with the test authority pinned and a fixed clock."""
    return StatisticsDesk(
        store,
        keyring.noise_secret(),
        authority_key().verify_key,
        federation=FEDERATION,
        max_snapshot_rho=max_rho,
        clock=lambda: dt.datetime(2026, 11, 22, tzinfo=dt.UTC),
    )


def make_node(
    department: str,
    keyring: Keyring,
    store: RecordStore | None = None,
    *,
    children: int = 0,
    max_rho: Fraction = Fraction(1, 4),
) -> Node:
    """A node over ``store`` (a new in-memory one by default) holding ``children`` children."""
    store = store if store is not None else MemoryStore()
    if children:
        Registry(store, keyring).import_records([import_record(i) for i in range(children)])
    statistics = statistics_desk(store, keyring, max_rho)
    desk = AggregationDesk(
        statistics,
        store,
        keyring.masking_key(),
        SigningKey(keyring.upload_signing_seed()),
        encode_share=share_body_bytes,
        department=department,
        federation=FEDERATION,
        authority=authority_key().verify_key,
    )
    return Node(department, keyring, store, statistics, desk)


def roster_object(
    members: Iterable[dict[str, str]], *, colluders: int = 1, version: int = 1
) -> dict[str, Any]:
    """The roster as an authored mapping."""
    return {
        "federation": FEDERATION,
        "version": version,
        "first_snapshot": "1800/01",  # the variance tests use many old snapshots
        "last_snapshot": "2099/00",
        "colluders": colluders,
        "members": list(members),
    }


def signed_roster(
    nodes: Iterable[Node], *, colluders: int = 1, version: int = 1, key: SigningKey | None = None
) -> bytes:
    """A roster of ``nodes`` signed by ``key`` (the test authority by default)."""
    roster = parse_roster(
        roster_object((n.entry() for n in nodes), colluders=colluders, version=version)
    )
    return sign_roster(roster, key if key is not None else authority_key())


def round_id() -> str:
    """A fresh round id."""
    return secrets.token_hex(16)


def ready_question(roster: bytes, table_id: str, cat: bytes | None = None) -> ReadyQuestion:
    """A Ready question for ``table_id`` of the test catalogue."""
    return ReadyQuestion(
        signed_catalogue=cat or signed_catalogue(),
        signed_roster=roster,
        table_id=table_id,
        academic_year=YEAR,
    )


def share_question(
    roster: bytes,
    table_id: str,
    participants: Sequence[str],
    rid: str | None = None,
    cat: bytes | None = None,
    *,
    holders: Sequence[Node] = (),
) -> ShareQuestion:
    """A question for one step of a round of ``table_id`` over ``participants``, carrying the
    round keys that ``holders`` advertise for it (as the coordinator forwards them)."""
    question = ShareQuestion(
        signed_catalogue=cat or signed_catalogue(),
        signed_roster=roster,
        table_id=table_id,
        academic_year=YEAR,
        round_id=rid or round_id(),
        participants=tuple(participants),
    )
    if not holders:
        return question
    keys = tuple((k.body, k.signature) for k in (n.desk.round_keys(question) for n in holders))
    return question.model_copy(update={"round_keys": keys})


def run_round(
    nodes: Sequence[Node], roster: bytes, table_id: str, rid: str | None = None
) -> list[spb.ShareBody]:
    """Every node's upload for one round over all of ``nodes`` (round keys, key shares,
    uploads), opened as the coordinator does (each with the node's roster upload key)."""
    question = share_question(roster, table_id, [n.department for n in nodes], rid, holders=nodes)
    for node in nodes:
        node.desk.key_shares(question)
    listed = verify_roster(roster, authority_key().verify_key, federation=FEDERATION)
    return [
        open_share(
            masked_share_to_proto(node.desk.share(question, CALLER)),
            listed.member(node.department).verify_key,
        )
        for node in nodes
    ]


#: The steps of a round, in order, as the coordinator calls them.
STEPS: tuple[str, ...] = ("Ready", "RoundKeys", "KeyShares", "Share", "Unmask")


def _answered(handler: Callable[[Any], Message], stub: InProcessStub, step: str) -> Method:
    """A stub method over a node desk: its refusals become the status a client would see,
    and a killed node answers nothing (UNAVAILABLE, as a closed port does)."""

    def call(request: Any) -> Message:
        stub.calls.append(step)
        if stub.on_call is not None:
            stub.on_call(stub.node.department, step)
        if stub.down_from is not None and STEPS.index(step) >= STEPS.index(stub.down_from):
            raise FakeRpcError(grpc.StatusCode.UNAVAILABLE)
        try:
            return handler(request)
        except ChildregError as exc:
            raise FakeRpcError(status_for(exc), str(exc)) from None

    return Method(call)


class InProcessStub:
    """A node's stage-2 StatisticsService methods, called directly (with the servicer's own
    conversions on either side of the desk); ``down_from`` names the first step it no longer
    answers (the node was killed just before it), ``on_call`` sees every call first."""

    def __init__(
        self,
        node: Node,
        down_from: str | None = None,
        on_call: Callable[[str, str], None] | None = None,
    ) -> None:
        self.node = node
        self.down_from = down_from
        self.on_call = on_call
        self.calls: list[str] = []
        desk = node.desk
        self.Ready = _answered(
            lambda r: ready_reply_to_proto(desk.ready(ready_question_from_proto(r))),
            self,
            "Ready",
        )
        self.RoundKeys = _answered(
            lambda r: signed_body_to_proto(desk.round_keys(share_question_from_proto(r))),
            self,
            "RoundKeys",
        )
        self.KeyShares = _answered(
            lambda r: signed_body_to_proto(desk.key_shares(share_question_from_proto(r))),
            self,
            "KeyShares",
        )
        self.Share = _answered(
            lambda r: masked_share_to_proto(desk.share(share_question_from_proto(r), CALLER)),
            self,
            "Share",
        )
        self.Unmask = _answered(
            lambda r: signed_body_to_proto(desk.unmask(share_question_from_proto(r))),
            self,
            "Unmask",
        )


def round_total(
    nodes: Sequence[Node],
    roster: bytes,
    table_id: str,
    rid: str | None = None,
    cat: bytes | None = None,
) -> list[int]:
    """One whole round over all of ``nodes`` — round keys, key shares, uploads, unmasking —
    and the national sum the coordinator would get (childreg.secagg.recovery.unmask)."""
    departments = [n.department for n in nodes]
    question = share_question(roster, table_id, departments, rid, cat, holders=nodes)
    listed = verify_roster(roster, authority_key().verify_key, federation=FEDERATION)
    fed = {"federation": FEDERATION, "round_id": question.round_id}
    keys = {
        d: recovery.open_advert(
            recovery.Signed(b, s), listed.member(d).verify_key, department=d, **fed
        )
        for d, (b, s) in zip(departments, question.round_keys, strict=True)
    }
    sealed = {
        n.department: recovery.open_key_shares(
            n.desk.key_shares(question),
            listed.member(n.department).verify_key,
            department=n.department,
            **fed,
        )
        for n in nodes
    }
    uploads = {b.department: list(b.values) for b in run_round_uploads(nodes, listed, question)}
    reveals = [
        recovery.open_reveal(
            n.desk.unmask(
                question.model_copy(
                    update={
                        "survivors": tuple(sorted(departments)),
                        "sealed": tuple((s, c[n.department]) for s, c in sealed.items()),
                    }
                )
            ),
            listed.member(n.department).verify_key,
            department=n.department,
            **fed,
        )
        for n in nodes
    ]
    catalogue = verify_catalogue(question.signed_catalogue, authority_key().verify_key)
    table = catalogue.table(table_id)
    context = recovery.round_context(
        federation=FEDERATION,
        catalogue_version=catalogue.version,
        catalogue_digest=recovery.catalogue_digest(question.signed_catalogue),
        dimensions=table.dimensions,
        roster_version=listed.version,
        participants=sorted(departments),
    )
    return unmasking.unmask(
        uploads,
        reveals,
        keys,
        participants=departments,
        t=listed.threshold(len(departments)),
        round_id=question.round_id,
        table_id=table_id,
        snapshot=YEAR,
        context=context,
    )


def run_round_uploads(
    nodes: Sequence[Node], listed: Roster, question: ShareQuestion
) -> list[spb.ShareBody]:
    """Each node's opened upload for ``question`` (which carries the round keys)."""
    return [
        open_share(
            masked_share_to_proto(node.desk.share(question, CALLER)),
            listed.member(node.department).verify_key,
        )
        for node in nodes
    ]
