"""Importing a department's CSV file into its node: check everything, then stream once.

All or nothing, twice over: the whole file is checked locally first (every bad row is
listed and nothing is sent), then streamed to the node's ``BulkImport``, which validates
again and commits every row in one transaction or none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import grpc

from childreg import csvformat
from childreg.errors import InvalidInput
from childreg.models import ImportRecord
from childreg.v1 import records_pb2 as pb
from childreg.v1 import records_pb2_grpc as pb_grpc
from node.rpc.convert import import_batches
from tools.clients.client import (
    EXIT_REJECTED,
    REJECTED_HINT,
    CliError,
    Endpoint,
    rejected_import,
    rpc_failure,
)

#: Generous per-file deadline: validation, encryption and one commit of every row.
IMPORT_SECONDS_PER_ROW = 0.01
IMPORT_MIN_SECONDS = 60.0

Progress = Callable[[int], None]


def check(path: Path) -> int:
    """Validate a whole file locally; the number of good rows, or CliError listing every bad row."""
    try:
        good, violations = csvformat.check_file(path)
    except InvalidInput as exc:
        raise rejected_import(exc.violations) from None
    if violations:
        raise rejected_import(violations)
    return good


class _FileRecords:
    """The file's records for the stream; remembers why it stopped early, since gRPC swallows
    exceptions raised while iterating requests (the call then fails as CANCELLED/UNKNOWN)."""

    def __init__(self, path: Path, progress: Progress | None) -> None:
        self.path = path
        self.progress = progress
        self.failure: CliError | None = None

    def __iter__(self) -> Iterator[ImportRecord]:
        for item in csvformat.iter_rows(self.path):
            if not isinstance(item, ImportRecord):  # the file changed since it was checked
                self.failure = CliError(
                    "the file changed while it was being imported; nothing was imported",
                    code=EXIT_REJECTED,
                    hint="import it again once nobody is editing it",
                )
                raise self.failure
            if self.progress is not None:
                self.progress(1)
            yield item


def import_file(
    endpoint: Endpoint,
    path: Path,
    progress: Progress | None = None,
    *,
    checked_rows: int | None = None,
) -> int:
    """Check ``path`` (unless already checked) then import every row into the node at ``endpoint``.

    Returns the number of rows imported.
    """
    rows = check(path) if checked_rows is None else checked_rows
    deadline = max(IMPORT_MIN_SECONDS, rows * IMPORT_SECONDS_PER_ROW)
    source = _FileRecords(path, progress)
    with endpoint.channel() as channel:
        stub = pb_grpc.RecordsServiceStub(channel)
        try:
            summary: pb.ImportSummary = stub.BulkImport(import_batches(source), timeout=deadline)
        except grpc.RpcError as err:
            if source.failure is not None:
                raise source.failure from None
            failure = rpc_failure(err, f"import of {path.name}", endpoint.address)
            if failure.violations:  # the node's own count of bad rows is in the message
                failure.hint = REJECTED_HINT
            raise failure from None
    return summary.imported
