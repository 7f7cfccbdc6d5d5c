"""Scenarios of node.rpc.import_workers, each run in a fresh process by test_import_workers.py.

Workers are forked only from a process with no other thread, which a pytest process
cannot promise, so each scenario runs as ``python -m tests.import_worker_scenarios NAME DIR``
and prints one JSON object for the test to check.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from childreg import codes
from childreg.errors import ImportRejected, InvalidInput, NotFound, Unavailable
from childreg.models import (
    AssessmentIn,
    CareSettingIn,
    ChildIn,
    FunctioningItem,
    ImportRecord,
    PlacementIn,
)
from childreg.v1 import records_pb2 as pb
from node.crypto.keys import KekSource, Keyring, generate_key_file
from node.records.registry import Registry, RowSealer
from node.rpc.convert import import_batches, import_stream, records_from_import_stream
from node.rpc.import_workers import ImportWorkers
from node.store.sqlcipher import SqlCipherStore


def record(line: int, child_id: str, national_id: str | None = None) -> ImportRecord:
    """A full import row for ``child_id``."""
    return ImportRecord(
        line=line,
        child=ChildIn(
            child_id=child_id,
            national_id=national_id,
            given_name="Aysel",
            family_name="Məmmədova",
            date_of_birth=dt.date(2015, 3, 14),
            sex="female",
            district=codes.districts()[0],
            guardian_name="Leyla",
        ),
        placement=PlacementIn(
            child_id=child_id, academic_year="2023/24", education_form="inclusive_class"
        ),
        care=CareSettingIn(child_id=child_id, care_setting="family", since=dt.date(2015, 3, 14)),
        assessment=AssessmentIn(
            child_id=child_id,
            assessment_date=dt.date(2023, 5, 2),
            commission="Baku PMPC",
            impairment_band="pct_41_60",
            icf_codes=("d140.2", "e310+3"),
            diagnoses=("F84.0",),
            functioning=(FunctioningItem(domain="walking", level="some_difficulty"),),
            supports=("adapted_curriculum",),
            next_review=dt.date(2024, 5, 2),
        ),
    )


def good_records(n: int) -> list[ImportRecord]:
    """``n`` distinct valid rows (lines from 2, as in a CSV file)."""
    return [record(i + 2, f"C{i:05d}", f"AZ{i:08d}") for i in range(n)]


def bad_batches() -> list[pb.ImportBatch]:
    """A stream with bad values, in-import duplicates and a row of a child already held."""
    rows = good_records(700)
    rows[5] = record(7, "C00002")  # duplicate child id
    rows[650] = record(652, "C00650", "AZ00000009")  # duplicate national id
    rows[400] = record(402, "HELD")  # already held (see registry_with_held_child)
    batches = list(import_batches(rows, size=100))
    batches[0].records[3].child.date_of_birth = "2015-02-30"
    batches[2].records[7].placement.education_form = "no_such_form"
    batches[6].records[1].assessment.diagnoses.append("not a code")
    return batches


def open_store(root: Path, keyring: Keyring, name: str) -> SqlCipherStore:
    """A fresh encrypted store."""
    return SqlCipherStore.open(root / f"{name}.db", keyring.db_key_hex(), create=True)


def registry_with_held_child(store: SqlCipherStore, keyring: Keyring) -> Registry:
    """A registry already holding child HELD."""
    registry = Registry(store, keyring)
    registry.register_child(record(1, "HELD").child)
    return registry


def violations(fn: Any) -> list[list[Any]]:
    """The violations ``fn()`` was rejected with (as JSON-able lists)."""
    try:
        fn()
    except ImportRejected as exc:
        return [[v.field, v.problem, v.line] for v in exc.violations]
    return []


def held(registry: Registry, child_id: str) -> bool:
    """Whether the node holds ``child_id``."""
    try:
        registry.get_child(child_id)
    except NotFound:
        return False
    return True


def children_of(pid: int) -> list[int]:
    """The child processes of ``pid``."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()]


def _good(workers: ImportWorkers, keyring: Keyring, root: Path, out: dict[str, Any]) -> None:
    """Import through the workers; read rows back."""
    rows = good_records(1234)
    store = open_store(root, keyring, "node")
    registry = Registry(store, keyring)
    out["imported"] = registry.import_records(
        workers.rows(import_stream(import_batches(rows, size=100)))
    )
    out["equal"] = [
        registry.get_child(r.child.child_id).child == r.child
        and registry.get_child(r.child.child_id).assessments == (r.assessment,)
        for r in (rows[0], rows[617], rows[-1])
    ]
    own = os.getpriority(os.PRIO_PROCESS, 0)
    out["nice"] = {
        "own": own,
        "workers": [os.getpriority(os.PRIO_PROCESS, pid) for pid in out["worker_pids"]],
    }


def _bad(workers: ImportWorkers, keyring: Keyring, root: Path, out: dict[str, Any]) -> None:
    """The same bad stream through the workers and in the node's thread."""
    theirs = registry_with_held_child(open_store(root, keyring, "workers"), keyring)
    ours = registry_with_held_child(open_store(root, keyring, "inline"), keyring)
    out["workers"] = violations(
        lambda: theirs.import_records(workers.rows(import_stream(bad_batches())))
    )
    out["inline"] = violations(
        lambda: ours.import_records(records_from_import_stream(bad_batches()))
    )


def _killed(workers: ImportWorkers, keyring: Keyring, root: Path, out: dict[str, Any]) -> None:
    """A worker killed mid-import, then an import without workers."""
    store = open_store(root, keyring, "node")
    registry = Registry(store, keyring)
    victim = out["worker_pids"][0]

    def batches() -> Iterator[pb.ImportBatch]:
        for i, batch in enumerate(import_batches(good_records(3000), size=100)):
            if i == 10:
                os.kill(victim, signal.SIGKILL)
            yield batch

    try:
        registry.import_records(workers.rows(import_stream(batches())))
        out["first"] = "imported"
    except Unavailable as exc:
        out["first"] = str(exc)
    out["running"] = workers.running
    out["after_first"] = [held(registry, f"C{i:05d}") for i in (0, 2999)]
    out["second"] = registry.import_records(good_records(300))


def _abandoned(workers: ImportWorkers, keyring: Keyring, root: Path, out: dict[str, Any]) -> None:
    """An import whose stream is malformed midway, then another."""
    store = open_store(root, keyring, "node")
    registry = Registry(store, keyring)
    stream = list(import_batches(good_records(1000), size=100))
    stream[3].last = True  # the stream goes on after a "last" batch: InvalidInput
    try:
        registry.import_records(workers.rows(import_stream(stream)))
        out["first"] = "imported"
    except InvalidInput as exc:
        out["first"] = str(exc)
    rows = [record(i + 2, f"N{i:05d}") for i in range(450)]
    out["second"] = registry.import_records(
        workers.rows(import_stream(import_batches(rows, size=100)))
    )
    out["held"] = [held(registry, c) for c in ("C00000", "N00000", "N00449")]
    out["running"] = workers.running


def _store_fails(workers: ImportWorkers, keyring: Keyring, root: Path, out: dict[str, Any]) -> None:
    """The store fails on the third batch, then another import."""
    store = open_store(root, keyring, "node")
    registry = Registry(store, keyring)
    real_insert = store.insert_new_children
    calls = []
    kept: list[BaseException] = []

    def failing(rows: Any) -> None:
        calls.append(len(rows))
        if len(calls) == 3:
            raise OSError("disk full")
        real_insert(rows)

    store.insert_new_children = failing  # type: ignore[method-assign]
    try:
        registry.import_records(
            workers.rows(import_stream(import_batches(good_records(3000), size=500)))
        )
        out["first"] = "imported"
    except OSError as exc:
        out["first"] = str(exc)
        kept.append(exc)  # as a server might: its traceback keeps the row generator alive
    store.insert_new_children = real_insert  # type: ignore[method-assign]
    rows = [record(i + 2, f"N{i:05d}") for i in range(700)]
    out["second"] = registry.import_records(
        workers.rows(import_stream(import_batches(rows, size=100)))
    )
    out["held"] = [held(registry, c) for c in ("C00000", "N00000", "N00699")]
    out["running"] = workers.running


def _big_messages(
    workers: ImportWorkers, keyring: Keyring, root: Path, out: dict[str, Any]
) -> None:
    """Stream messages larger than a worker's chunk."""
    store = open_store(root, keyring, "node")
    registry = Registry(store, keyring)
    out["imported"] = registry.import_records(
        workers.rows(import_stream(import_batches(good_records(2100), size=2100)))
    )
    out["held"] = [held(registry, f"C{i:05d}") for i in (0, 499, 500, 2099)]


def _failed(workers: ImportWorkers, keyring: Keyring, root: Path, out: dict[str, Any]) -> None:
    """A batch the worker cannot parse."""
    worker = workers._workers[0] if workers._workers else None
    assert worker is not None
    workers._send(worker, 99, b"\xff\xff not a batch")
    try:
        workers._receive(worker, 99)
        out["failed"] = "no error"
    except Unavailable as exc:
        out["failed"] = str(exc)
    out["running"] = workers.running


def _orphan(workers: ImportWorkers, keyring: Keyring, root: Path, out: dict[str, Any]) -> None:
    """Wait to be killed: the workers must die with this process."""
    print(json.dumps(out), flush=True)
    signal.pause()  # the test kills this process; the workers must die with it


SCENARIOS: dict[str, Callable[[ImportWorkers, Keyring, Path, dict[str, Any]], None]] = {
    "good": _good,
    "bad": _bad,
    "killed": _killed,
    "abandoned": _abandoned,
    "store_fails": _store_fails,
    "big_messages": _big_messages,
    "failed": _failed,
    "orphan": _orphan,
}


def main(name: str, root: Path) -> dict[str, Any]:
    """Run scenario ``name`` in ``root``; the result to print."""
    generate_key_file(root / "kek.key")
    keyring = Keyring.create(root / "keyring.json", KekSource.from_key_file(root / "kek.key"))
    workers = ImportWorkers.start(RowSealer(keyring), 2)
    if workers is None:
        return {"started": False}
    out: dict[str, Any] = {
        "started": True,
        "worker_pids": children_of(os.getpid()),
        "frozen_at_fork": gc.get_freeze_count(),
    }
    SCENARIOS[name](workers, keyring, root, out)
    out["exit_codes"] = workers.close()
    out["after_close"] = children_of(os.getpid())
    return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], Path(sys.argv[2]))))
