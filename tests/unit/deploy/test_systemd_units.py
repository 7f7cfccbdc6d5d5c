"""The shipped systemd units (deploy/systemd/): each runs its party's `childreg … serve`
with the directories its example configuration names, verifies with `systemd-analyze`, and
rates "OK" or better in `systemd-analyze security`; sysusers.d and tmpfiles.d entries apply.

The `systemd-analyze` tests run wherever systemd's tools are installed and are skipped,
with the reason, elsewhere.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
ENTRY_POINT = "/opt/childreg/bin/childreg"
#: `systemd-analyze security` calls an exposure up to 4.9 "OK" (lower: "SAFE").
OK_EXPOSURE = 4.9
#: unit -> (its serve command, the example configuration, the key naming its state dir).
PARTIES = {
    "childreg-node.service": (["node", "serve"], "node.example.toml", "data_dir"),
    "childreg-coordinator.service": (
        ["coordinator", "serve"],
        "coordinator.example.yaml",
        "state_dir",
    ),
    "childreg-witness.service": (
        ["audit", "witness", "serve"],
        "witness.example.toml",
        "state_dir",
    ),
}

analyze = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    analyze is None,
    reason="systemd-analyze is not installed here (Debian: apt-get install systemd)",
)


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file as section -> key -> every value given (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{path.name}: {line!r} outside a section"
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def example_config(name: str) -> dict[str, object]:
    """An example configuration from deploy/config/ as a mapping."""
    path = DEPLOY / "config" / name
    text = path.read_text(encoding="utf-8")
    data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


def test_every_party_has_a_unit() -> None:
    """deploy/systemd/ ships exactly one unit per serving party: node, coordinator, witness."""
    assert [u.name for u in UNITS] == sorted(PARTIES)


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_unit_runs_the_party_serve_command_with_its_example_config(unit: Path) -> None:
    """ExecStart is the `childreg` entry point with the party's serve command and a
    --config of the same format as the party's example configuration."""
    command, example, _ = PARTIES[unit.name]
    (exec_start,) = parse_unit(unit)["Service"]["ExecStart"]
    argv = exec_start.split()
    assert argv[0] == ENTRY_POINT
    assert argv[1 : 1 + len(command)] == command
    assert argv[1 + len(command)] == "--config"
    config = Path(argv[2 + len(command)])
    assert config.is_absolute()
    assert config.suffix == Path(example).suffix


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_state_directory_is_where_the_example_config_writes(unit: Path) -> None:
    """StateDirectory= is the data or state directory the example configuration names,
    owner-only, and the service runs as the childreg user that sysusers.d creates."""
    _, example, key = PARTIES[unit.name]
    service = parse_unit(unit)["Service"]
    (state,) = service["StateDirectory"]
    assert Path("/var/lib") / state == Path(str(example_config(example)[key]))
    assert service["StateDirectoryMode"] == ["0700"]
    assert service["User"] == ["childreg"]
    assert service["Group"] == ["childreg"]
    sysusers = (DEPLOY / "sysusers.d" / "childreg.conf").read_text(encoding="utf-8")
    assert re.search(r"^u childreg ", sysusers, re.MULTILINE)


def test_node_unit_hands_the_kek_over_as_the_configured_credential() -> None:
    """The node's LoadCredential= names the credential its example kek_file points at,
    from a source outside the node's state directory."""
    service = parse_unit(DEPLOY / "systemd" / "childreg-node.service")["Service"]
    (credential,) = service["LoadCredential"]
    name, _, source = credential.partition(":")
    kek_file = Path(str(example_config("node.example.toml")["kek_file"]))
    assert kek_file == Path("/run/credentials/childreg-node.service") / name
    assert not Path(source).is_relative_to(Path("/var/lib") / service["StateDirectory"][0])


def installed_copies(tmp_path: Path) -> list[Path]:
    """The units with ExecStart pointing at this checkout's `childreg` (verify checks that
    the command exists and is executable)."""
    entry = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "childreg"
    if not entry.exists():
        pytest.skip(f"no installed `childreg` entry point at {entry} to verify the units with")
    copies = []
    for unit in UNITS:
        copy = tmp_path / unit.name
        copy.write_text(unit.read_text(encoding="utf-8").replace(ENTRY_POINT, str(entry)))
        copies.append(copy)
    return copies


@needs_analyze
def test_units_verify(tmp_path: Path) -> None:
    """`systemd-analyze verify` accepts every unit with no warning."""
    assert analyze is not None
    run = subprocess.run(
        [analyze, "verify", *map(str, installed_copies(tmp_path))],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert not run.stderr.strip(), run.stderr


@needs_analyze
@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_unit_rates_ok_or_better(unit: Path) -> None:
    """`systemd-analyze security --offline=yes` rates the unit's exposure 4.9 ("OK") or lower."""
    assert analyze is not None
    run = subprocess.run(
        [analyze, "security", "--offline=yes", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if "--offline" in run.stderr and "unrecognized" in run.stderr:
        pytest.skip("this systemd-analyze has no --offline (systemd older than 250)")
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", run.stdout)
    assert found is not None, run.stdout[-2000:] + run.stderr
    assert float(found.group(1)) <= OK_EXPOSURE, found.group(0)


needs_root_tools = pytest.mark.skipif(
    shutil.which("systemd-sysusers") is None
    or shutil.which("systemd-tmpfiles") is None
    or os.geteuid() != 0,
    reason="needs systemd-sysusers and systemd-tmpfiles, run as root (they chown in the root)",
)


@needs_root_tools
def test_sysusers_and_tmpfiles_make_the_user_and_directories(tmp_path: Path) -> None:
    """Applied to an empty root, sysusers.d creates the childreg user and group and
    tmpfiles.d the configuration directories: group-readable, the credential store root-only."""
    (tmp_path / "etc").mkdir()
    sysusers = DEPLOY / "sysusers.d" / "childreg.conf"
    subprocess.run(
        ["systemd-sysusers", f"--root={tmp_path}", str(sysusers)], check=True, timeout=60
    )
    passwd = (tmp_path / "etc" / "passwd").read_text(encoding="utf-8")
    (entry,) = [ln for ln in passwd.splitlines() if ln.startswith("childreg:")]
    gid = int(entry.split(":")[3])
    tmpfiles = DEPLOY / "tmpfiles.d" / "childreg.conf"
    subprocess.run(
        ["systemd-tmpfiles", f"--root={tmp_path}", "--create", str(tmpfiles)],
        check=True,
        timeout=60,
    )
    for name in ("childreg", "childreg/identity", "childreg-witness"):
        st = (tmp_path / "etc" / name).stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (0, gid, 0o750), name
    credstore = (tmp_path / "etc" / "credstore").stat()
    assert (credstore.st_uid, credstore.st_mode & 0o777) == (0, 0o700)
