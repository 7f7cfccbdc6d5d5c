"""Checking and sealing a bulk import on more than one core.

A bulk import spends about two thirds of its time in Python checking each row (pydantic)
and sealing it (a new data key, seven XChaCha20-Poly1305 calls); the rest is SQLCipher
writing the batch. One Python process does only one of these at a time, so the node
forks a few worker processes when it starts: the gRPC thread hands each stream batch, as
its serialized bytes, to a worker, which validates and seals its rows and sends them
back as plain tuples; the node's own thread checks them against the store, in input
order, and writes them inside the import's one transaction. The all-or-nothing rule and
the order of reported violations are exactly those of
:meth:`node.records.registry.Registry.import_records`.

Workers are forked before the node opens its database or starts gRPC (a process must not
fork while other threads or SQLite connections exist), so they inherit the keyring in
memory and nothing else; they hold no file of the node open, write nothing, log nothing
(a worker whose pipe closes just exits), and die with the node (``PR_SET_PDEATHSIG``).
If they cannot be started (another thread already runs, or fork is unavailable) or stop
working, imports are sealed in the node's own thread: the same result, only slower.
"""

from __future__ import annotations

import ctypes
import gc
import multiprocessing
import os
import signal
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as connection_wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Final, NamedTuple, cast

import structlog

from childreg.errors import Unavailable, Violation
from childreg.models import ImportRecord
from childreg.v1 import records_pb2 as pb
from node.records.registry import RowSealer, SealedRow
from node.rpc.convert import IMPORT_BATCH, Received, batch_of, import_record_from_proto
from node.store.base import NewChild

log = structlog.get_logger("childreg.node.import")

_PR_SET_PDEATHSIG: Final = 1

#: Most records one worker seals at a time: a client may send far bigger stream messages,
#: and a reply holds its rows in memory (about 1 kB each, sealed).
CHUNK: Final = IMPORT_BATCH

#: How much less scheduling priority workers have than the node (``nice``). On a machine
#: whose cores are all busy during an import (two workers and the node on two cores), the
#: node's thread, which alone writes the rows, runs whenever it can and the workers take
#: the time it leaves: an import ran 15-25 % faster than at equal priority (bench (a)),
#: and other calls to the node are not queued behind the sealing.
WORKER_NICENESS: Final = 10

#: A sealed row as it crosses the process boundary: line, national-id digest, the store's
#: bulk row (:data:`~node.store.base.NewChild`) and the search tokens, all plain tuples,
#: strings and bytes, which pickle and unpickle several times faster than records or named tuples.
WireRow = tuple[int, bytes | None, NewChild, frozenset[bytes]]


def to_wire(row: SealedRow) -> WireRow:
    """A sealed row as tuples (the row must be sealed)."""
    if row.sealed is None:
        raise ValueError("only sealed rows cross to the node")
    return (row.line, row.digest, row.sealed, row.tokens)


def from_wire(wire: WireRow) -> SealedRow:
    """The sealed row of :func:`to_wire`'s tuples."""
    line, digest, sealed, tokens = wire
    return SealedRow(line, sealed[0][0], digest, sealed, tokens)


def seal_batch(sealer: RowSealer, blob: bytes) -> list[WireRow | list[Violation]]:
    """Validate and seal the records of one serialized ``ImportBatch``."""
    out: list[WireRow | list[Violation]] = []
    for message in pb.ImportBatch.FromString(blob).records:
        item = import_record_from_proto(message)
        out.append(to_wire(sealer.row(item)) if isinstance(item, ImportRecord) else item)
    return out


def _serve(conn: Connection, others: list[Connection], sealer: RowSealer) -> None:
    """A worker's life: seal each batch the node sends, in order, until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the node's to handle
    os.nice(WORKER_NICENESS)  # the node's thread first: it alone writes, and answers calls
    if sys.platform == "linux":  # die with the node, even if it is killed
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the node died before prctl took effect
        return
    for other in others:  # the node's ends of this and earlier workers' pipes: closed
        other.close()  # here, so the node closing its end is the end of this worker's pipe
    try:
        while True:
            seq, blob = conn.recv()
            try:
                reply: tuple[int, object] = (seq, seal_batch(sealer, blob))
            except Exception as exc:  # reported to the node by its type only: no data
                reply = (seq, _Failed(type(exc).__name__))
            conn.send(reply)
    except (EOFError, OSError):  # the node closed the pipe (or is gone): the end
        return
    except BaseException:  # pragma: no cover - never a traceback in the node's log
        os._exit(1)


class _Failed(NamedTuple):
    """A worker's report that sealing a batch raised (the type only: no data)."""

    error: str


class _Worker(NamedTuple):
    process: BaseProcess
    conn: Connection


def _threads_in_process() -> int | None:
    """How many threads this process runs (all of them, not only Python's), if known."""
    tasks = Path("/proc/self/task")
    return len(list(tasks.iterdir())) if tasks.is_dir() else None


def default_workers() -> int:
    """Workers when the configuration does not say: 2 with two or more cores, else 0."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return 0 if (cores or 1) < 2 else 2


class WorkersStopped(Unavailable):
    """A worker died or failed; nothing of the import is kept."""


class ImportWorkers:
    """Worker processes that validate and seal import batches, read back in input order.

    Each worker has its own pipe and gets one batch at a time: the node sends a worker its
    next batch only after reading its previous result, so neither side can block the
    other, and a worker that dies (even in the middle of a reply) is seen at once, by its
    process sentinel or the end of its pipe. One import at a time uses the workers (the
    node's write lock already serializes imports).
    """

    def __init__(self, workers: list[_Worker]) -> None:
        self._workers: list[_Worker] | None = workers
        self.workers = len(workers)
        self._seq = 0

    @classmethod
    def start(cls, sealer: RowSealer, workers: int) -> ImportWorkers | None:
        """Fork ``workers`` processes now, or None if there are none or forking is unsafe.

        Forking first collects this process's garbage and freezes what is left
        (``gc.freeze``), so the workers' collectors leave those pages shared.
        """
        if workers <= 0:
            return None
        if "fork" not in multiprocessing.get_all_start_methods():
            log.info("import.workers_off", reason="this platform cannot fork")
            return None
        if _threads_in_process() != 1:
            log.info("import.workers_off", reason="the process already runs other threads")
            return None
        context = multiprocessing.get_context("fork")
        # Start-up's objects are frozen before the fork, so a worker's garbage collector
        # never writes to them and their pages stay shared with the node (copy-on-write):
        # bench (c)'s node with two workers peaked about 15 MB lower (PSS).
        gc.collect()
        gc.freeze()
        started: list[_Worker] = []
        for _ in range(workers):
            ours, theirs = context.Pipe()
            process = context.Process(
                target=_serve,
                args=(theirs, [ours, *(w.conn for w in started)], sealer),
                name="childreg-import-worker",
                daemon=True,
            )
            process.start()
            theirs.close()  # only the worker holds its end: its death ends the pipe
            started.append(_Worker(process, ours))
        log.info("import.workers_started", workers=workers)
        return cls(started)

    @property
    def running(self) -> bool:
        """Whether the workers are still in service."""
        return self._workers is not None

    def rows(
        self, batches: Iterable[pb.ImportBatch] | Iterable[Received]
    ) -> Iterator[SealedRow | list[Violation]]:
        """The rows of ``batches``, validated and sealed by the workers, in input order.

        A batch received with its bytes (:class:`~node.rpc.convert.Received`) is handed to a
        worker as those bytes unless it must be split.

        WorkersStopped (Unavailable) if a worker dies or fails: the caller's transaction
        rolls back, and later imports run without workers.
        """
        workers = self._workers
        if workers is None:
            raise WorkersStopped("the import workers have stopped; retry the import")
        pending: deque[tuple[_Worker, int]] = deque()  # in input order
        try:
            for i, blob in enumerate(_chunks(batches)):
                worker = workers[i % len(workers)]
                done = None
                if len(pending) == len(workers):  # this worker's previous batch is oldest
                    done = self._receive(*pending.popleft())
                self._seq += 1
                self._send(worker, self._seq, blob)
                pending.append((worker, self._seq))
                if done is not None:  # written while the worker seals the next batch
                    yield from _unwire(done)
            while pending:
                yield from _unwire(self._receive(*pending.popleft()))
        finally:
            try:  # an abandoned import: read the replies still owed, so none is left over
                while pending and self._workers is not None:
                    self._receive(*pending.popleft())
            except WorkersStopped:
                pass

    def _send(self, worker: _Worker, seq: int, blob: bytes) -> None:
        try:
            worker.conn.send((seq, blob))
        except OSError:
            raise self._broken("an import worker stopped") from None

    def _receive(self, worker: _Worker, seq: int) -> list[WireRow | list[Violation]]:
        try:
            ready = connection_wait([worker.conn, worker.process.sentinel])
            if worker.conn not in ready:
                raise EOFError
            got, result = worker.conn.recv()
        except (EOFError, OSError):
            raise self._broken("an import worker stopped") from None
        if got != seq:
            raise self._broken("an import worker answered out of order")
        if isinstance(result, _Failed):
            raise self._broken(f"an import worker failed ({result.error})")
        return cast("list[WireRow | list[Violation]]", result)

    def _broken(self, what: str) -> WorkersStopped:
        log.warning("import.workers_stopped", workers=self.workers, reason=what)
        self.close()
        return WorkersStopped(
            f"{what}; nothing was imported. Retry the import (the node now imports "
            "without workers) and check the node's memory limits and log"
        )

    def close(self) -> list[int | None]:
        """Stop the workers (closing its pipe ends a worker); their exit codes."""
        workers, self._workers = self._workers, None
        for worker in workers or ():
            worker.conn.close()
        for worker in workers or ():
            worker.process.join(timeout=5)
            if worker.process.is_alive():  # pragma: no cover - a worker stuck in a batch
                log.warning("import.worker_killed", reason="did not stop within 5 s")
                worker.process.kill()
                worker.process.join()
        return [worker.process.exitcode for worker in workers or ()]


def _chunks(batches: Iterable[pb.ImportBatch] | Iterable[Received]) -> Iterator[bytes]:
    """Each batch serialized (as received, when it came with its bytes), any of more than
    :data:`CHUNK` records split, so a reply stays small."""
    for item in batches:
        records = batch_of(item).records
        if len(records) <= CHUNK:
            yield item.blob if isinstance(item, Received) else item.SerializeToString()
            continue
        for start in range(0, len(records), CHUNK):
            part = pb.ImportBatch()
            part.records.extend(records[start : start + CHUNK])
            yield part.SerializeToString()


def _unwire(rows: list[WireRow | list[Violation]]) -> Iterator[SealedRow | list[Violation]]:
    for row in rows:
        yield from_wire(row) if isinstance(row, tuple) else row
