"""One attempt of a dropout-tolerant secure round, step by step, as the coordinator drives it.

Why this module exists: the four steps of Bonawitz et al. 2017 (childreg/secagg/recovery.py)
each ask the remaining participants at once, keep those that answered with a valid signed
message, and drop those that could not be reached; a department that answers but refuses or
sends something that does not verify aborts the attempt instead (it is not "down"). The
attempt unmasks only when at least the threshold t survived every step and t survivors
revealed their shares; the departments lost on the way are named in its result. Kept apart
from coordinator/rounds/secure.py (settling the participant set, retries) so each stays
readable.

Every call of a step has the per-department deadline, all in parallel, so an attempt with
departments down takes at most four deadlines after Ready. Nothing here logs a vector.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import grpc
from google.protobuf.message import Message
from nacl.public import PublicKey

from childreg import codes
from childreg.errors import PermissionDenied
from childreg.secagg import recovery, unmasking
from childreg.secagg.recovery import Reveal, SealedBatch, Signed
from childreg.secagg.roster import Roster, RosterMember
from childreg.secagg.unmasking import NotEnoughShares
from childreg.secagg.upload import open_share
from childreg.v1 import statistics_pb2 as spb
from childreg.v1 import statistics_pb2_grpc as spb_grpc
from coordinator.rounds.federation import TableRound

#: Statuses of a lost call (the node may be fine, or down): the department is dropped.
TRANSIENT: Final = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED"})


@dataclass(frozen=True)
class AttemptResult:
    """A completed attempt: the survivors' sum and who dropped (sorted)."""

    values: list[int]
    survivors: tuple[str, ...]
    dropped: tuple[str, ...]
    threshold: int


class AttemptFailed(Exception):
    """An attempt that unmasked nothing: why each department at fault failed, and a line."""

    def __init__(self, line: str, reasons: Mapping[str, str]) -> None:
        super().__init__(line)
        self.line = line
        self.reasons = dict(reasons)


class Attempt:
    """One round id's four steps over a settled participant set."""

    def __init__(
        self,
        stubs: Mapping[str, spb_grpc.StatisticsServiceStub],
        *,
        roster: Roster,
        signed_roster: bytes,
        members: Mapping[str, RosterMember],
        question: TableRound,
        participants: Sequence[str],
        round_id: str,
        deadline: float,
        observe: Callable[[str, Message], None],
        lost: Mapping[str, str] | None = None,
    ) -> None:
        self._stubs = dict(stubs)
        self._roster = roster
        self._members = members
        self._q = question
        self._parts = tuple(participants)
        self._rid = round_id
        self._deadline = deadline
        self._observe = observe
        self.t = roster.threshold(len(self._parts))
        self._base = spb.ShareRequest(
            signed_catalogue=question.signed_catalogue,
            signed_roster=signed_roster,
            table_id=question.table.id,
            academic_year=question.snapshot,
            round_id=round_id,
            participants=list(self._parts),
        )
        self._context = recovery.round_context(
            federation=roster.federation,
            catalogue_version=question.catalogue_version,
            catalogue_digest=recovery.catalogue_digest(question.signed_catalogue),
            dimensions=question.table.dimensions,
            roster_version=roster.version,
            participants=self._parts,
        )
        #: Departments lost so far (already before the first step: ``lost``), and why.
        self.dropped: dict[str, str] = dict(lost or {})

    def run(self) -> AttemptResult:
        """The four steps; AttemptFailed when a department refuses or too few are left."""
        adverts = self._round_keys()
        keys = {d: self._open_advert(d, m) for d, m in adverts.items()}
        sealed = self._key_shares(adverts)
        holders = {d: adverts[d] for d in sealed}
        uploads = self._uploads(holders)
        reveals = self._unmask(uploads, sealed)
        try:
            values = unmasking.unmask(
                uploads,
                reveals,
                {d: keys[d] for d in holders},
                participants=self._parts,
                t=self.t,
                round_id=self._rid,
                table_id=self._q.table.id,
                snapshot=self._q.snapshot,
                context=self._context,
            )
        except NotEnoughShares as exc:
            raise AttemptFailed(
                f"fewer than {self.t} survivors revealed shares of {exc.department}",
                {exc.department: "not_enough_shares"},
            ) from None
        except ValueError:
            raise AttemptFailed("the rebuilt round keys are inconsistent", {}) from None
        survivors = tuple(sorted(uploads))
        return AttemptResult(values, survivors, tuple(sorted(self.dropped)), self.t)

    # --- the steps ---------------------------------------------------------------------

    def _call(
        self,
        method: str,
        departments: Sequence[str],
        request_for: Callable[[str], spb.ShareRequest],
    ) -> dict[str, Message]:
        """Ask ``departments`` at once; replies of those that answered, the rest dropped or
        (a refusal) the attempt aborted."""
        calls = {
            d: getattr(self._stubs[d], method).future(request_for(d), timeout=self._deadline)
            for d in departments
        }
        replies: dict[str, Message] = {}
        refused: dict[str, str] = {}
        for dept, call in calls.items():
            try:
                reply: Message = call.result()
            except grpc.RpcError as err:
                name = err.code().name
                if name in TRANSIENT:
                    self.dropped[dept] = name
                else:
                    refused[dept] = name
                continue
            self._observe(dept, reply)
            replies[dept] = reply
        if refused:
            named = ", ".join(f"{d} ({r})" for d, r in sorted(refused.items()))
            raise AttemptFailed(f"{method} refused by {named}", refused)
        return replies

    def _enough(self, step: str, left: Sequence[str]) -> None:
        if len(left) < self.t:
            raise AttemptFailed(
                f"only {len(left)} of the {len(self._parts)} departments were left after "
                f"{step}; a round of {len(self._parts)} needs at least {self.t} (its "
                f"threshold, of the roster's {len(self._roster.members)})",
                self.dropped,
            )

    def _round_keys(self) -> dict[str, Signed]:
        asked = [d for d in self._parts if d not in self.dropped]
        replies = self._call("RoundKeys", asked, lambda _: self._base)
        adverts = {
            d: Signed(m.body, m.signature)
            for d, m in replies.items()
            if isinstance(m, spb.SignedBody)
        }
        self._enough("RoundKeys", list(adverts))
        return adverts

    def _open_advert(self, dept: str, message: Signed) -> PublicKey:
        try:
            return recovery.open_advert(
                message,
                self._members[dept].verify_key,
                federation=self._roster.federation,
                department=dept,
                round_id=self._rid,
            )
        except PermissionDenied:
            raise AttemptFailed(
                f"the round key of {dept} does not verify", {dept: "bad_signature"}
            ) from None

    def _request(self, holders: Mapping[str, Signed]) -> spb.ShareRequest:
        request = spb.ShareRequest()
        request.CopyFrom(self._base)
        request.round_keys.extend(
            spb.SignedBody(body=m.body, signature=m.signature) for _, m in sorted(holders.items())
        )
        return request

    def _key_shares(self, adverts: Mapping[str, Signed]) -> dict[str, SealedBatch]:
        request = self._request(adverts)
        replies = self._call("KeyShares", sorted(adverts), lambda _: request)
        sealed: dict[str, SealedBatch] = {}
        recipients = sorted(adverts)
        for dept, m in replies.items():
            assert isinstance(m, spb.SignedBody)
            try:
                sealed[dept] = recovery.open_key_shares(
                    Signed(m.body, m.signature, m.blob),
                    self._members[dept].verify_key,
                    federation=self._roster.federation,
                    department=dept,
                    round_id=self._rid,
                    recipients=recipients,
                )
            except PermissionDenied:
                raise AttemptFailed(
                    f"the key shares of {dept} do not verify or miss recipients",
                    {dept: "bad_key_shares"},
                ) from None
        self._enough("KeyShares", list(sealed))
        return sealed

    def _uploads(self, holders: Mapping[str, Signed]) -> dict[str, list[int]]:
        request = self._request(holders)
        replies = self._call("Share", sorted(holders), lambda _: request)
        uploads: dict[str, list[int]] = {}
        for dept, m in replies.items():
            assert isinstance(m, spb.MaskedShare)
            try:
                body = open_share(m, self._members[dept].verify_key)
            except PermissionDenied:
                raise AttemptFailed(
                    f"the upload of {dept} does not verify", {dept: "bad_signature"}
                ) from None
            mismatch = self._mismatch(body, dept, sorted(holders))
            if mismatch:
                raise AttemptFailed(
                    f"the upload of {dept} is not bound to this round", {dept: mismatch}
                )
            uploads[dept] = list(body.values)
        self._enough("Share", list(uploads))
        return uploads

    def _unmask(
        self,
        uploads: Mapping[str, list[int]],
        sealed: Mapping[str, SealedBatch],
    ) -> list[Reveal]:
        survivors = sorted(uploads)
        senders = sorted(sealed)
        # The same recipients, sorted, for every sender (checked in _key_shares).
        place = {d: k for k, d in enumerate(next(iter(sealed.values())).recipients)}
        views = [memoryview(sealed[s].blob) for s in senders]
        base = spb.ShareRequest()
        base.CopyFrom(self._base)
        base.survivors.extend(survivors)
        base.senders.extend(senders)
        size = recovery.SEALED_BYTES

        def request_for(dept: str) -> spb.ShareRequest:
            # Routing is slicing: the k-th pair of every sender is the k-th recipient's.
            at = place[dept] * size
            request = spb.ShareRequest()
            request.CopyFrom(base)
            request.sealed = b"".join([v[at : at + size] for v in views])
            return request

        replies = self._call("Unmask", survivors, request_for)
        reveals: list[Reveal] = []
        for dept, m in sorted(replies.items()):
            assert isinstance(m, spb.SignedBody)
            try:
                reveal = recovery.open_reveal(
                    Signed(m.body, m.signature, m.blob),
                    self._members[dept].verify_key,
                    federation=self._roster.federation,
                    department=dept,
                    round_id=self._rid,
                )
            except PermissionDenied:
                raise AttemptFailed(
                    f"the unmasking of {dept} does not verify", {dept: "bad_signature"}
                ) from None
            if list(reveal.survivors) != survivors:
                raise AttemptFailed(
                    f"the unmasking of {dept} is for other survivors", {dept: "wrong_survivors"}
                )
            reveals.append(reveal)
        self._enough("Unmask", [r.department for r in reveals])
        return reveals

    def _mismatch(self, body: spb.ShareBody, dept: str, holders: list[str]) -> str | None:
        """The first field the signed upload is not bound to as this round expects."""
        q = self._q
        expected: tuple[tuple[str, object, object], ...] = (
            ("round_id", body.round_id, self._rid),
            ("federation", body.federation, self._roster.federation),
            ("department", body.department, dept),
            ("catalogue_version", body.catalogue_version, q.catalogue_version),
            ("table_id", body.table_id, q.table.id),
            ("academic_year", body.academic_year, q.snapshot),
            ("dimensions", list(body.dimensions), list(q.table.dimensions)),
            ("roster_version", body.roster_version, self._roster.version),
            ("participants", list(body.participants), list(self._parts)),
            ("key_holders", list(body.key_holders), holders),
        )
        for name, got, want in expected:
            if got != want:
                return f"wrong_{name}"
        if len(body.values) != codes.grid_size(q.table.dimensions):
            return "wrong_length"
        return None
