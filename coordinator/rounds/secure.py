"""Secure-aggregation rounds as the coordinator runs them (docs/design/privacy.md, stage 2).

Why this module exists: with per-department noise (stage 1) the national error grows with
the number of departments. Here each participating node adds only a share of the noise
(variance σ²/(t−c)) to its table over the *national* grid and masks the result with
pairwise masks (childreg/secagg/masks.py), so the coordinator learns the noisy national
vector and never one department's table. That is sound only under rules the coordinator
keeps here, on top of the ones each node keeps:

- **One participant set per snapshot.** A node takes part with one set only per
  snapshot (for every table, and more than half of the roster), so before the first round
  of a snapshot the coordinator asks every configured department the data-free ``Ready``
  (retrying those that cannot be reached until ``settle_seconds`` have passed; a refusal
  stops settling) and records the ready ones durably in the release store, final for the
  snapshot; every table of the snapshot uses that set and names the departments left out.
  When nodes report a set they already took part with (the coordinator lost its state),
  that set is used if the reports agree and all its members confirm it, and the round
  fails clearly otherwise.
- **At least t survivors.** A round runs four steps over the settled set
  (coordinator/rounds/steps.py): a department that cannot be reached is dropped and named,
  one that refuses or sends what does not verify aborts the attempt, and fewer than the
  threshold t (more than half of the roster) unmask nothing. Every upload is opened with
  its department's roster key and must be bound to this round. A retry (only when too few
  survived) uses a fresh round id, so fresh masks. Each share is drawn for t survivors, so
  the published variance is survivors × σ²/(t − c).

Nothing here logs a vector; ``on_message`` lets a test see every message the nodes sent.
Light to import (no numpy): command-line tools load it.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final

import grpc
import structlog
from google.protobuf.message import Message

from childreg.errors import ChildregError, FailedPrecondition
from childreg.secagg.roster import Roster, RosterMember
from childreg.v1 import statistics_pb2 as spb
from childreg.v1 import statistics_pb2_grpc as spb_grpc
from coordinator.publication.releases import ParticipantSet, ReleaseStore
from coordinator.rounds.federation import (
    MAX_CELL_COUNT,
    NATIONAL,
    SECURE_AGGREGATION,
    AreaMeasurement,
    IncompleteRound,
    Measurement,
    StatementPieces,
    TableRound,
)
from coordinator.rounds.steps import TRANSIENT, Attempt, AttemptFailed, AttemptResult

log = structlog.get_logger("childreg.coordinator")

#: Before a round, a participant whose connection is refused (UNAVAILABLE) is asked again
#: this many times, READY_REASK_SECONDS apart (at most ``retry_interval``), then dropped: a
#: node just restarted may still be reconnecting (coordinator/rounds/channels.py caps the
#: backoff). One that hung (DEADLINE_EXCEEDED) already took its deadline and is not.
READY_REASKS: Final = 2
READY_REASK_SECONDS: Final = 0.5

#: Sees every response message from a node: (department, ReadyReply or MaskedShare).
Observer = Callable[[str, Message], None]


@dataclass(frozen=True)
class SignedRoster:
    """The federation roster as signed by the statistics authority, and its content."""

    blob: bytes  # sent to the nodes in every request, exactly as signed
    roster: Roster


class RoundAborted(IncompleteRound):
    """A secure round did not complete: nothing was unmasked or published. Its message
    starts with "incomplete round" like every IncompleteRound (the CLI's exit code 3).

    ``reasons`` maps each department at fault to why: a gRPC status name,
    ``bad_signature``, ``wrong_<field>`` or ``wrong_length``.
    """

    def __init__(self, message: str, reasons: Mapping[str, str]) -> None:
        super().__init__(message)
        self.reasons = dict(reasons)


class SecureRounds:
    """Stage 2: the national noisy table of a snapshot's participant set, unmasked."""

    def __init__(
        self,
        stubs: Mapping[str, spb_grpc.StatisticsServiceStub],
        roster: SignedRoster,
        store: ReleaseStore,
        *,
        deadline_seconds: float,
        settle_seconds: float = 30.0,
        round_attempts: int = 3,
        retry_interval: float = 1.0,
        on_message: Observer | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if round_attempts < 1 or settle_seconds <= 0 or deadline_seconds <= 0:
            raise ValueError("attempts, settle and deadline must be positive")
        self._stubs = stubs  # may be live (renewed channels): read once per call round
        self._signed = roster
        self._store = store
        self._deadline = deadline_seconds
        self._settle_seconds = settle_seconds
        self._attempts = round_attempts
        self._retry_interval = retry_interval
        self._observe = on_message
        self._clock = clock
        self._sleep = sleep

    @property
    def areas(self) -> frozenset[str]:
        """Only the nation: no department's or region's table is ever unmasked."""
        return frozenset({NATIONAL})

    @property
    def roster(self) -> Roster:
        """The verified federation roster."""
        return self._signed.roster

    def measure(self, question: TableRound) -> Measurement:
        """Settle the snapshot's participant set if needed, then run the round."""
        self.roster.check_covers(question.snapshot)  # every node would refuse it
        settled = self._store.participant_set(question.snapshot) or self._settle(question)
        members = self._members(settled, question.snapshot)
        result = self._run(question, settled, members)
        n, c = len(result.survivors), self.roster.colluders
        # Each share was drawn for the fewest survivors a round may have (the threshold t),
        # so that the t − c honest ones alone would add σ².
        share = question.sigma_squared / (result.threshold - c)
        configured = set(self._stubs)
        missing = (
            set(settled.missing)
            | (configured - set(settled.participants))
            | (set(settled.participants) - set(result.survivors))  # lost before uploading
        )
        return Measurement(
            {NATIONAL: AreaMeasurement(result.survivors, result.values, units=1)},
            unit_variance=n * share,
            statement=StatementPieces(SECURE_AGGREGATION, n, c, str(share)),
            missing_departments=tuple(sorted(missing)),
            dropped_departments=result.dropped,
        )

    # --- the participant set ---------------------------------------------------------

    def _settle(self, question: TableRound) -> ParticipantSet:
        """Ask every configured department until it is ready or time is up; record the set."""
        configured = list(self._stubs)
        deadline = self._clock() + self._settle_seconds
        replies: dict[str, spb.ReadyReply] = {}
        reasons: dict[str, str] = {}
        while True:
            answered, failed = self._ready(question, [d for d in configured if d not in replies])
            refused = {d: r for d, r in failed.items() if r not in TRANSIENT}
            if refused:  # a node that answers and refuses is not "down": never settle it out
                named = ", ".join(f"{d} ({r})" for d, r in sorted(refused.items()))
                raise RoundAborted(
                    f"incomplete round: departments refused to take part in table "
                    f"{question.table.id} of snapshot {question.snapshot}: {named}. Only a "
                    "department that cannot be reached is left out of a snapshot; fix the "
                    "refusal (its log says why) and ask again. Nothing was recorded or "
                    "published",
                    refused,
                )
            replies.update(answered)
            ready = set(replies)
            reasons = {d: r for d, r in {**reasons, **failed}.items() if d not in ready}
            recorded = self._recorded(question, replies, configured)
            needed = recorded if recorded is not None else set(configured)
            if needed <= ready or self._clock() >= deadline:
                break
            self._sleep(max(0.0, min(self._retry_interval, deadline - self._clock())))
        chosen = recorded if recorded is not None else ready
        if recorded is not None and not recorded <= ready:
            named = ", ".join(sorted(recorded - ready))
            raise IncompleteRound(
                f"incomplete round: nodes report they took part in snapshot "
                f"{question.snapshot} with {', '.join(sorted(recorded))}, but {named} did not "
                f"answer within {self._settle_seconds:g} s to confirm it. Nothing was "
                "recorded or published; ask again when they are up"
            )
        missing = set(configured) - chosen
        need = self.roster.min_participants
        if recorded is None and len(chosen) < need:
            named = ", ".join(f"{d} ({reasons.get(d, 'not ready')})" for d in sorted(missing))
            raise IncompleteRound(
                f"incomplete round: secure aggregation needs at least {need} ready departments "
                f"(more than half of the roster's {len(self.roster.members)}, and more than "
                f"the {self.roster.colluders} assumed to collude); only {len(chosen)} were "
                f"ready within {self._settle_seconds:g} s. Not ready: {named}. Nothing was "
                "recorded or published; ask again when they are up"
            )
        self._valid_set(chosen, question.snapshot)
        settled = self._store.settle_participants(
            question.snapshot, chosen, missing, roster_version=self.roster.version
        )
        log.info(
            "snapshot.participants_settled",
            snapshot=question.snapshot,
            participants=list(settled.participants),
            missing=list(settled.missing),
            from_nodes=recorded is not None,
        )
        return settled

    def _recorded(
        self, question: TableRound, replies: Mapping[str, spb.ReadyReply], configured: list[str]
    ) -> set[str] | None:
        """The set nodes report they already took part with in this snapshot, if any."""
        reported = {d: set(r.recorded_participants) for d, r in replies.items()}
        reported = {d: s for d, s in reported.items() if s}
        if not reported:
            return None
        sets = sorted({tuple(sorted(s)) for s in reported.values()})
        where = f"snapshot {question.snapshot}"
        if len(sets) > 1:
            shown = "; ".join(f"{d}: {', '.join(sorted(s))}" for d, s in sorted(reported.items()))
            raise FailedPrecondition(
                f"departments already took part in {where} with different participant sets "
                f"({shown}); no round can complete for it. Nothing was published"
            )
        recorded = set(sets[0])
        problems = [
            f"{d} reports it but is not in it" for d in sorted(reported) if d not in recorded
        ]
        problems += [f"{d} is not configured here" for d in sorted(recorded - set(configured))]
        if problems:
            raise FailedPrecondition(
                f"the participant set nodes report for {where} "
                f"({', '.join(sorted(recorded))}) is inconsistent: {'; '.join(problems)}. "
                "Nothing was published"
            )
        return recorded

    def _valid_set(self, departments: Iterable[str], snapshot: str) -> tuple[RosterMember, ...]:
        """The roster members of a participant set; FailedPrecondition when it cannot be."""
        try:
            return self.roster.participants(departments)
        except ChildregError as exc:
            raise FailedPrecondition(
                f"the participant set of snapshot {snapshot} cannot be used with roster "
                f"version {self.roster.version}: {exc}"
            ) from None

    def _members(self, settled: ParticipantSet, snapshot: str) -> dict[str, RosterMember]:
        """The settled participants' roster entries; every one must be configured here."""
        members = self._valid_set(settled.participants, snapshot)
        gone = sorted(set(settled.participants) - set(self._stubs))
        if gone:
            raise FailedPrecondition(
                f"departments of snapshot {snapshot}'s participant set are no longer "
                f"configured: {', '.join(gone)}; its remaining tables need them back"
            )
        return {m.department: m for m in members}

    def _ready(
        self, question: TableRound, departments: Iterable[str]
    ) -> tuple[dict[str, spb.ReadyReply], dict[str, str]]:
        """Ask ``departments`` at once whether they can take part; replies and failures."""
        request = spb.ReadyRequest(
            signed_catalogue=question.signed_catalogue,
            signed_roster=self._signed.blob,
            table_id=question.table.id,
            academic_year=question.snapshot,
        )
        stubs = dict(self._stubs)
        calls = {d: stubs[d].Ready.future(request, timeout=self._deadline) for d in departments}
        replies: dict[str, spb.ReadyReply] = {}
        failed: dict[str, str] = {}
        for dept, call in calls.items():
            try:
                reply: spb.ReadyReply = call.result()
            except grpc.RpcError as err:
                failed[dept] = err.code().name
                continue
            self._seen(dept, reply)
            if reply.department != dept:
                failed[dept] = "wrong_department"
            elif reply.roster_version != self.roster.version:
                failed[dept] = "wrong_roster_version"
            else:
                replies[dept] = reply
        if failed:
            log.warning("round.not_ready", table=question.table.id, departments=failed)
        return replies, failed

    # --- the round -------------------------------------------------------------------

    def _run(
        self, question: TableRound, settled: ParticipantSet, members: Mapping[str, RosterMember]
    ) -> AttemptResult:
        """Attempts with fresh round ids until one unmasks over at least the threshold."""
        for attempt in range(1, self._attempts + 1):
            started = time.perf_counter()
            round_id = secrets.token_hex(16)
            replies, failures = self._ready(question, settled.participants)
            for _ in range(READY_REASKS):  # a node just back may still be reconnecting
                # Only a refused connection: a node that hung took its whole deadline already.
                lost = [d for d, r in failures.items() if r == "UNAVAILABLE"]
                if not lost:
                    break
                self._sleep(min(self._retry_interval, READY_REASK_SECONDS))
                more, still = self._ready(question, lost)
                replies.update(more)
                failures = {d: r for d, r in failures.items() if d not in lost} | still
            for dept, reply in replies.items():
                if reply.recorded_participants and set(reply.recorded_participants) != set(
                    settled.participants
                ):
                    raise FailedPrecondition(
                        f"department {dept} already took part in snapshot {question.snapshot} "
                        f"with another participant set "
                        f"({', '.join(sorted(reply.recorded_participants))}) than the one "
                        f"settled for the snapshot ({', '.join(settled.participants)}); the "
                        "table cannot be published for this snapshot"
                    )
            refused = {d: r for d, r in failures.items() if r not in TRANSIENT}
            try:
                if refused:
                    named = ", ".join(f"{d} ({r})" for d, r in sorted(refused.items()))
                    raise AttemptFailed(f"Ready refused by {named}", refused)
                result = Attempt(
                    self._stubs,
                    roster=self.roster,
                    signed_roster=self._signed.blob,
                    members=members,
                    question=question,
                    participants=settled.participants,
                    round_id=round_id,
                    deadline=self._deadline,
                    observe=self._seen,
                    lost=failures,
                ).run()
            except AttemptFailed as failed:
                reasons = failed.reasons or dict(failures)
                log.warning(
                    "round.aborted",
                    round_id=round_id,
                    table=question.table.id,
                    snapshot=question.snapshot,
                    attempt=attempt,
                    departments=reasons,
                )
                if not set(reasons.values()) <= TRANSIENT or attempt == self._attempts:
                    named = ", ".join(f"{d} ({r})" for d, r in sorted(reasons.items()))
                    who = f"; at fault or lost: {named}" if named else ""
                    raise RoundAborted(
                        f"incomplete round: secure aggregation aborted after {attempt} "
                        f"attempt(s): {failed.line}{who}"
                        "; nothing was unmasked, nothing was published. Ask again later (the "
                        "same departments take part): the budget already charged for this "
                        "table is not charged again",
                        reasons,
                    ) from None
                self._sleep(self._retry_interval)
                continue
            log.info(
                "round.done",
                round_id=round_id,
                table=question.table.id,
                snapshot=question.snapshot,
                participants=len(result.survivors),
                dropped=list(result.dropped),
                attempt=attempt,
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
            )
            if any(abs(v) > MAX_CELL_COUNT for v in result.values):
                raise RoundAborted(
                    "incomplete round: the unmasked national table is out of range although "
                    "every upload was signed (a node computed its upload wrongly); nothing "
                    "was published",
                    {},
                )
            return result
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _seen(self, dept: str, message: Message) -> None:
        if self._observe is not None:
            self._observe(dept, message)
