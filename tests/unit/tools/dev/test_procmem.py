"""tools.dev.procmem reads the memory of a node's process tree from /proc."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tools.dev.procmem import TreePeak, peak_rss_mb, process_tree, pss_mb

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="/proc")

HOLD = (  # a process that touches 64 MB, says so, then waits
    "import time; x = bytearray(64 << 20); x[::4096] = b'1' * len(x[::4096]); "
    "print('ok', flush=True); time.sleep(60)"
)


def test_a_child_holding_64_mb_shows_in_the_tree_and_its_peak() -> None:
    """A child process holding 64 MB shows in the process tree's memory and in its peak."""
    with TreePeak(os.getpid(), interval=0.01) as peak:
        child = subprocess.Popen([sys.executable, "-c", HOLD], stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ok"
            assert child.pid in process_tree(os.getpid())
            held = pss_mb(child.pid)
            assert held > 60
            seen = peak.samples
            while peak.samples < seen + 2:  # a whole sample while the child holds its memory
                time.sleep(0.01)
        finally:
            child.kill()
            child.wait()
            if child.stdout is not None:
                child.stdout.close()
    assert peak.peak_mb > held
    assert child.pid not in process_tree(os.getpid())
    assert pss_mb(child.pid) == 0.0  # gone


def test_peak_rss_is_at_least_the_current_pss() -> None:
    """Peak rss is at least the current pss."""
    assert peak_rss_mb(os.getpid()) >= pss_mb(os.getpid()) > 0
