"""`childreg node import` into a real node: all rows or none, and every bad row listed."""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from childreg import csvformat
from childreg.models import ImportRecord
from childreg.rpc import violations_from_error
from childreg.v1 import records_pb2 as pb
from childreg.v1 import records_pb2_grpc as pb_grpc
from childreg.v1 import statistics_pb2 as spb
from childreg.v1 import statistics_pb2_grpc as spb_grpc
from node.rpc.convert import import_record_to_proto
from tests.e2e.conftest import cli, trim
from tools.clients import importer
from tools.clients.client import CliError
from tools.dev.federation import LocalFederation
from tools.dev.synth import DepartmentPlan

Synthetic = tuple[list[DepartmentPlan], list[Path]]


@pytest.fixture(scope="module")
def node(
    tmp_path_factory: pytest.TempPathFactory, synthetic: Synthetic
) -> Iterator[tuple[LocalFederation, Path]]:
    """One running node that already holds the first 10 children of a synthetic file."""
    plans, files = synthetic
    root = tmp_path_factory.mktemp("import")
    fed = LocalFederation(root / "fed", [plans[0]])
    with fed:
        fed.setup()
        fed.start_nodes()
        good = trim(files[0], root / "good.csv", 10)
        result = cli(*import_args(fed, good))
        assert result.returncode == 0, result.stderr
        yield fed, files[0]


def import_args(fed: LocalFederation, path: Path) -> list[str]:
    dept = fed.departments[0].id
    ep = fed.staff_endpoint(dept)
    return ["node", "import", str(path), "--node", ep.address, "--identity", str(ep.identity_dir),
            "--server-name", ep.server_name or ""]  # fmt: skip


def snapshot(fed: LocalFederation, ids: list[str]) -> tuple[list[bytes], list[int]]:
    """Everything observable about the node's records: each child and a noisy table.

    The noise is deterministic per question, so the noisy table is identical exactly when
    the counts behind it are (asking again costs the node nothing).
    """
    dept = fed.departments[0].id
    with fed.staff_endpoint(dept).channel() as channel:
        records = pb_grpc.RecordsServiceStub(channel)
        children = [child_bytes(records, cid) for cid in ids]
    with fed.node_endpoint_as(dept, "coordinator").channel() as channel:
        table = spb_grpc.StatisticsServiceStub(channel).NoisyTable(
            spb.NoisyTableRequest(
                signed_catalogue=fed.catalogue_file.read_bytes(),
                table_id="education_form_by_sex",
                academic_year="2023/24",
            ),
            timeout=10,
        )
    return children, list(table.counts)


def child_bytes(records: pb_grpc.RecordsServiceStub, cid: str) -> bytes:
    """The child's full record as bytes, or b"absent" when the node does not hold it."""
    try:
        return records.GetChild(pb.ChildRef(child_id=cid), timeout=10).SerializeToString()
    except grpc.RpcError as err:
        if err.code() != grpc.StatusCode.NOT_FOUND:
            raise
        return b"absent"


def rows_of(path: Path, start: int, count: int) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)[start : start + count]
        return list(reader.fieldnames or []), rows


def write(path: Path, header: list[str], rows: list[dict[str, str]]) -> Path:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path


def records_of(source: Path, tmp_path: Path, start: int, stop: int) -> list[ImportRecord]:
    """Validated records ``start``..``stop`` (0-based data rows) of a CSV file."""
    head = trim(source, tmp_path / f"first-{stop}.csv", stop)
    return [r for r in csvformat.iter_rows(head) if isinstance(r, ImportRecord)][start:stop]


def ids_in(path: Path) -> list[str]:
    return [r.child.child_id for r in csvformat.iter_rows(path) if isinstance(r, ImportRecord)]


def test_bad_rows_are_all_listed_and_nothing_changes(
    node: tuple[LocalFederation, Path], tmp_path: Path
) -> None:
    """Bad date, unknown form, duplicate id, over-long field: nothing imported, each listed."""
    fed, source = node
    header, rows = rows_of(source, 20, 8)  # rows 20..27: not yet in the node
    rows[1]["date_of_birth"] = "2012-02-31"  # line 3
    rows[3]["education_form"] = "hogwarts"  # line 5
    rows[5]["child_id"] = rows[4]["child_id"]  # line 7 duplicates line 6
    rows[6]["given_name"] = "N" * 150  # line 8
    bad = write(tmp_path / "bad.csv", header, rows)
    all_ids = ids_in(trim(source, tmp_path / "first30.csv", 30))
    before = snapshot(fed, all_ids)
    result = cli(*import_args(fed, bad))
    assert result.returncode == 6
    assert "4 bad rows; nothing was imported" in result.stderr
    for needle in ("line 3, date_of_birth", "line 5, education_form", "line 7, child_id",
                   "line 8, given_name"):  # fmt: skip
        assert needle in result.stderr
    assert "hogwarts" not in result.stderr
    assert "N" * 150 not in result.stderr
    assert snapshot(fed, all_ids) == before


@pytest.mark.parametrize("kind", ["missing_column", "wrong_encoding"])
def test_broken_files_are_refused_whole(
    node: tuple[LocalFederation, Path], tmp_path: Path, kind: str
) -> None:
    """A file missing a required column, or not UTF-8, imports nothing and says why."""
    fed, source = node
    header, rows = rows_of(source, 30, 3)
    if kind == "missing_column":
        header = [h for h in header if h != "sex"]
        for r in rows:
            del r["sex"]
        path = write(tmp_path / "f.csv", header, rows)
        expected = "line 1, sex"
    else:
        path = write(tmp_path / "f.csv", header, rows)
        data = path.read_bytes().replace(rows[1]["given_name"].encode(), "Gül".encode("latin-1"), 1)
        path.write_bytes(data)
        expected = "line 3, encoding"
    all_ids = ids_in(trim(source, tmp_path / "first40.csv", 40))
    before = snapshot(fed, all_ids)
    result = cli(*import_args(fed, path))
    assert result.returncode == 6
    assert expected in result.stderr
    assert snapshot(fed, all_ids) == before


def test_ids_already_at_the_node_are_refused_by_the_node(
    node: tuple[LocalFederation, Path], tmp_path: Path
) -> None:
    """Rows naming children the node already holds pass the local check but the node refuses all."""
    fed, source = node
    header, rows = rows_of(source, 8, 6)  # rows 8, 9 are already in the node; 10..13 are new
    path = write(tmp_path / "overlap.csv", header, rows)
    all_ids = ids_in(path)
    before = snapshot(fed, all_ids)
    assert before[0][2:] == [b"absent"] * 4
    result = cli(*import_args(fed, path))
    assert result.returncode == 6
    assert "line 2, child_id" in result.stderr
    assert "line 3, child_id" in result.stderr
    assert snapshot(fed, all_ids) == before


def test_node_revalidates_a_stream_that_skipped_the_local_check(
    node: tuple[LocalFederation, Path], tmp_path: Path
) -> None:
    """A client streaming a bad record directly gets INVALID_ARGUMENT naming its line."""
    fed, source = node
    records = records_of(source, tmp_path, 40, 45)
    messages = [import_record_to_proto(r) for r in records]
    messages[2].child.sex = "unknown"
    ids = [r.child.child_id for r in records]
    before = snapshot(fed, ids)
    batches = [
        pb.ImportBatch(records=messages[:3]),
        pb.ImportBatch(records=messages[3:], last=True, total_records=len(messages)),
    ]
    with (
        fed.staff_endpoint(fed.departments[0].id).channel() as channel,
        pytest.raises(grpc.RpcError) as info,
    ):
        pb_grpc.RecordsServiceStub(channel).BulkImport(iter(batches), timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = violations_from_error(info.value)
    assert [(v.line, v.field) for v in violations] == [(messages[2].line, "child.sex")]
    assert snapshot(fed, ids) == before


def test_a_stream_cut_off_mid_way_changes_nothing(
    node: tuple[LocalFederation, Path], tmp_path: Path
) -> None:
    """A client that sends some batches then stalls past its deadline leaves the node unchanged."""
    fed, source = node
    records = records_of(source, tmp_path, 100, 120)
    ids = [r.child.child_id for r in records]
    before = snapshot(fed, ids)
    released = threading.Event()

    def stalling() -> Iterator[pb.ImportBatch]:
        yield pb.ImportBatch(records=[import_record_to_proto(r) for r in records[:10]])
        released.wait(10)  # never set: the call's deadline ends the stream first
        yield pb.ImportBatch(records=[import_record_to_proto(r) for r in records[10:]])

    with fed.staff_endpoint(fed.departments[0].id).channel() as channel:
        stub = pb_grpc.RecordsServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.BulkImport(stalling(), timeout=2)
    released.set()
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert snapshot(fed, ids) == before


def test_hundreds_of_rows_refused_by_the_node_are_counted(
    node: tuple[LocalFederation, Path], tmp_path: Path
) -> None:
    """Importing 300 children twice: the second time the node refuses all 300, and says so."""
    fed, source = node
    header, rows = rows_of(source, 200, 300)
    path = write(tmp_path / "three-hundred.csv", header, rows)
    first = cli(*import_args(fed, path))
    assert first.returncode == 0, first.stderr
    second = cli(*import_args(fed, path))
    assert second.returncode == 6
    assert "300 bad rows; nothing was imported" in second.stderr
    assert "line 2, child_id: a child with this child_id already exists" in second.stderr
    assert "more not listed" in second.stderr


def test_a_file_that_changes_during_import_is_reported_as_such(
    node: tuple[LocalFederation, Path], tmp_path: Path
) -> None:
    """If rows turn bad after the local check, the CLI says the file changed; nothing lands."""
    fed, source = node
    header, rows = rows_of(source, 600, 5)
    rows[3]["sex"] = "unknown"
    path = write(tmp_path / "changing.csv", header, rows)
    ids = [r["child_id"] for r in rows]
    before = snapshot(fed, ids)
    with pytest.raises(CliError) as info:
        importer.import_file(fed.staff_endpoint(fed.departments[0].id), path, checked_rows=5)
    assert "changed while it was being imported" in str(info.value)
    assert snapshot(fed, ids) == before
