"""`childreg demo --keep-running`: a newcomer can try a school's extract in the local federation.

The kept-running demo runs a witness and issues a school identity, and prints the commands
for one child's extract; run as printed (the grant and the node's key filled in), they
give the school an extract it opens. Ctrl-C stops the federation.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.conftest import ROOT, cli


def printed_commands(log: Path, demo: subprocess.Popen[str], deadline: float) -> list[str]:
    """The `childreg …` lines the demo prints (to its standard error, a file here, so a
    full pipe can never block it) once it keeps running."""
    while time.monotonic() < deadline:
        text = log.read_text(encoding="utf-8") if log.exists() else ""
        if "press Ctrl-C to stop" in text:
            return [line.strip() for line in text.splitlines() if line.startswith("  childreg ")]
        if demo.poll() is not None:
            raise AssertionError("the demo ended before it kept running:\n" + text[-2000:])
        time.sleep(0.5)
    raise AssertionError("the demo did not keep running in time")


def run(command: str, **fill: str) -> subprocess.CompletedProcess[str]:
    """Run one printed command (after `childreg`), its placeholders filled in."""
    for name, value in fill.items():
        command = command.replace(name, value)
    args = shlex.split(command)
    assert args[0] == "childreg"
    return cli(*args[1:])


def test_a_newcomer_gets_a_schools_extract_from_the_kept_running_demo(tmp_path: Path) -> None:
    """The printed consent (its receipt naming the demo school), keygen, request,
    extract-key and open commands work as printed."""
    log = tmp_path / "demo.err"
    with log.open("w", encoding="utf-8") as err:
        demo = subprocess.Popen(
            [sys.executable, "-m", "tools.cli.main", "demo", "--departments", "3",
             "--keep-running", "--out", str(tmp_path / "out"), "--workdir", str(tmp_path / "work")],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, text=True, start_new_session=True,
        )  # fmt: skip
    try:
        commands = printed_commands(log, demo, time.monotonic() + 600)
        table, grant_cmd, keygen, request, extract_key, open_cmd = commands
        assert "stats table" in table
        granted = run(grant_cmd)
        assert granted.returncode == 0, granted.stderr
        grant = json.loads(granted.stdout)["grant"]
        files = json.loads(granted.stdout)["receipt_files"]
        receipt = Path(next(f for f in files if f.endswith(".html"))).read_text()
        assert "nömrəli məktəb" in receipt  # the demo school, by its Azerbaijani name
        assert "spiffe://" not in receipt
        assert any(f.endswith(".pdf") for f in files)
        assert run(keygen).returncode == 0
        asked = run(request, GRANT=grant)
        assert asked.returncode == 0, asked.stderr
        key = json.loads(run(extract_key).stdout)["extract_key"]
        opened = run(open_cmd, NODE_KEY=key)
        assert opened.returncode == 0, opened.stderr
        assert "iep_preparation" in opened.stdout
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            demo.wait(timeout=120)
        except subprocess.TimeoutExpired:  # take the whole federation down, then fail
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
    assert demo.returncode == 0
