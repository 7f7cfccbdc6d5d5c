"""Who may call what: the one table from RPC method to allowed roles, and its enforcement.

Deny by default: a method missing from :data:`RULES` is refused for everyone. Every call
is checked before its handler runs, from the caller's verified certificate:

- the certificate carries exactly one URI SAN, a SPIFFE id of this federation;
- it is meant for client use (EKU clientAuth);
- the caller's role is allowed for the method;
- its serial is not on the federation's signed deny-list (``childreg.revocation``);
- on a department's node, department staff must belong to that department: their id is
  ``<department_id>.<person>`` (e.g. ``spiffe://az.childreg/department-staff/baku.registrar-1``).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, cast

import grpc
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from childreg.errors import InvalidInput, PermissionDenied, Unauthenticated
from childreg.pki import ROLES, IdentityFiles, SpiffeId, spiffe_id_of
from childreg.revocation import RevocationCheck

STAFF: Final = "department-staff"
_RECORDS = "/childreg.v1.RecordsService/"
_HEALTH = "/grpc.health.v1.Health/"
_CONSENT = "/childreg.v1.ConsentService/"

#: The single authorization table: full gRPC method name -> roles allowed to call it.
RULES: Final[Mapping[str, frozenset[str]]] = {
    **{
        _RECORDS + m: frozenset({STAFF})
        for m in (
            "RegisterChild",
            "FindChildren",
            "CorrectChild",
            "CloseChild",
            "EraseChild",
            "GetHistory",
            "RecordPlacement",
            "RecordCareSetting",
            "RecordAssessment",
            "GetChild",
            "BulkImport",
        )
    },
    **{
        _CONSENT + m: frozenset({STAFF})
        for m in (
            "GrantConsent",
            "WithdrawConsent",
            "GetConsent",
            "ListConsents",
            "BreakGlassRead",
        )
    },
    # A school asks for an extract with the grant it holds (checked against its identity).
    "/childreg.v1.ExtractService/GetExtract": frozenset({"school"}),
    **{
        "/childreg.v1.StatisticsService/" + m: frozenset({"coordinator"})
        for m in ("NoisyTable", "Ready", "RoundKeys", "KeyShares", "Share", "Unmask")
    },
    **{
        "/childreg.v1.NationalStatisticsService/" + m: frozenset({"statistician"})
        for m in ("PublishedTable", "Budget", "Catalogue")
    },
    # The audit log: auditors read it all; witnesses (the coordinator is one) need only
    # checkpoints and consistency proofs, never leaves.
    **{
        "/childreg.v1.AuditLogService/" + m: frozenset({"auditor", "witness", "coordinator"})
        for m in ("LatestCheckpoint", "ConsistencyProof")
    },
    **{
        "/childreg.v1.AuditLogService/" + m: frozenset({"auditor"})
        for m in ("GetEntries", "InclusionProof")
    },
    # Witnesses are given checkpoints by nodes; anyone auditing may read what they hold.
    "/childreg.v1.WitnessService/AddCheckpoint": frozenset({"node"}),
    "/childreg.v1.WitnessService/GetState": frozenset({"node", "auditor", "coordinator"}),
    # The federation's signed deny-list, fetched by every server from its publisher.
    "/childreg.v1.RevocationService/GetDenyList": frozenset({"node", "witness", "coordinator"}),
    # Supervisors (systemd, Kubernetes probes) hold an identity too; health says nothing else.
    # Watch is not offered: each open stream would hold a worker thread for its deadline.
    _HEALTH + "Check": frozenset(ROLES),
}

#: Methods whose callers, when department staff, must belong to the serving department.
DEPARTMENT_SCOPED: Final = frozenset(
    m for m in RULES if m.startswith(_RECORDS) or m.startswith(_CONSENT)
)


#: A call's auth context as gRPC gives it at run time (grpc-stubs say bytes, not lists).
AuthContext = Mapping[str, Sequence[bytes]]


@dataclass(frozen=True)
class Caller:
    """A verified caller: its identity, its certificate's serial number and validity."""

    spiffe: SpiffeId
    serial: int
    not_before: dt.datetime
    not_after: dt.datetime


class Authorizer:
    """Checks each call against :data:`RULES` for one server of one federation."""

    def __init__(
        self,
        federation: str,
        *,
        department: str | None = None,
        revoked: RevocationCheck | None = None,
        rules: Mapping[str, frozenset[str]] = RULES,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._clock = clock
        self._federation = federation
        self._department = department
        self._revoked = revoked
        self._rules = rules
        self._certs: OrderedDict[bytes, Caller | str] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, method: str, context: grpc.ServicerContext) -> Caller:
        """The verified caller allowed to call ``method``, or PermissionDenied/Unauthenticated."""
        caller = self.identify(context)
        self.permit(method, caller)
        return caller

    def identify(self, context: grpc.ServicerContext, auth: AuthContext | None = None) -> Caller:
        """The caller, checked on every call: identity, validity now, not revoked.

        Validity is re-checked per call because TLS checks dates only at the handshake: a
        connection opened before a certificate expired must not keep working after it.
        ``auth`` is the call's auth context if the caller has read it already.
        """
        caller = self.caller(context, auth)
        now = self._clock()
        if not caller.not_before <= now <= caller.not_after:
            raise PermissionDenied("the client certificate is expired or not yet valid")
        if self._revoked is not None and self._revoked.is_revoked(caller.serial):
            raise PermissionDenied("the client certificate has been revoked")
        return caller

    def permit(self, method: str, caller: Caller) -> None:
        """PermissionDenied unless the table allows ``caller`` to call ``method`` here."""
        allowed = self._rules.get(method, frozenset())
        if caller.spiffe.role not in allowed:
            raise PermissionDenied(f"the role {caller.spiffe.role} may not call this method")
        if (
            method in DEPARTMENT_SCOPED
            and caller.spiffe.role == STAFF
            and self._department is not None
            and caller.spiffe.ident.split(".", 1)[0] != self._department
        ):
            raise PermissionDenied("department staff may only use their own department's node")

    def caller(self, context: grpc.ServicerContext, auth: AuthContext | None = None) -> Caller:
        """Identify the caller from its verified certificate (cached per certificate)."""
        if auth is None:
            auth = cast(AuthContext, context.auth_context())
        pems = auth.get("x509_pem_cert") or []
        if not pems:
            raise Unauthenticated("a client certificate is required")
        pem = pems[0]
        with self._lock:
            known = self._certs.get(pem)
        if known is None:
            known = self._inspect(pem)
            with self._lock:
                self._certs[pem] = known
                while len(self._certs) > 1024:
                    self._certs.popitem(last=False)
        if isinstance(known, str):
            raise PermissionDenied(known)
        return known

    def _inspect(self, pem: bytes) -> Caller | str:
        """A Caller, or the reason the certificate is not acceptable here."""
        try:
            cert = x509.load_pem_x509_certificate(pem)
            spiffe = spiffe_id_of(cert)
        except (ValueError, InvalidInput) as exc:
            return f"the client certificate has no acceptable identity ({exc})"
        if spiffe.federation != self._federation:
            return "the client certificate belongs to another federation"
        try:
            usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            return "the client certificate is not for client authentication"
        if ExtendedKeyUsageOID.CLIENT_AUTH not in usages:
            return "the client certificate is not for client authentication"
        return Caller(
            spiffe, cert.serial_number, cert.not_valid_before_utc, cert.not_valid_after_utc
        )


def authorizer_for(
    identity: IdentityFiles, *, department: str | None = None, denylist: Path | None = None
) -> Authorizer:
    """The authorizer of a server holding ``identity``: its federation, its deny-list."""
    ca = x509.load_pem_x509_certificate(identity.ca.read_bytes())
    federation = identity.spiffe_id().federation
    revoked = None if denylist is None else RevocationCheck(denylist, ca, federation)
    return Authorizer(federation, department=department, revoked=revoked)
