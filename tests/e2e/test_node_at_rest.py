"""A running node keeps nothing readable on disk, and refuses to start without the right KEK."""

from __future__ import annotations

import secrets
import sqlite3
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w

from childreg.errors import KeyProblem
from childreg.v1 import records_pb2 as pb
from childreg.v1 import records_pb2_grpc as pb_grpc
from node.crypto.keys import generate_key_file
from node.store.sqlcipher import SqlCipherStore
from tests.e2e.conftest import cli
from tools.dev.federation import LocalFederation
from tools.dev.synth import plan_departments


@pytest.fixture
def federation(tmp_path: Path) -> Iterator[LocalFederation]:
    """One real node process, with its temporary files directed into its own home."""
    plan = plan_departments(1)[0]
    tmpdir = tmp_path / "fed" / "nodes" / plan.id / "tmp"
    tmpdir.mkdir(parents=True)
    fed = LocalFederation(tmp_path / "fed", [plan], env={"TMPDIR": str(tmpdir)})
    with fed:
        fed.setup()
        fed.start_nodes()
        yield fed


def every_file(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def assert_absent(marker: str, files: list[Path]) -> None:
    forms = [marker.encode(), marker.encode("utf-16-le"), marker.encode("utf-16-be")]
    for path in files:
        data = path.read_bytes()
        for form in forms:
            assert form not in data, f"marker found in {path.name}"


def test_marker_name_and_diagnosis_never_reach_disk(federation: LocalFederation) -> None:
    """A planted name and diagnosis are absent from every file of the node, running and stopped."""
    dept = federation.departments[0].id
    marker = "Qx" + secrets.token_hex(6).upper()
    diagnosis = "Q" + str(secrets.randbelow(90) + 10) + "." + secrets.token_hex(2).upper()
    with federation.staff_endpoint(dept).channel() as channel:
        stub = pb_grpc.RecordsServiceStub(channel)
        child = pb.Child(child_id="m1", given_name=marker, family_name=marker, sex="female")
        child.date_of_birth = "2015-03-04"
        child.district = federation.departments[0].districts[0]
        child.guardian_name = marker
        stub.RegisterChild(pb.RegisterChildRequest(child=child), timeout=10)
        stub.RecordAssessment(
            pb.Assessment(child_id="m1", assessment_date="2023-01-10", commission="PMPC",
                          diagnoses=[diagnosis], supports=["speech_therapy"]),
            timeout=10,
        )  # fmt: skip
        back = stub.GetChild(pb.ChildRef(child_id="m1"), timeout=10)
    assert back.child.given_name == marker  # the data really is stored and readable by the service
    assert list(back.assessments[0].diagnoses) == [diagnosis]
    home = federation.nodes[dept].config.parent
    running = every_file(home)
    assert any(p.name.endswith("-wal") for p in running)  # the WAL exists while running
    assert_absent(marker, running)
    assert_absent(diagnosis, running)
    federation.shutdown()
    assert_absent(marker, every_file(home))
    assert_absent(diagnosis, every_file(home))


def test_database_does_not_open_without_the_key(federation: LocalFederation) -> None:
    """The node's database is unreadable to stdlib sqlite3 and to SQLCipher with a wrong key."""
    dept = federation.departments[0].id
    federation.shutdown()
    db = federation.nodes[dept].config.parent / "data" / "records.db"
    with pytest.raises(sqlite3.DatabaseError):
        sqlite3.connect(db).execute("SELECT count(*) FROM sqlite_master").fetchall()
    with pytest.raises(KeyProblem):
        SqlCipherStore.open(db, secrets.token_hex(32))


def with_kek(config: Path, tmp_path: Path, **change: object) -> Path:
    data = tomllib.loads(config.read_text())
    data.update(change)
    data = {k: v for k, v in data.items() if v is not None}
    out = tmp_path / "changed.toml"
    out.write_text(tomli_w.dumps(data))
    return out


@pytest.mark.parametrize("case", ["wrong_key_file", "missing_key_file", "empty_passphrase"])
def test_bad_kek_is_one_line_and_exit_4(
    federation: LocalFederation, tmp_path: Path, case: str
) -> None:
    """A wrong, missing or empty KEK stops `node serve` with one error line, a hint, exit code 4."""
    config = federation.nodes[federation.departments[0].id].config
    federation.shutdown()
    if case == "wrong_key_file":
        other = tmp_path / "other.kek"
        generate_key_file(other)
        changed = with_kek(config, tmp_path, kek_file=str(other))
    elif case == "missing_key_file":
        changed = with_kek(config, tmp_path, kek_file=str(tmp_path / "nowhere.kek"))
    else:
        changed = with_kek(config, tmp_path, kek_file=None, kek_passphrase_env="CHILDREG_TEST_PW")
    result = cli("node", "serve", "--config", str(changed), timeout=60,
                 env={"PATH": "/usr/bin:/bin", "CHILDREG_TEST_PW": ""})  # fmt: skip
    assert result.returncode == 4
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[0].startswith("error: ")
    assert all(line.startswith(("error: ", "hint: ")) for line in lines), result.stderr
