"""A node's secure-aggregation desk (stage 2): its masked, signed noise share of a table.

Why this module exists: in stage 2 (docs/statistics-method.md, docs/design/privacy.md "Two stages")
each department adds only a share σ²/(t−c) of the noise (t: the fewest survivors a round may
complete with) and the coordinator may see its vector only masked. A round has four steps
after Ready (docs/secure-aggregation.md; the cryptography in childreg/secagg/recovery.py):
the node's signed round mask key, its Shamir shares sealed to every peer, its upload (share
+ self mask + pairwise masks), and — once the coordinator names the survivors — one half of
each peer's share pair. The masks hide a department's table only under rules the coordinator
cannot bend, so the node enforces them itself, from the question, the signed roster and its
own ledger, before it reads a single record:

- the catalogue and the roster are signed by the pinned statistics authority, the roster
  is for this federation, the participant set is of known, distinct members, at least
  three and more than the roster's colluders, this department is one of them, and the
  roster lists this node's own masking and upload keys;
- one participant set per snapshot, for every table of it, with more than half of the
  roster's departments, recorded durably in the transaction that charges the ledger
  (childreg.secagg.roster.ParticipationRule): "A dropped" rounds, different sets for
  different tables and disjoint sets are all refused, so no two sums over different sets
  exist to be differenced (the roster must apply to the snapshot, and the authority signs
  one membership per snapshot);
- masks bound to everything both sides agree on (round id, table, snapshot, catalogue
  version and digest, dimensions, roster version, participant set);
- at Unmask, one set of survivors per (catalogue version, table, snapshot), recorded on
  the first reveal (in the participation store, under a key of its own), and for each
  peer either its self-mask share or its mask-key share, never both; fewer survivors than
  t, or a split that counts this node as dropped, get nothing;
- one noisy share per (catalogue version, table, snapshot), stored in the privacy ledger
  and reused: a retry with a fresh round id gets fresh masks over the same share, never
  fresh noise and never a second charge;
- a table is released under one mechanism only (node/statistics/desk.py refuses the other).

Only the masking and signing happen outside the ledger's transaction; they read nothing.
Log lines carry ids and sizes, never counts or vectors.

No protobuf here: the questions arrive validated (node/rpc/statistics.py converts them),
the answers leave as plain values (:class:`Readiness`, :class:`SignedShare`), and the
upload's wire encoding — the bytes the node signs and the coordinator verifies — is given
to the desk by the composition root (``encode_share``), so the desk signs exactly what is
sent without knowing its format.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Final

import structlog
from nacl.public import PrivateKey, PublicKey
from nacl.signing import SigningKey, VerifyKey
from pydantic import ConfigDict, Field, StringConstraints

from childreg import codes
from childreg.catalogue import Catalogue, CatalogueTable
from childreg.dp import zcdp
from childreg.errors import FailedPrecondition, PermissionDenied
from childreg.models import AcademicYear, Model, PartyId, TableId
from childreg.secagg import masks, recovery
from childreg.secagg.recovery import Signed
from childreg.secagg.roster import (
    MAX_MEMBERS,
    MAX_SIGNED_BYTES,
    Participation,
    ParticipationRule,
    Roster,
    RosterMember,
    verify_roster,
)
from childreg.secagg.upload import SIGNING_CONTEXT
from childreg.signed import VerifiedCache
from node.crypto.keys import Keyring
from node.statistics.desk import Noise, StatisticsDesk
from node.store.base import RecordStore

log = structlog.get_logger("childreg.node.aggregation")

MECHANISM: Final = "secure-aggregation"
#: What a node operator gives the statistics authority to be listed in the roster.
ROSTER_ENTRY_COMMAND: Final = "childreg node roster-entry"
_DIMENSION_ORDER: Final = {d: i for i, d in enumerate(codes.DIMENSIONS)}

RoundId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]


class ReadyQuestion(Model):
    """The coordinator's data-free question: could this node take part in this table?"""

    # Exact bytes, no trimming: these values are bound into signed uploads and masks.
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)

    signed_catalogue: bytes = Field(min_length=1, max_length=256 * 1024)
    signed_roster: bytes = Field(min_length=1, max_length=MAX_SIGNED_BYTES)
    table_id: TableId
    academic_year: AcademicYear


class ShareQuestion(ReadyQuestion):
    """One step of a round: the table, a fresh round id, the settled participants, and what
    the step needs of the earlier ones (forwarded round keys; survivors and sealed shares)."""

    round_id: RoundId
    participants: tuple[PartyId, ...] = Field(max_length=MAX_MEMBERS)
    #: (body, signature) of each forwarded round key.
    round_keys: tuple[tuple[bytes, bytes], ...] = Field(default=(), max_length=MAX_MEMBERS)
    survivors: tuple[PartyId, ...] = Field(default=(), max_length=MAX_MEMBERS)
    #: (sender, ciphertext) of each share pair sealed to this node.
    sealed: tuple[tuple[PartyId, bytes], ...] = Field(default=(), max_length=MAX_MEMBERS)


@dataclass(frozen=True)
class Readiness:
    """Ready's answer: this node could take part; the set it already took part with."""

    department: str
    roster_version: int
    recorded_participants: tuple[str, ...]


@dataclass(frozen=True)
class ShareBody:
    """What a node signs: its masked upload and everything it is bound to."""

    federation: str
    department: str
    round_id: str
    catalogue_version: int
    table_id: str
    academic_year: str
    dimensions: tuple[str, ...]
    roster_version: int
    participants: tuple[str, ...]
    values: tuple[int, ...]
    key_holders: tuple[str, ...] = ()


@dataclass(frozen=True)
class SignedShare:
    """The upload: the body's wire bytes and the node's upload signature over them."""

    body: bytes
    signature: bytes


#: The upload body's wire encoding (deterministic): what is signed is what is sent.
ShareEncoder = Callable[[ShareBody], bytes]


def roster_entry(keyring: Keyring, *, federation: str, department: str) -> dict[str, str]:
    """This node's member entry for the federation roster (public keys only, base64)."""
    masking = keyring.masking_key().public_key
    upload = SigningKey(keyring.upload_signing_seed()).verify_key
    return {
        "department": department,
        "identity": f"spiffe://{federation}/node/{department}",
        "masking_key": base64.b64encode(bytes(masking)).decode("ascii"),
        "upload_key": base64.b64encode(bytes(upload)).decode("ascii"),
    }


class _LedgerParticipation:
    """The node store as a ParticipationStore (within the caller's transaction)."""

    def __init__(self, store: RecordStore) -> None:
        self._store = store

    def get(self, snapshot: str) -> Participation | None:
        return self._store.participation(snapshot)

    def put(self, snapshot: str, participation: Participation) -> None:
        self._store.record_participation(snapshot, participation)


class AggregationDesk:
    """Answers Ready and Share for one department's node."""

    def __init__(
        self,
        statistics: StatisticsDesk,
        store: RecordStore,
        masking_key: PrivateKey,
        upload_key: SigningKey,
        *,
        department: str,
        federation: str,
        authority: VerifyKey,
        encode_share: ShareEncoder,
    ) -> None:
        self._statistics = statistics
        self._encode = encode_share
        self._store = store
        self._masking = masking_key
        self._upload = upload_key
        self._department = department
        self._federation = federation
        self._rule = ParticipationRule(_LedgerParticipation(store))
        self._usable_keys: set[bytes] = set()  # peer masking keys already checked
        self._rosters = VerifiedCache(
            lambda blob: verify_roster(blob, authority, federation=federation)
        )

    def ready(self, question: ReadyQuestion) -> Readiness:
        """Whether a round of this table could go ahead here; reads no record, charges nothing.

        Raises what :meth:`share` would raise before its participant check (signatures,
        membership, keys, catalogue version, mechanism, budget) and returns the set this
        node already took part with, if any.
        """
        catalogue, table, roster = self._verified(question)
        self._own_member(roster)
        self._statistics.check(catalogue, table, question.academic_year, MECHANISM)
        recorded = self._rule.recorded(question.academic_year, roster.colluders)
        return Readiness(
            department=self._department,
            roster_version=roster.version,
            recorded_participants=tuple(sorted(recorded.participants if recorded else ())),
        )

    def round_keys(self, question: ShareQuestion) -> Signed:
        """Step 1: this node's round mask key for the round, signed; reads and charges nothing."""
        step = self._round(question)
        return recovery.advert(
            step.secrets,
            self._upload,
            federation=self._federation,
            department=self._department,
            round_id=question.round_id,
        )

    def key_shares(self, question: ShareQuestion) -> Signed:
        """Step 2: Shamir shares of this round's self-mask seed and mask key, one pair sealed
        to every participant that advertised a round key; reads and charges nothing."""
        step = self._round(question)
        holders = self._key_holders(question, step)
        recipients = {d: step.roster.member(d).public_key for d in holders}
        return recovery.key_shares(
            step.secrets,
            self._upload,
            self._masking,
            recipients,
            federation=self._federation,
            department=self._department,
            round_id=question.round_id,
            all_participants=step.departments,
            t=step.t,
        )

    def share(self, question: ShareQuestion, caller: str) -> SignedShare:
        """Step 3: this node's signed upload for one round (charged once per table): its noise
        share + its self mask + pairwise masks with every key holder of the round."""
        step = self._round(question)
        holders = self._key_holders(question, step)
        catalogue, table, roster = step.catalogue, step.table, step.roster
        snapshot = question.academic_year
        n, c = len(step.departments), roster.colluders
        departments = list(step.departments)
        answer = self._statistics.release(
            catalogue,
            table,
            snapshot,
            caller,
            self._noise(table, step.t - c),
            admit=lambda: self._rule.admit(snapshot, departments, colluders=c),
        )
        values = recovery.masked_upload(
            answer.counts,
            step.secrets,
            self._department,
            holders,
            round_id=question.round_id,
            table_id=table.id,
            snapshot=snapshot,
            context=step.context,
        )
        body = ShareBody(
            federation=self._federation,
            department=self._department,
            round_id=question.round_id,
            catalogue_version=catalogue.version,
            table_id=table.id,
            academic_year=snapshot,
            dimensions=tuple(table.dimensions),
            roster_version=roster.version,
            participants=tuple(departments),
            values=tuple(values),
            key_holders=tuple(sorted(holders)),
        )
        log.info(
            "statistics.share",
            table=table.id,
            snapshot=snapshot,
            catalogue_version=catalogue.version,
            round_id=question.round_id,
            roster_version=roster.version,
            participants=n,
            key_holders=len(holders),
            threshold=step.t,
            colluders=c,
            charged=answer.charged,
            cells=len(values),
        )
        raw = self._encode(body)
        return SignedShare(raw, self._upload.sign(SIGNING_CONTEXT + raw).signature)

    def unmask(self, question: ShareQuestion) -> Signed:
        """Step 4: for each sender whose share pair was sealed to this node, the self-mask
        share if it survived, the mask-key share if it dropped — for one split only.

        The survivors of a table (catalogue version, table, snapshot) are recorded the first
        time this node answers and every other split is refused, in this round or any later
        one: a coordinator claiming a live department dropped after obtaining its self-mask
        shares (or the reverse), or summing one table over two sets of survivors, gets
        nothing more. Refused too: fewer survivors than the threshold, survivors that hold
        no round key, and a split that counts this node as dropped.
        """
        step = self._round(question)
        survivors = tuple(question.survivors)
        alive = set(survivors)
        if len(alive) != len(survivors) or not alive <= set(step.departments):
            raise FailedPrecondition(
                "the survivors of the round must be distinct participants of the round"
            )
        if self._department not in alive:
            raise FailedPrecondition(
                f"department {self._department} is listed as dropped; it reveals nothing"
            )
        if len(alive) < step.t:
            raise FailedPrecondition(
                f"only {len(alive)} survivors; a round of {len(step.departments)} departments "
                f"needs at least {step.t} to unmask"
            )
        key = f"{question.academic_year}#survivors/{step.catalogue.version}/{step.table.id}"
        if self._store.participation(key) is None:
            self._store.record_participation(key, Participation(frozenset(alive), 0))
        held = self._store.participation(key)
        if held is None or held.participants != frozenset(alive):
            raise FailedPrecondition(
                f"this node already revealed unmasking shares of table {step.table.id} of "
                f"snapshot {question.academic_year} for another set of survivors; it answers "
                "no other split, so no department's masks are ever removed both ways"
            )
        sealed = dict(question.sealed)
        if len(sealed) != len(question.sealed) or not set(sealed) <= set(step.departments):
            raise FailedPrecondition("sealed shares must come from distinct participants")
        log.info(
            "statistics.unmask",
            table=step.table.id,
            snapshot=question.academic_year,
            round_id=question.round_id,
            survivors=len(alive),
            dropped=len(sealed) - len(alive & set(sealed)),
        )
        return recovery.reveal(
            self._masking,
            {d: step.roster.member(d).public_key for d in sealed},
            sealed,
            self._upload,
            federation=self._federation,
            department=self._department,
            round_id=question.round_id,
            survivors=survivors,
        )

    def _noise(self, table: CatalogueTable, honest: int) -> Noise:
        """The share's noise: σ²/(t−c), so that the t−c honest survivors add σ² at least."""
        return Noise(
            mechanism=MECHANISM,
            sigma_squared=zcdp.sigma_squared(table.rho) / honest,
            # ":" never occurs in a table id, so no stage-1 identity ("<id>/…") equals it.
            seed_identity=f"secagg:{table.id}/{'+'.join(table.dimensions)}/{table.rho}/{honest}",
        )

    def _round(self, question: ShareQuestion) -> _Step:
        """Everything a step of the round is bound to, each part checked."""
        catalogue, table, roster = self._verified(question)
        members = roster.participants(question.participants)
        departments = tuple(m.department for m in members)
        if self._department not in departments:
            raise FailedPrecondition(
                f"department {self._department} is not among the round's participants"
            )
        self._own_member(roster)
        recorded = self._rule.recorded(question.academic_year, roster.colluders)
        if recorded is not None and recorded.participants != frozenset(departments):
            raise FailedPrecondition(
                "this node already took part with another set of departments in this snapshot"
            )
        # Everything both sides of every pair agree on binds the masks, so a round id reused
        # under another catalogue version, table shape, roster or set gives unrelated masks.
        context = recovery.round_context(
            federation=self._federation,
            catalogue_version=catalogue.version,
            catalogue_digest=recovery.catalogue_digest(question.signed_catalogue),
            dimensions=table.dimensions,
            roster_version=roster.version,
            participants=departments,
        )
        secrets = recovery.round_secrets(
            self._masking,
            round_id=question.round_id,
            table_id=table.id,
            snapshot=question.academic_year,
            context=context,
        )
        self._check_peer_keys(members)
        t = roster.threshold(len(departments))
        return _Step(catalogue, table, roster, departments, context, secrets, t)

    def _key_holders(self, question: ShareQuestion, step: _Step) -> dict[str, PublicKey]:
        """The round keys the coordinator forwarded, each checked against its sender's
        roster upload key; at least the threshold of them, this node's own among them."""
        holders: dict[str, PublicKey] = {}
        for body, signature in question.round_keys:
            department = _sender(body)
            if department not in step.departments or department in holders:
                raise FailedPrecondition(
                    "a forwarded round key is not from a distinct participant of the round"
                )
            try:
                holders[department] = recovery.open_advert(
                    recovery.Signed(body, signature),
                    step.roster.member(department).verify_key,
                    federation=self._federation,
                    department=department,
                    round_id=question.round_id,
                )
            except PermissionDenied:
                raise FailedPrecondition(
                    f"the forwarded round key of department {department} does not verify"
                ) from None
        mine = holders.get(self._department)
        if mine is None or bytes(mine) != bytes(step.secrets.mask_key.public_key):
            raise FailedPrecondition("this node's own round key is not among the forwarded ones")
        if len(holders) < step.t:
            raise FailedPrecondition(
                f"only {len(holders)} departments hold round keys; a round of "
                f"{len(step.departments)} needs at least {step.t}"
            )
        return holders

    def _verified(self, question: ReadyQuestion) -> tuple[Catalogue, CatalogueTable, Roster]:
        """The catalogue, the table and the roster, each checked against the authority."""
        catalogue = self._statistics.catalogue(question.signed_catalogue)
        table = catalogue.table(question.table_id)
        roster = self._rosters.get(question.signed_roster)
        roster.check_covers(question.academic_year)
        return catalogue, table, roster

    def _own_member(self, roster: Roster) -> RosterMember:
        """This department's roster entry, which must list this node's own keys."""
        if self._department not in roster.departments:
            raise FailedPrecondition(
                f"department {self._department} is not in roster version {roster.version}; "
                f"give the statistics authority the output of `{ROSTER_ENTRY_COMMAND}`"
            )
        member = roster.member(self._department)
        if bytes(member.public_key) != bytes(self._masking.public_key) or bytes(
            member.verify_key
        ) != bytes(self._upload.verify_key):
            raise FailedPrecondition(
                f"roster version {roster.version} lists other keys for department "
                f"{self._department} than this node's; give the statistics authority the "
                f"output of `{ROSTER_ENTRY_COMMAND}` for a new roster"
            )
        return member

    def _check_peer_keys(self, members: tuple[RosterMember, ...]) -> None:
        """Every peer's roster masking key agrees with this node's (share sealing needs it).

        Checked before the ledger is touched: a key of small order in the roster would
        otherwise fail only after the share was charged.
        """
        for m in members:
            if m.department == self._department or bytes(m.public_key) in self._usable_keys:
                continue
            try:
                masks.pair_seed(
                    self._masking,
                    m.public_key,
                    my_id=self._department,
                    peer_id=m.department,
                    round_id="check",
                    table_id="check",
                    snapshot="check",
                    context="check",
                )
            except ValueError:
                raise FailedPrecondition(
                    f"the roster's masking key of department {m.department} is unusable; "
                    "the statistics authority must sign a corrected roster"
                ) from None
            self._usable_keys.add(bytes(m.public_key))


@dataclass(frozen=True)
class _Step:
    """What one step of a round is bound to (see :meth:`AggregationDesk._round`)."""

    catalogue: Catalogue
    table: CatalogueTable
    roster: Roster
    departments: tuple[str, ...]
    context: str
    secrets: recovery.RoundSecrets
    t: int


def _sender(body: bytes) -> str:
    """The department a forwarded signed body names (read before its signature is checked
    only to pick the key to check it with)."""
    try:
        obj = json.loads(body)
    except ValueError:
        return ""
    department = obj.get("department") if isinstance(obj, dict) else None
    return department if isinstance(department, str) else ""
