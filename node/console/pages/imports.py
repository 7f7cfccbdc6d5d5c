"""Importing children from a CSV file (docs/import-format.md), all or nothing.

The file is checked row by row with :func:`childreg.csvformat.iter_rows` and handed to the
registry's import, as the node's import path does: if any row is bad, nothing is written
and the page lists every bad row's problems against its line number. One POST, one
``records.import`` leaf whose request is the SHA-256 of the file as uploaded. The upload is
written to a private temporary file only while it is read, then removed.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from starlette.datastructures import UploadFile
from starlette.responses import Response

from childreg.csvformat import iter_rows
from childreg.errors import ImportRejected, InvalidInput, Violation
from node.console.pages.forms import render
from node.console.web import Page, Routes

routes = Routes()


def _page(page: Page, errors: list[Violation], imported: int | None = None,
          status: int = 200) -> Response:  # fmt: skip
    return render(page, "import.html", status, title=page._("Import children"), errors=errors,
                  imported=imported)  # fmt: skip


@routes.get("/import", access="change")
async def import_form(page: Page) -> Response:
    """The upload form."""
    return _page(page, [])


def import_file(page: Page, content: bytes) -> int:
    """Import ``content`` (a CSV file) with its one leaf; how many children (blocking)."""
    registry, audited, actor = page.console.registry, page.console.audited, page.actor
    handle, name = tempfile.mkstemp(prefix="childreg-import-", suffix=".csv")
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(content)
        return audited.change(actor, "records.import", hashlib.sha256(content).digest(),
                              lambda: registry.import_records(iter_rows(Path(name))))  # fmt: skip
    finally:
        Path(name).unlink(missing_ok=True)


@routes.post("/import")
async def import_children(page: Page) -> Response:
    """Import the uploaded file; show how many, or every bad row."""
    upload = page.form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        await page.form.close()
        return _page(page, [Violation("file", "choose a CSV file to import")], status=400)
    content = await upload.read()
    await page.form.close()  # the upload's spooled file
    try:
        imported = await page.call(lambda: import_file(page, content))
    except ImportRejected as exc:
        return _page(page, list(exc.violations), status=400)
    except InvalidInput as exc:
        return _page(page, list(exc.violations), status=400)
    return _page(page, [], imported)
