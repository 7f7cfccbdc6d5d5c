"""Memory of a node's processes, for `childreg bench` (Linux /proc).

A node forks import workers (node/rpc/import_workers.py) that share most of their pages with
it, so adding up resident sizes would count those pages two or three times. The fair
figure for "the node's memory" is the proportional set size (PSS) summed over the node
and its workers, each shared page split among the processes that map it. The kernel keeps
no peak of PSS, so :class:`TreePeak` samples it while the work runs; the node process's
own peak resident size (VmHWM) is reported beside it.
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import TracebackType

_MB = 1024  # /proc reports kB


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{key} not available on this system")


def peak_rss_mb(pid: int) -> float:
    """Peak resident set size (VmHWM) of one process, in MB."""
    return _status_kb(pid, "VmHWM") / _MB


def process_tree(pid: int) -> list[int]:
    """``pid`` and its child processes (the node and its import workers)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [pid, *(int(p) for p in children.read_text().split())] if children.exists() else [pid]


def pss_mb(pid: int) -> float:
    """Proportional set size of one process now, in MB (0 if it has gone)."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / _MB
    raise RuntimeError("Pss not available on this system")


def tree_pss_mb(pid: int) -> float:
    """PSS summed over ``pid`` and its children, in MB."""
    return sum(pss_mb(p) for p in process_tree(pid))


class TreePeak:
    """The largest :func:`tree_pss_mb` seen while the ``with`` block runs (sampled)."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self._pid = pid
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pss-sampler", daemon=True)
        self.peak_mb = 0.0
        self.samples = 0

    def _run(self) -> None:
        while True:
            self.peak_mb = max(self.peak_mb, tree_pss_mb(self._pid))
            self.samples += 1
            if self._stop.wait(self._interval):
                return

    def __enter__(self) -> TreePeak:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, tree_pss_mb(self._pid))
