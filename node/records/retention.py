"""Retention rules: which children's records are due for erasure, and erasing them.

Why: a registry of children may keep a record only as long as the law allows, so the
node's configuration (``[retention]`` in node/config.py) names up to two rules and this
module applies them: erase a closed record some full years after its closing date, and
erase any record (open or closed) once the child reaches a given age (18 plus the years
the law allows). :func:`due` lists what the rules make due on a day (a dry run writes no
erasure); :class:`RetentionRun` erases each one through the audited service, one
``child.erase`` leaf each whose purpose is the rule's reason code and whose actor is
whoever runs it: the operator (``childreg node retention --apply``) or the serving node
itself (its scheduled job, named by the node's SPIFFE id). A review that lists what is
due is one ``retention.review`` leaf without a subject: it reads many records but
discloses only pseudonyms.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import structlog

from childreg.errors import ChildregError, FailedPrecondition
from childreg.history import ErasureIn
from childreg.models import years_after
from childreg.signed import canonical_json
from node.audit.actor import Actor
from node.audit.service import Audited
from node.crypto.keys import Keyring
from node.records.registry import Registry
from node.store.base import RecordStore

log = structlog.get_logger(__name__)

AFTER_CLOSED: Final = "retention_after_closed"
AFTER_AGE: Final = "retention_after_age"
#: The action of a retention review's leaf (what is due was listed).
REVIEW_ACTION: Final = "retention.review"


@dataclass(frozen=True)
class Rules:
    """The configured rules; None: that rule is off."""

    erase_years_after_closed: int | None = None
    erase_at_age: int | None = None

    @property
    def any(self) -> bool:
        """Whether any rule is set."""
        return self.erase_years_after_closed is not None or self.erase_at_age is not None


@dataclass(frozen=True)
class Due:
    """A child due for erasure: by which rules (reason codes, the first is recorded)."""

    child_id: str
    pseudonym: str  # hex
    rules: tuple[str, ...]


def due(store: RecordStore, keyring: Keyring, rules: Rules, today: dt.date) -> list[Due]:
    """The children the rules make due on ``today``, by pseudonym (writes nothing)."""
    found: dict[str, list[str]] = {}
    with store.read_view():
        if rules.erase_years_after_closed is not None:
            cutoff = years_after(today, -rules.erase_years_after_closed)
            for child_id, _ in store.closed_on_or_before(cutoff):
                found.setdefault(child_id, []).append(AFTER_CLOSED)
        if rules.erase_at_age is not None:
            for child_id in store.born_on_or_before(years_after(today, -rules.erase_at_age)):
                found.setdefault(child_id, []).append(AFTER_AGE)
    listed = [Due(cid, keyring.pseudonym(cid).hex(), tuple(r)) for cid, r in found.items()]
    return sorted(listed, key=lambda d: d.pseudonym)


@dataclass(frozen=True)
class Outcome:
    """What a retention run did: the children erased and those that could not be."""

    erased: tuple[Due, ...]
    failed: tuple[Due, ...]


class RetentionRun:
    """Reviews and applies the rules through the audited service, as ``actor``."""

    def __init__(
        self,
        store: RecordStore,
        keyring: Keyring,
        registry: Registry,
        audited: Audited,
        *,
        rules: Rules,
        actor: Actor,
    ) -> None:
        self._store = store
        self._keys = keyring
        self._registry = registry
        self._audited = audited
        self.rules = rules
        self.actor = actor

    def review(self, today: dt.date) -> list[Due]:
        """What is due on ``today``: one ``retention.review`` leaf, committed first."""
        request = canonical_json({"command": "retention-review", "day": today.isoformat()})
        return self._audited.disclose(
            self.actor,
            REVIEW_ACTION,
            request,
            lambda: due(self._store, self._keys, self.rules, today),
            purpose="dry-run",
        )

    def apply(self, today: dt.date, progress: Callable[[int, int], None] | None = None) -> Outcome:
        """Erase every child due on ``today``, one ``child.erase`` leaf each (each its own
        transaction, so one that fails leaves the others erased)."""
        listed = due(self._store, self._keys, self.rules, today)
        erased: list[Due] = []
        failed: list[Due] = []
        for n, item in enumerate(listed, start=1):
            request = ErasureIn(child_id=item.child_id, reason=item.rules[0])
            try:
                self._audited.change(
                    self.actor,
                    "child.erase",
                    canonical_json(request.model_dump()),
                    functools.partial(self._erase_if_due, request, today),
                    item.child_id,
                    purpose=request.reason,
                )
            except ChildregError:  # its failure leaf is written; the others go on
                failed.append(item)
            else:
                erased.append(item)
            if progress is not None:
                progress(n, len(listed))
        return Outcome(tuple(erased), tuple(failed))

    def _erase_if_due(self, request: ErasureIn, today: dt.date) -> object:
        """Erase the child if the rules still make it due, checked inside the erasure's
        transaction: a birth date or closing corrected since the listing keeps the record
        (FailedPrecondition, so its leaf says so)."""
        if not still_due(self._store, self.rules, today, request.child_id):
            raise FailedPrecondition("the record is no longer due for erasure under the rules")
        return self._registry.erase_child(request)


def still_due(store: RecordStore, rules: Rules, today: dt.date, child_id: str) -> bool:
    """Whether the rules make one held child due on ``today`` (True for a child not held:
    the erasure itself then answers Erased or NotFound)."""
    stored = store.get_child(child_id)
    if stored is None:
        return True
    age = rules.erase_at_age
    if age is not None and stored.date_of_birth <= years_after(today, -age):
        return True
    after = rules.erase_years_after_closed
    if after is None:
        return False
    closure = store.closure(child_id)
    return closure is not None and closure.closed_on <= years_after(today, -after)


class RetentionJob:
    """The serving node's scheduled run of the rules: every ``interval`` seconds, in a
    daemon thread, first once shortly after start-up; logs counts only, never an id."""

    def __init__(
        self,
        run: RetentionRun,
        interval: float,
        clock: Callable[[], dt.date] = lambda: dt.datetime.now(dt.UTC).date(),
        first_delay: float = 5.0,
    ) -> None:
        self._run = run
        self._interval = interval
        self._clock = clock
        self._first_delay = first_delay
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs = 0  # completed runs (for health and tests)

    def start(self) -> None:
        """Run in a daemon thread until :meth:`stop`."""
        self._thread = threading.Thread(target=self._loop, name="retention", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop (an erasure in progress finishes)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def run_once(self) -> Outcome:
        """Apply the rules for today now."""
        outcome = self._run.apply(self._clock())
        self.runs += 1
        log.info(
            "retention.ran", erased=len(outcome.erased), failed=len(outcome.failed)
        )  # counts only
        return outcome

    def _loop(self) -> None:
        wait = self._first_delay
        while not self._stop.wait(wait):
            try:
                self.run_once()
            except Exception as exc:  # the job must outlive one bad run; the next retries
                log.error("retention.failed", error=type(exc).__name__)
            wait = self._interval
