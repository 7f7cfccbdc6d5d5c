"""A guardian's consent: granting it with the printable receipt and its PDF, withdrawing
it with its receipt.

One POST, one ``consent.grant`` or ``consent.withdraw`` leaf, exactly as the gRPC
GrantConsent and WithdrawConsent make (the withdrawal's leaf names the grant the same way).
The receipt is made once, by :class:`node.consent.receipts.DepartmentReceipts`, in the
guardian's language; the page shows it and offers its PDF through a one-time handle kept in
this process (posted in the form body, never in a URL), so downloading it discloses nothing
new and writes no second leaf. Handles of a session are its own; the oldest are forgotten.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from typing import Any, Final

from starlette.responses import Response

from childreg.errors import ChildregError, InvalidInput, NotFound, Violation
from childreg.i18n import language_names
from childreg.profile import active
from childreg.signed import canonical_json
from node.consent.desk import PURPOSES
from node.consent.extract import grant_ref
from node.consent.receipts import PURPOSE_TEXT, DepartmentReceipts, Kind
from node.console.pages.forms import optional, render
from node.console.web import Page, Routes, form_values
from node.receipts.render import Receipt
from node.store.base import StoredConsent

routes = Routes()
FIELDS = ("guardian_name", "purpose", "school", "valid_from", "valid_until", "evidence_ref",
          "language")  # fmt: skip
#: How many receipts the process keeps for download.
KEPT: Final = 200


class ReceiptShelf:
    """Receipts waiting for their PDF download: one-time handle -> (session token, receipt)."""

    def __init__(self, kept: int = KEPT) -> None:
        self._kept = kept
        self._lock = threading.Lock()
        self._held: OrderedDict[str, tuple[str, Receipt, str]] = OrderedDict()

    def put(self, session: str, receipt: Receipt, consent_id: str) -> str:
        """Keep ``receipt`` for ``session``; its one-time handle."""
        handle = secrets.token_urlsafe(24)
        with self._lock:
            self._held[handle] = (session, receipt, consent_id)
            while len(self._held) > self._kept:
                self._held.popitem(last=False)
        return handle

    def take(self, session: str, handle: str) -> tuple[Receipt, str]:
        """The receipt and consent id of ``handle`` (once), if ``session`` put it there."""
        with self._lock:
            held = self._held.get(handle)
            if held is None or not secrets.compare_digest(held[0], session):
                raise NotFound("this receipt was downloaded already or has expired")
            del self._held[handle]
        return held[1], held[2]


SHELF = ReceiptShelf()


def receipts_of(page: Page) -> DepartmentReceipts:
    """The department's receipt maker (its name and contacts from the directory)."""
    return DepartmentReceipts(page.console.department, page.console.department_name)


def _schools(page: Page) -> list[tuple[str, str]]:
    profile = active()
    return [(s.id, profile.name_in(s.names, page.language)) for s in profile.directory.schools]


def _grant_form(page: Page, values: dict[str, Any], errors: list[Violation],
                status: int = 200) -> Response:  # fmt: skip
    purposes = [(p, page._(PURPOSE_TEXT.get(p, p))) for p in PURPOSES]
    return render(page, "consent.html", status, title=page._("Record a consent"), values=values,
                  errors=errors, purposes=purposes, schools=_schools(page),
                  guardian_languages=list(language_names().items()))  # fmt: skip


def _receipt_page(page: Page, receipt: Receipt, consent: StoredConsent) -> Response:
    download = SHELF.put(page.session.token, receipt, consent.consent_id)
    granted = receipt.kind.endswith("grant")
    title = page._("Consent recorded") if granted else page._("Consent withdrawn")
    return render(page, "receipt.html", title=title, receipt=receipt.data, granted=granted,
                  download=download, consent=consent)  # fmt: skip


@routes.get("/child/{handle}/consent", access="change")
async def grant_form(page: Page) -> Response:
    """The consent form, valid from today by default, in the person's language."""
    page.child_id(str(page.request.path_params["handle"]))
    return _grant_form(page, {"language": page.language}, [])


@routes.post("/child/{handle}/consent")
async def grant(page: Page) -> Response:
    """Record the consent; show its receipt."""
    handle = str(page.request.path_params["handle"])
    child_id = page.child_id(handle)
    values = form_values(page.form, FIELDS)
    desk, audited, actor = page.console.consents, page.console.audited, page.actor
    school = optional(page, "school") or ""
    if school and not school.startswith("spiffe://"):
        school = f"spiffe://{desk.federation}/school/{school}"
    data = {
        "child_id": child_id,
        "guardian_name": page.field("guardian_name").strip(),
        "purpose": page.field("purpose"),
        "school": school,
        "valid_from": page.field("valid_from").strip(),
        "valid_until": page.field("valid_until").strip(),
        "evidence_ref": page.field("evidence_ref").strip(),
        "language": page.field("language"),
    }

    def run() -> tuple[StoredConsent, str, str]:
        consent = desk.parse(data)
        stored, _token = desk.grant(consent, actor.name)  # the token goes to the school's CLI
        return stored, consent.guardian_name, consent.language

    try:
        stored, guardian, language = await page.call(
            lambda: audited.change(
                actor, "consent.grant", canonical_json({"consent": data}), run, child_id
            )
        )
    except InvalidInput as exc:
        return _grant_form(page, values, exc.violations, 400)
    receipt = await page.call(
        lambda: receipts_of(page).consent(stored, guardian, "grant", language)
    )
    return _receipt_page(page, receipt, stored)


@routes.get("/child/{handle}/consents", access="change")
async def withdraw_form(page: Page) -> Response:
    """The child's consents in force, each with a button to withdraw it (one ``child.read``
    leaf, as the gRPC ListConsents makes)."""
    handle = str(page.request.path_params["handle"])
    child_id = page.child_id(handle)
    desk, audited, actor = page.console.consents, page.console.audited, page.actor
    request = canonical_json({"page": "consents", "child_id": child_id})
    held = await page.call(
        lambda: audited.disclose(
            actor,
            "child.read",
            request,
            lambda: desk.list(child_id),
            child_id,
            purpose="console.consents",
        )
    )
    return render(page, "withdraw.html", title=page._("Withdraw a consent"),
                  consents=[c for c in held if c.withdrawn_at is None], errors=[])  # fmt: skip


@routes.post("/child/{handle}/consents")
async def withdraw(page: Page) -> Response:
    """Withdraw the consent; show the withdrawal receipt."""
    handle = str(page.request.path_params["handle"])
    child_id = page.child_id(handle)
    consent_id = page.field("consent_id").strip()
    desk, audited, actor = page.console.consents, page.console.audited, page.actor
    try:
        held: StoredConsent | None = await page.call(lambda: desk.get(consent_id))
    except ChildregError:
        held = None
    if held is None or held.child_id != child_id:
        raise NotFound("no such consent of this child")

    def run() -> tuple[StoredConsent, str, str]:
        stored = desk.withdraw(consent_id, actor.name)
        return (stored, *desk.guardian_and_language(stored))

    stored, guardian, language = await page.call(
        lambda: audited.change(
            actor,
            "consent.withdraw",
            canonical_json({"withdraw": consent_id}),
            run,
            child_id,
            purpose=held.purpose,
            grant=grant_ref(held.grant_hash),
        )
    )
    receipt = await page.call(
        lambda: receipts_of(page).consent(stored, guardian, "withdrawal", language)
    )
    return _receipt_page(page, receipt, stored)


@routes.post("/receipt.pdf", access="read")
async def receipt_pdf(page: Page) -> Response:
    """The PDF of a receipt this session was shown, once (a one-time handle, no-store)."""
    receipt, consent_id = SHELF.take(page.session.token, page.field("receipt"))
    body = await page.call(receipt.pdf)
    kind: Kind = "grant" if receipt.kind.endswith("grant") else "withdrawal"
    name = f"receipt-{kind}-{consent_id}.pdf"
    return Response(body, media_type="application/pdf",
                    headers={"content-disposition": f'attachment; filename="{name}"'})  # fmt: skip
