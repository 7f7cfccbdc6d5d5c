"""tools.procmem reads the memory of a node's process tree from /proc."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tools.procmem import TreePeak, peak_rss_mb, process_tree, pss_mb, tree_pss_mb

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="/proc")

HOLD = (  # a process that touches 64 MB, says so, then waits
    "import time; x = bytearray(64 << 20); x[::4096] = b'1' * len(x[::4096]); "
    "print('ok', flush=True); time.sleep(60)"
)


def test_a_child_holding_64_mb_shows_in_the_tree_and_its_peak() -> None:
    before = tree_pss_mb(os.getpid())
    with TreePeak(os.getpid(), interval=0.01) as peak:
        child = subprocess.Popen([sys.executable, "-c", HOLD], stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ok"
            assert child.pid in process_tree(os.getpid())
            assert pss_mb(child.pid) > 60
        finally:
            child.kill()
            child.wait()
            if child.stdout is not None:
                child.stdout.close()
    assert peak.peak_mb > before + 60
    assert child.pid not in process_tree(os.getpid())
    assert pss_mb(child.pid) == 0.0  # gone


def test_peak_rss_is_at_least_the_current_pss() -> None:
    assert peak_rss_mb(os.getpid()) >= pss_mb(os.getpid()) > 0
