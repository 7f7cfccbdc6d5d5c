"""The retention rules (node/records/retention.py), on both stores.

A closed record is due some full years after its closing, any record once the child
reaches the configured age; a dry run lists pseudonyms and erases nothing; applying the
rules erases each one with a leaf naming the actor and the rule; the scheduled job runs
the same and stops when told.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from childreg.audit.leaf import AuditEvent
from childreg.errors import Erased
from childreg.history import Closure, Correction
from node.audit.actor import Actor, acting_as
from node.audit.log import AuditLog
from node.audit.service import Audited
from node.crypto.keys import Keyring
from node.records import retention as retention_module
from node.records.registry import Registry
from node.records.retention import (
    AFTER_AGE,
    AFTER_CLOSED,
    Due,
    RetentionJob,
    RetentionRun,
    Rules,
    due,
)
from node.store.base import RecordStore
from tests.unit.node.records.children import a_child

TODAY = dt.date(2026, 12, 7)
OPERATOR = Actor.operator("baku", "ops-1")


@pytest.fixture
def registry(store: RecordStore, keyring: Keyring) -> Registry:
    """Four children: C1 closed 6 years ago, C2 closed 4 years ago, C3 born 24 years ago
    (and closed 6 years ago), C4 an open record of a young child."""
    made = Registry(store, keyring)
    born = {"C1": dt.date(2012, 1, 5), "C2": dt.date(2013, 2, 6),
            "C3": dt.date(2002, 12, 7), "C4": dt.date(2019, 3, 8)}  # fmt: skip
    for cid, day in born.items():
        made.register_child(a_child(cid, given_name="Ayla" + cid[1], date_of_birth=day))
    for cid, on in (("C1", dt.date(2020, 12, 7)), ("C2", dt.date(2022, 6, 1)),
                    ("C3", dt.date(2020, 1, 1))):  # fmt: skip
        made.close_child(Closure(child_id=cid, closed_on=on, reason="moved_abroad"))
    return made


def run(store: RecordStore, keyring: Keyring, registry: Registry, rules: Rules) -> RetentionRun:
    """A retention run as the operator, over the store's audit log."""
    return RetentionRun(
        store,
        keyring,
        registry,
        Audited(store, keyring, log_of(store)),
        rules=rules,
        actor=OPERATOR,
    )


def log_of(store: RecordStore) -> AuditLog:
    """The store's audit log."""
    return AuditLog(store, bytes(32), federation="test.childreg", department="baku")


def leaves(store: RecordStore) -> list[AuditEvent]:
    """Every leaf of the store's log, decoded."""
    return [AuditEvent.from_bytes(b) for b in log_of(store).leaves()]


def test_what_each_rule_makes_due(registry: Registry, store: RecordStore, keyring: Keyring) -> None:
    """5 years after closing: C1 (exactly 6 years) and C3; at 23: C3 only; both: C3 by both."""
    ps = {cid: keyring.pseudonym(cid).hex() for cid in ("C1", "C2", "C3", "C4")}

    def listed(rules: Rules, day: dt.date = TODAY) -> dict[str, tuple[str, ...]]:
        return {d.pseudonym: d.rules for d in due(store, keyring, rules, day)}

    assert listed(Rules(erase_years_after_closed=5)) == {
        ps["C1"]: (AFTER_CLOSED,),
        ps["C3"]: (AFTER_CLOSED,),
    }
    assert listed(Rules(erase_years_after_closed=6)) == {
        ps["C1"]: (AFTER_CLOSED,),  # closed on this day six years ago: due today
        ps["C3"]: (AFTER_CLOSED,),
    }
    assert listed(Rules(erase_years_after_closed=6), TODAY - dt.timedelta(days=1)) == {
        ps["C3"]: (AFTER_CLOSED,)
    }
    assert listed(Rules(erase_at_age=23)) == {ps["C3"]: (AFTER_AGE,)}
    assert listed(Rules(erase_at_age=25)) == {}
    assert listed(Rules(erase_years_after_closed=5, erase_at_age=23))[ps["C3"]] == (
        AFTER_CLOSED,
        AFTER_AGE,
    )
    assert listed(Rules()) == {}


def test_a_review_lists_and_erases_nothing(
    registry: Registry, store: RecordStore, keyring: Keyring
) -> None:
    """A review returns what is due, leaves one retention.review leaf, and erases nothing."""
    retention = run(store, keyring, registry, Rules(erase_years_after_closed=5))
    assert len(retention.review(TODAY)) == 2
    assert store.child_count() == 4
    (leaf,) = leaves(store)
    assert (leaf.action, leaf.actor, leaf.subject, leaf.purpose) == (
        "retention.review",
        OPERATOR.name,
        "",
        "dry-run",
    )


def test_applying_erases_each_one_with_its_leaf(
    registry: Registry, store: RecordStore, keyring: Keyring
) -> None:
    """Apply erases exactly the children due, one child.erase leaf each naming the actor
    and the rule; applying again the same day erases nothing more."""
    retention = run(store, keyring, registry, Rules(erase_years_after_closed=5, erase_at_age=23))
    seen: list[tuple[int, int]] = []
    outcome = retention.apply(TODAY, progress=lambda n, total: seen.append((n, total)))
    assert sorted(d.child_id for d in outcome.erased) == ["C1", "C3"]
    assert outcome.failed == ()
    assert seen == [(1, 2), (2, 2)]
    for cid in ("C1", "C3"):
        with pytest.raises(Erased):
            registry.get_child(cid)
    assert registry.get_child("C2").child.child_id == "C2"
    got = leaves(store)
    assert sorted((e.subject, e.purpose) for e in got) == sorted(
        [
            (keyring.pseudonym("C1").hex(), AFTER_CLOSED),
            (keyring.pseudonym("C3").hex(), AFTER_CLOSED),
        ]
    )
    assert {(e.action, e.actor, e.outcome) for e in got} == {("child.erase", OPERATOR.name, "OK")}
    assert {t.reason for t in store.erased_children()} == {AFTER_CLOSED}
    assert retention.apply(TODAY).erased == ()


def test_the_scheduled_job_runs_the_rules_and_stops(
    registry: Registry, store: RecordStore, keyring: Keyring
) -> None:
    """run_once applies the rules for the job's day; a started job stops when told."""
    job = RetentionJob(
        run(store, keyring, registry, Rules(erase_at_age=23)),
        interval=3600,
        clock=lambda: TODAY,
        first_delay=3600,
    )
    outcome = job.run_once()
    assert [d.child_id for d in outcome.erased] == ["C3"]
    assert job.runs == 1
    job.start()
    job.stop()
    assert job.runs == 1  # stopped before its first scheduled run


def test_a_record_corrected_out_of_due_while_the_run_starts_is_not_erased(
    registry: Registry, store: RecordStore, keyring: Keyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A birth date corrected after the run listed the child, before its erasure, keeps the
    record: each erasure checks the rule again inside its own transaction."""
    registry.register_child(a_child("C5", given_name="Aylin", date_of_birth=dt.date(2003, 1, 1)))
    listed = retention_module.due

    def correction_lands_after_listing(*args: Any) -> list[Due]:
        found = listed(*args)
        with acting_as(Actor.staff("baku", "aysel")):
            registry.correct_child(
                Correction(child_id="C5", date_of_birth=dt.date(2013, 1, 1), reason="typo")
            )
        return found

    monkeypatch.setattr(retention_module, "due", correction_lands_after_listing)
    outcome = run(store, keyring, registry, Rules(erase_at_age=23)).apply(TODAY)
    assert "C5" in [d.child_id for d in (*outcome.erased, *outcome.failed)]
    assert registry.get_child("C5").child.date_of_birth == dt.date(2013, 1, 1)
    assert [d.child_id for d in outcome.erased] == ["C3"]
