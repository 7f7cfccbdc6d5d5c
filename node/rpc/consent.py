"""ConsentService over gRPC: department staff grant, withdraw and read consents.

Thin like node/rpc/records.py: protobuf -> validated model -> ConsentDesk -> protobuf, with
exactly one audit leaf per call through :class:`~node.audit.service.Audited` (a grant or a
withdrawal commits with its leaf; a read's leaf commits before the answer), the actor
being the verified caller (:func:`~node.rpc.convert.actor_of`). The grant
token leaves the node only in the GrantConsent answer; the guardian's name only in the
receipts that answer carries. The receipts (HTML, PDF, JSON, in the guardian's language:
node/consent/receipts.py) are rendered after the change has committed with its leaf, so
the PDF's rendering time holds no transaction open.
"""

from __future__ import annotations

import grpc

from childreg.errors import ChildregError, FailedPrecondition
from childreg.v1 import consent_pb2 as cpb
from childreg.v1 import consent_pb2_grpc as cpb_grpc
from childreg.v1 import records_pb2 as pb
from node.audit.service import Audited
from node.consent.breakglass import BreakGlassDesk, new_breakglass_id
from node.consent.desk import ConsentDesk
from node.consent.extract import grant_ref
from node.consent.receipts import DepartmentReceipts, Kind
from node.rpc import convert
from node.rpc.convert import actor_of
from node.store.base import StoredConsent


def consent_to_proto(consent: StoredConsent) -> cpb.Consent:
    """A stored consent as the wire message (no grant hash, no guardian)."""
    return cpb.Consent(
        consent_id=consent.consent_id,
        child_id=consent.child_id,
        purpose=consent.purpose,
        school=consent.school,
        valid_from=consent.valid_from.isoformat(),
        valid_until=consent.valid_until.isoformat(),
        evidence_ref=consent.evidence_ref,
        granted_at=consent.granted_at.isoformat(),
        withdrawn_at=consent.withdrawn_at.isoformat() if consent.withdrawn_at else "",
        granted_by=consent.granted_by,
    )


class ConsentServicer(cpb_grpc.ConsentServiceServicer):
    """Department staff's consent desk (authorization: childreg.authz RULES)."""

    def __init__(
        self,
        desk: ConsentDesk,
        audited: Audited,
        breakglass: BreakGlassDesk | None = None,
        receipts: DepartmentReceipts | None = None,
    ) -> None:
        self._desk = desk
        self._audited = audited
        self._breakglass = breakglass
        self._receipts = receipts or DepartmentReceipts("")

    def BreakGlassRead(
        self, request: cpb.BreakGlassRequest, context: grpc.ServicerContext
    ) -> pb.ChildRecord:
        """Emergency access: the reason kept sealed, the access a "breakglass.read" leaf."""
        if self._breakglass is None:
            raise FailedPrecondition("emergency access is not enabled at this node")
        desk, ident, actor = self._breakglass, new_breakglass_id(), actor_of(context)
        return self._audited.change(
            actor,
            "breakglass.read",
            request.SerializeToString(),
            lambda: convert.child_view_to_proto(
                desk.read(request.child_id, request.reason, actor.name, ident)
            ),
            request.child_id,
            purpose="emergency",
            grant=ident,
        )

    def GrantConsent(
        self, request: cpb.ConsentRequest, context: grpc.ServicerContext
    ) -> cpb.ConsentReceipt:
        actor = actor_of(context)

        def grant() -> tuple[StoredConsent, str, str, str]:
            consent = self._desk.parse(
                {
                    "child_id": request.child_id,
                    "guardian_name": request.guardian_name,
                    "purpose": request.purpose,
                    "school": request.school,
                    "valid_from": request.valid_from,
                    "valid_until": request.valid_until,
                    "evidence_ref": request.evidence_ref,
                    "language": request.language,
                }
            )
            stored, token = self._desk.grant(consent, actor.name)
            return stored, token, consent.guardian_name, consent.language

        stored, token, guardian, language = self._audited.change(
            actor,
            "consent.grant",
            request.SerializeToString(),
            grant,
            request.child_id,
        )
        receipt = self._receipt(stored, guardian, "grant", language)
        receipt.grant = token
        return receipt

    def WithdrawConsent(
        self, request: cpb.WithdrawRequest, context: grpc.ServicerContext
    ) -> cpb.ConsentReceipt:
        actor = actor_of(context)

        def withdraw() -> tuple[StoredConsent, str, str]:
            stored = self._desk.withdraw(request.consent_id, actor.name)
            return (stored, *self._desk.guardian_and_language(stored))

        try:
            held: StoredConsent | None = self._desk.get(request.consent_id)
        except ChildregError:
            held = None
        stored, guardian, language = self._audited.change(
            actor,
            "consent.withdraw",
            request.SerializeToString(),
            withdraw,
            held.child_id if held else None,
            # the extract leaves name the grant the same way: an auditor links them
            purpose=held.purpose if held else "",
            grant=grant_ref(held.grant_hash) if held else "",
        )
        return self._receipt(stored, guardian, "withdrawal", language)

    def GetConsent(self, request: cpb.ConsentRef, context: grpc.ServicerContext) -> cpb.Consent:
        return self._audited.disclose(
            actor_of(context),
            "child.read",
            request.SerializeToString(),
            lambda: consent_to_proto(self._desk.get(request.consent_id)),
            self._child_of(request.consent_id),
        )

    def ListConsents(
        self, request: cpb.ChildConsentsRequest, context: grpc.ServicerContext
    ) -> cpb.Consents:
        return self._audited.disclose(
            actor_of(context),
            "child.read",
            request.SerializeToString(),
            lambda: cpb.Consents(
                consents=[consent_to_proto(c) for c in self._desk.list(request.child_id)]
            ),
            request.child_id,
        )

    def _child_of(self, consent_id: str) -> str | None:
        """The child a consent is about, for the leaf's subject (None if there is none)."""
        try:
            return self._desk.get(consent_id).child_id
        except ChildregError:
            return None

    def _receipt(
        self, consent: StoredConsent, guardian: str, kind: Kind, language: str
    ) -> cpb.ConsentReceipt:
        receipt = self._receipts.consent(consent, guardian, kind, language)
        return cpb.ConsentReceipt(
            consent=consent_to_proto(consent),
            receipt_json=receipt.json(),
            receipt_html=receipt.html,
            receipt_pdf=receipt.pdf(),
        )
