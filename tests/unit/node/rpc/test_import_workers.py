"""node.rpc.import_workers: sealing in forked workers gives exactly the in-process import.

Scenarios that fork run in a fresh process (tests/import_worker_scenarios.py): a pytest
process may already run threads, and the workers refuse to fork from such a process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings

from childreg.models import ImportRecord
from node.crypto.keys import KekSource, Keyring, generate_key_file
from node.records.registry import RowSealer
from node.rpc.import_workers import WORKER_NICENESS, ImportWorkers, from_wire, to_wire
from tests import strategies as s
from tests.import_worker_scenarios import record

ROOT = Path(__file__).resolve().parents[4]
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="workers fork (Linux)")


def run(scenario: str, tmp_path: Path) -> dict[str, Any]:
    """Run a scenario in a fresh Python process; its JSON result."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.import_worker_scenarios", scenario, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    assert result["started"], "the workers did not start in a fresh single-threaded process"
    assert "Traceback" not in done.stderr, done.stderr  # workers leave the log alone
    return result


def test_workers_import_every_row_and_the_rows_read_back(tmp_path: Path) -> None:
    """Two workers import all 1234 rows, the rows read back equal, and closing their pipes ends
    them cleanly."""
    got = run("good", tmp_path)
    assert len(got["worker_pids"]) == 2
    assert got["imported"] == 1234
    assert got["equal"] == [True, True, True]
    assert got["exit_codes"] == [0, 0]  # closing their pipes ended them: none was killed
    assert got["after_close"] == []


def test_workers_yield_the_cpu_and_share_start_up_memory(tmp_path: Path) -> None:
    """Workers run at a lower priority (higher niceness) than the node that forked them."""
    got = run("good", tmp_path)
    nice = got["nice"]
    assert nice["workers"] == [min(19, nice["own"] + WORKER_NICENESS)] * 2
    # and start-up's objects were frozen before the fork, so the workers' garbage
    # collectors leave those pages shared with the node
    assert got["frozen_at_fork"] > 1000


def test_workers_report_the_same_violations_in_the_same_order_as_the_node_itself(
    tmp_path: Path,
) -> None:
    """Workers report a bad file's violations exactly as, and in the order that, the node's own
    validation does."""
    got = run("bad", tmp_path)
    assert got["workers"] == got["inline"]
    assert [line for _, _, line in got["workers"]] == [5, 7, 209, 402, 603, 652]


def test_a_worker_killed_mid_import_imports_nothing_and_the_next_import_runs_without(
    tmp_path: Path,
) -> None:
    """A worker killed mid-import fails that import with nothing imported, and the next import
    runs without workers."""
    got = run("killed", tmp_path)
    assert got["first"].startswith("an import worker stopped; nothing was imported")
    assert got["after_close"] == []
    assert got["running"] is False
    assert got["after_first"] == [False, False]
    assert got["second"] == 300


def test_an_abandoned_import_leaves_nothing_behind_for_the_next(tmp_path: Path) -> None:
    """An import whose stream goes on after its last batch is refused and leaves the workers
    ready for the next import."""
    got = run("abandoned", tmp_path)
    assert got["first"].startswith("the import stream continued after its last batch")
    assert got["second"] == 450
    assert got["held"] == [False, True, True]
    assert got["running"] is True
    assert got["exit_codes"] == [0, 0]


def test_a_store_failing_mid_import_leaves_no_reply_behind(tmp_path: Path) -> None:
    """A store failure mid-import fails that import and leaves no stale worker reply for the
    next one."""
    got = run("store_fails", tmp_path)
    assert got["first"] == "disk full"
    assert got["second"] == 700
    assert got["held"] == [False, True, True]
    assert got["running"] is True
    assert got["exit_codes"] == [0, 0]


def test_stream_messages_bigger_than_a_chunk_are_split_for_the_workers(tmp_path: Path) -> None:
    """Stream messages bigger than a worker chunk are split and every row is imported."""
    got = run("big_messages", tmp_path)
    assert got["imported"] == 2100
    assert got["held"] == [True, True, True, True]


def test_a_batch_a_worker_cannot_seal_stops_the_workers_naming_only_the_error_type(
    tmp_path: Path,
) -> None:
    """A batch a worker cannot decode stops the workers and the import, naming only the error
    type."""
    got = run("failed", tmp_path)
    assert got["failed"].startswith("an import worker failed (DecodeError); nothing was imported")
    assert got["running"] is False


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_workers_die_with_the_node(tmp_path: Path) -> None:
    """Killing the node's process kills its import workers too."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.import_worker_scenarios", "orphan", str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        while not line.startswith("{"):  # log lines come first
            line = proc.stdout.readline()
        pids = json.loads(line)["worker_pids"]
        assert len(pids) == 2
        assert all(_alive(p) for p in pids)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 30
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(p) for p in pids)
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_no_workers_are_forked_from_a_process_running_other_threads(keyring: Keyring) -> None:
    """No workers are forked while the process runs other threads."""
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert ImportWorkers.start(RowSealer(keyring), 2) is None
    finally:
        stop.set()
        other.join()


def test_zero_workers_means_none(keyring: Keyring) -> None:
    """Asking for zero workers starts none."""
    assert ImportWorkers.start(RowSealer(keyring), 0) is None


@pytest.fixture(scope="module")
def sealer(tmp_path_factory: pytest.TempPathFactory) -> RowSealer:
    """A row sealer over a keyring made once for the module (hypothesis reuses it)."""
    root = tmp_path_factory.mktemp("keys")
    generate_key_file(root / "kek.key")
    return RowSealer(
        Keyring.create(root / "keyring.json", KekSource.from_key_file(root / "kek.key"))
    )


@settings(max_examples=40, deadline=None)
@given(record=s.import_records())
def test_a_sealed_row_crosses_the_process_boundary_unchanged(
    sealer: RowSealer, record: ImportRecord
) -> None:
    """A sealed row survives the wire encoding between worker and node unchanged."""
    row = sealer.row(record)
    assert from_wire(to_wire(row)) == row


def test_an_unsealed_row_never_crosses(sealer: RowSealer) -> None:
    """An unsealed row cannot be put on the wire between worker and node."""
    with pytest.raises(ValueError, match="only sealed rows"):
        to_wire(sealer.row(record(2, "C1"), seal=False))
