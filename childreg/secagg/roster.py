"""The signed federation roster, and the node's rule of one participant set per snapshot.

Pairwise masks hide a department's vector only if every node agrees on who takes part and
on each participant's X25519 masking key. A coordinator that could add a department of its
own, swap a masking key or run a round with two departments would learn a table. So the
participating departments, their node identities (``spiffe://<federation>/node/<department>``)
and their masking keys are listed in a roster signed (Ed25519) by the federation's statistics
authority with the same pinned key as the catalogue; nodes verify it and refuse rounds over
unknown or repeated departments, fewer than three, or not more than half of the roster.
The signature covers a domain prefix of
its own (``childreg roster v1``), so a signed catalogue can never pass as a roster, nor a
roster as a catalogue.

:class:`ParticipationRule` is the node-side rule of issue 5, item 3: a node takes part in
unmasked rounds for one participant set only per snapshot, for every table of it. Were it
to answer the same table twice, once with and once without department A, the difference of
the two sums would be A's table ("A dropped" differencing); and two *tables* summed over
sets that differ by A share margins (at least the grand total) whose difference is A's.
The first set a node admits is therefore final for the snapshot, and a set must hold more
than half of the roster: two majorities share a department, which admits only one of them,
so at most one set can ever complete a round in a snapshot (no disjoint sub-national sums
either). That holds across roster versions because a roster applies to a stated range of
snapshots and the authority signs one membership per snapshot. A round that fails for
want of an upload is retried with the *same* set (and fresh masks). What happens when a
department is down on the day follows: the coordinator settles the set *before* the first
round opens (a data-free readiness call, retried until a deadline), opens the round over
the departments that answered and flags the publication with those missing; once any node
has admitted a set it cannot shrink, and if that set never completes the table stays
unpublished for the snapshot.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final, Protocol, Self

from nacl.public import PublicKey
from nacl.signing import SigningKey, VerifyKey
from pydantic import AfterValidator, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from childreg.config import read_mapping
from childreg.errors import FailedPrecondition, InvalidInput, Violation
from childreg.models import AcademicYear, Model, PartyId, violations_of
from childreg.secagg.recovery import threshold as _threshold
from childreg.signed import SignedKind, canonical_json, open_signed, read_signed, sign_document

#: Identifies the signed-roster file format.
SIGNED_FORMAT: Final = "childreg-roster/1"
#: Prefixed to the canonical bytes before signing; differs from the catalogue's prefix.
SIGNING_CONTEXT: Final = b"childreg roster v1\n"
#: The largest signed roster read (a few hundred departments fit comfortably).
MAX_SIGNED_BYTES: Final = 1024 * 1024
#: Fewer participants and masking hides nothing: with two, each learns the other's vector.
MIN_PARTICIPANTS: Final = 3
MAX_MEMBERS: Final = 1000
#: Departments a round may lose after settling when the roster does not say (``dropouts``).
DEFAULT_DROPOUTS: Final = 2
_PARTY_RE: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_IDENTITY_RE: Final = r"^spiffe://[a-z0-9._-]{1,63}/node/[a-z0-9][a-z0-9_-]{0,62}$"


def _year(academic_year: str) -> int:
    """The first calendar year of a validated academic year "YYYY/YY"."""
    return int(academic_year[:4])


def _public_key(value: str) -> str:
    """Canonical base64 of 32 bytes (so equal keys are equal strings), not all zeros."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be base64 of a 32-byte public key") from None
    if len(raw) != 32:
        raise ValueError("must be base64 of a 32-byte public key")
    if base64.b64encode(raw).decode("ascii") != value:
        raise ValueError("must be in canonical base64 (with padding, no line breaks)")
    if raw == bytes(32):
        raise ValueError("must not be the all-zero key")
    return value


#: An X25519 masking key or an Ed25519 upload-signing key, as canonical base64.
PublicKeyText = Annotated[str, Field(max_length=64), AfterValidator(_public_key)]


class RosterMember(Model):
    """One participating department: its id, its node's identity, masking and upload keys.

    ``masking_key`` (X25519) is what the other nodes agree pairwise masks with;
    ``upload_key`` (Ed25519) is what the coordinator checks each masked upload's signature
    with. Both come from ``childreg node roster-entry`` on the department's node.
    """

    department: PartyId
    identity: Annotated[str, Field(pattern=_IDENTITY_RE)]
    masking_key: PublicKeyText
    upload_key: PublicKeyText

    @property
    def public_key(self) -> PublicKey:
        """The department's X25519 masking key."""
        return PublicKey(base64.b64decode(self.masking_key))

    @property
    def verify_key(self) -> VerifyKey:
        """The department's Ed25519 key that signs its masked uploads."""
        return VerifyKey(base64.b64decode(self.upload_key))

    def canonical_object(self) -> dict[str, Any]:
        """The JSON object of this member in the signed form."""
        return {
            "department": self.department,
            "identity": self.identity,
            "masking_key": self.masking_key,
            "upload_key": self.upload_key,
        }


class Roster(Model):
    """A federation's versioned list of departments taking part in secure aggregation."""

    federation: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")]
    version: Annotated[int, Field(strict=True, ge=1, le=10**9)]
    #: The snapshots (academic years, inclusive) this roster applies to. Nodes refuse it
    #: for any other. The authority never signs two rosters whose ranges overlap, so a
    #: snapshot has one membership: a majority of it is a majority of the only roster a
    #: node accepts for that snapshot, and two sets can never both complete.
    first_snapshot: AcademicYear
    last_snapshot: AcademicYear
    #: c of PRIVACY.md: how many departments may collude with the coordinator. Each node
    #: adds noise of variance σ²/(t−c) (t: the fewest survivors, :meth:`threshold`), so the
    #: t−c honest ones alone still add σ².
    colluders: Annotated[int, Field(strict=True, ge=0, le=MAX_MEMBERS)]
    #: How many settled participants a round may lose and still complete (Bonawitz-style
    #: recovery, childreg/secagg/recovery.py). Each share is drawn for the fewest survivors
    #: a round may have, so tolerating more costs noise. Absent: DEFAULT_DROPOUTS (kept out
    #: of the signed bytes, so rosters signed before the field existed still verify).
    dropouts: Annotated[int | None, Field(strict=True, ge=0, le=MAX_MEMBERS)] = None
    members: Annotated[
        tuple[RosterMember, ...], Field(min_length=MIN_PARTICIPANTS, max_length=MAX_MEMBERS)
    ]

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[InitErrorDetails] = []

        def problem(loc: tuple[str | int, ...], message: str) -> None:
            error = PydanticCustomError("roster", message)  # messages hold no braces
            problems.append(InitErrorDetails(type=error, loc=loc, input=None))

        if self.colluders >= len(self.members):
            problem(("colluders",), "must be smaller than the number of members")
        if _year(self.last_snapshot) < _year(self.first_snapshot):
            problem(("last_snapshot",), "must not be before first_snapshot")
        seen: dict[str, dict[str, int]] = {
            "department": {},
            "identity": {},
            "masking_key": {},
            "upload_key": {},
        }
        for i, member in enumerate(self.members):
            expected = f"spiffe://{self.federation}/node/{member.department}"
            if member.identity != expected:
                problem(
                    ("members", i, "identity"),
                    "must be the node identity of this department in this federation, "
                    "spiffe://<federation>/node/<department>",
                )
            for field, first in seen.items():
                value = getattr(member, field)
                if value in first:
                    problem(("members", i, field), f"repeats the {field} of members.{first[value]}")
                first.setdefault(value, i)
        if problems:  # pydantic merges a ValidationError raised here into its own
            raise ValidationError.from_exception_data(type(self).__name__, problems)
        return self

    def check_covers(self, snapshot: str) -> None:
        """FailedPrecondition unless ``snapshot`` lies in the roster's range of snapshots."""
        if not _year(self.first_snapshot) <= _year(snapshot) <= _year(self.last_snapshot):
            raise FailedPrecondition(
                f"roster version {self.version} applies to snapshots {self.first_snapshot} "
                f"to {self.last_snapshot}, not {snapshot}; use the roster the statistics "
                "authority signed for that snapshot"
            )

    @property
    def departments(self) -> frozenset[str]:
        """The ids of all member departments."""
        return frozenset(m.department for m in self.members)

    def member(self, department: str) -> RosterMember:
        """The member for ``department``; InvalidInput if the roster has none."""
        for m in self.members:
            if m.department == department:
                return m
        shown = department if _PARTY_RE.match(department) else "that id"
        raise InvalidInput(
            f"department {shown} is not in the federation roster",
            [Violation("department", "not in the roster")],
        )

    def participants(self, departments: Iterable[str]) -> tuple[RosterMember, ...]:
        """The members for a round's participant set, sorted by department.

        InvalidInput for an unknown or repeated department; FailedPrecondition for fewer
        than three distinct departments (masks would then hide nothing).
        """
        asked = (departments,) if isinstance(departments, str) else tuple(departments)
        if len(set(asked)) != len(asked):
            raise InvalidInput(
                "a participant set must not repeat a department",
                [Violation("participants", "repeats a department")],
            )
        members = tuple(self.member(d) for d in sorted(asked))
        if len(members) < MIN_PARTICIPANTS:
            raise FailedPrecondition(
                f"a secure-aggregation round needs at least {MIN_PARTICIPANTS} distinct "
                f"departments, not {len(members)}"
            )
        if 2 * len(members) <= len(self.members):
            raise FailedPrecondition(
                f"a secure-aggregation round needs more than half of the roster's "
                f"{len(self.members)} departments, not {len(members)}: two sets that each "
                "hold a majority share a department, which takes part in one set only"
            )
        if len(members) <= self.colluders:
            raise FailedPrecondition(
                f"a round of {len(members)} departments cannot hide a table from "
                f"{self.colluders} colluding ones; it needs at least {self.colluders + 1}"
            )
        return members

    @property
    def tolerated_dropouts(self) -> int:
        """The roster's ``dropouts``, or DEFAULT_DROPOUTS when it does not say."""
        return DEFAULT_DROPOUTS if self.dropouts is None else self.dropouts

    def threshold(self, participants: int) -> int:
        """The fewest survivors (and the Shamir threshold) of a round of ``participants``."""
        return _threshold(len(self.members), self.colluders, participants, self.tolerated_dropouts)

    @property
    def min_participants(self) -> int:
        """The fewest departments a round may have: the three rules :meth:`participants`
        checks (at least three, more than half of the roster, more than the colluders)."""
        return max(MIN_PARTICIPANTS, len(self.members) // 2 + 1, self.colluders + 1)

    def canonical_object(self) -> dict[str, Any]:
        """The roster as the JSON object that is signed (members in the author's order)."""
        return {
            "federation": self.federation,
            "version": self.version,
            "first_snapshot": self.first_snapshot,
            "last_snapshot": self.last_snapshot,
            "colluders": self.colluders,
            "members": [m.canonical_object() for m in self.members],
        } | ({} if self.dropouts is None else {"dropouts": self.dropouts})

    def canonical_bytes(self) -> bytes:
        """Sorted-key, compact, UTF-8 JSON: the same roster always gives the same bytes."""
        return canonical_json(self.canonical_object())


def parse_roster(data: Any, *, what: str = "roster") -> Roster:
    """Validate a mapping as a roster; InvalidInput lists one violation per problem."""
    try:
        return Roster.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(f"invalid {what}", violations_of(exc)) from None


def load_roster(path: Path) -> Roster:
    """Read and validate an authored roster (.toml, .yaml or .yml)."""
    return parse_roster(read_mapping(path), what=f"roster {path}")


# --- the signed file ---------------------------------------------------------------------


KIND: Final = SignedKind("roster", SIGNED_FORMAT, SIGNING_CONTEXT, MAX_SIGNED_BYTES)


def sign_roster(roster: Roster, signing_key: SigningKey) -> bytes:
    """The signed roster file; the same roster and key always give the same bytes."""
    return sign_document(KIND, roster.canonical_object(), roster.canonical_bytes(), signing_key)


def verify_roster(blob: bytes, authority: VerifyKey, *, federation: str | None = None) -> Roster:
    """Check a signed roster against the pinned authority key and return it.

    PermissionDenied when the key, the signature or the federation is wrong; InvalidInput
    when the file is malformed (:func:`childreg.signed.open_signed`: the same format as the
    catalogue's, with its own domain prefix, so neither passes as the other).
    """
    return open_signed(KIND, blob, authority, _parse_signed, federation=federation)


def read_signed_roster(
    path: Path, authority: VerifyKey, *, federation: str | None = None
) -> Roster:
    """Read and verify a signed roster file (see :func:`verify_roster`)."""
    return read_signed(KIND, path, authority, _parse_signed, federation=federation)


def _parse_signed(content: dict[str, Any]) -> Roster:
    return parse_roster(content, what="signed roster")


# --- one participant set per snapshot ----------------------------------------------------


@dataclass(frozen=True)
class Participation:
    """What a node took part with in one snapshot: the set, and the roster's c.

    c is kept because the node's stored noise share has variance σ²/(t−c) for the c of
    its first round; a later roster with a larger c would promise more noise than the
    share carries, so the node refuses another c for that snapshot.
    """

    participants: frozenset[str]
    colluders: int


class ParticipationStore(Protocol):
    """Where a node keeps what it admitted per snapshot.

    ``put`` records only if nothing is recorded yet (it never overwrites), atomically in
    a durable store, so two concurrent admissions cannot both win.
    """

    def get(self, snapshot: str) -> Participation | None:
        """The recorded participation, or None if this node has not taken part yet."""
        ...

    def put(self, snapshot: str, participation: Participation) -> None:
        """Record ``participation`` unless one is recorded already."""
        ...


class MemoryParticipationStore:
    """A :class:`ParticipationStore` in a dict (tests; forgets everything on restart)."""

    def __init__(self) -> None:
        self._held: dict[str, Participation] = {}

    def get(self, snapshot: str) -> Participation | None:
        """The recorded participation, or None."""
        return self._held.get(snapshot)

    def put(self, snapshot: str, participation: Participation) -> None:
        """Record ``participation`` unless one is recorded already."""
        self._held.setdefault(snapshot, participation)


class ParticipationRule:
    """A node takes part in rounds for one participant set only per snapshot."""

    def __init__(self, store: ParticipationStore) -> None:
        self._store = store

    def admit(self, snapshot: str, participants: Iterable[str], *, colluders: int) -> None:
        """Record the first set (and c) for the snapshot; allow it again; refuse any other.

        Order does not matter. FailedPrecondition if another set was recorded — for any
        table of the snapshot — so a coordinator can difference neither two rounds of one
        table that differ by one department nor two tables summed over different sets; or
        if the same set comes with another number of colluders than the first time.
        """
        asked = (participants,) if isinstance(participants, str) else tuple(participants)
        wanted = frozenset(asked)
        if len(wanted) != len(asked):
            raise InvalidInput(
                "a participant set must not repeat a department",
                [Violation("participants", "repeats a department")],
            )
        if self._store.get(snapshot) is None:
            self._store.put(snapshot, Participation(wanted, colluders))
        held = self.recorded(snapshot, colluders)  # read back: a concurrent put may win
        if held is None or held.participants != wanted:
            raise FailedPrecondition(
                "this node already took part with another set of departments in this snapshot"
            )

    def recorded(self, snapshot: str, colluders: int) -> Participation | None:
        """The set recorded for the snapshot, if any; FailedPrecondition if it was recorded
        with another number of colluders (its noise shares were drawn for that number)."""
        held = self._store.get(snapshot)
        if held is not None and held.colluders != colluders:
            raise FailedPrecondition(
                f"this node took part in snapshot {snapshot} assuming {held.colluders} "
                f"colluding departments; a roster assuming {colluders} cannot be used for it "
                "(its noise share was drawn for the first number)"
            )
        return held
