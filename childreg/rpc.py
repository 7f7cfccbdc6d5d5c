"""gRPC plumbing every party shares: mutual-TLS servers and channels, limits, and the boundary.

The boundary interceptor wraps every handler: domain errors (``childreg.errors``) become
their status from the one status table with their public message and, for invalid input,
a ``google.rpc.BadRequest`` listing each bad field; anything unexpected becomes INTERNAL
with a generic message (the detail goes to the log, never to the peer). It also writes one
log line per RPC: caller identity, method, status, duration — never request contents. The
line is written when the call has ended, so it does not delay the answer, and the caller's
identity is read from the call's auth context once, for the rate limit, authorization,
the log line and the handler (:func:`peer_identity`).

Requests are decoded here too, not by gRPC: every handler is served with no request
deserializer, and the boundary parses the bytes after the rate-limit charge,
authorization and the deadline check, so an unauthorized caller is refused whatever it
sent and a malformed message is an answered INVALID_ARGUMENT (field ``request``) with
its log line — one mechanism for every service of every party (docs/design/security.md).
"""

from __future__ import annotations

import contextlib
import functools
import re
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, cast

import grpc
import structlog
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from google.protobuf import descriptor_pool
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from childreg.authz import AuthContext, Authorizer
from childreg.errors import (
    ERROR_DOMAIN,
    STATUS_TABLE,
    ChildregError,
    InvalidInput,
    PermissionDenied,
    Unauthenticated,
    Violation,
    error_class_for,
    status_for,
)
from childreg.pki import IdentityFiles
from childreg.ratelimit import RateLimit, RateLimiter

log = structlog.get_logger("childreg.rpc")

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
#: Violations travel in the trailing metadata, whose default limit is 8 KiB (base64 makes
#: them a third larger): keep their serialised size well under it, and say how many more.
MAX_VIOLATION_BYTES = 4096
#: Every call must carry a deadline, and none longer than this (a bulk import is the longest).
MAX_DEADLINE_SECONDS = 3600.0
MORE_FIELD = "more"
INTERNAL_MESSAGE = "internal error; the operator can find details in the server log"

SERVER_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 30_000),
    ("grpc.max_connection_idle_ms", 15 * 60_000),
    # Connections are re-established (new handshake: certificate dates and chain checked
    # again) at least hourly; calls in flight get an hour to finish.
    ("grpc.max_connection_age_ms", 60 * 60_000),
    ("grpc.max_connection_age_grace_ms", 60 * 60_000),
    ("grpc.so_reuseport", 0),
]


@dataclass(frozen=True)
class TlsMaterial:
    """PEM bytes of a party's identity: the federation root, its chain, its private key."""

    ca: bytes
    cert: bytes
    key: bytes

    @classmethod
    def from_dir(cls, directory: IdentityFiles) -> TlsMaterial:
        """Read an identity directory (ca.crt, tls.crt, tls.key)."""
        ca, cert, key = directory.read()
        return cls(ca=ca, cert=cert, key=key)

    def __repr__(self) -> str:  # never show key bytes, even in a debugger or a traceback
        return "TlsMaterial(<redacted>)"


def server_credentials(tls: TlsMaterial) -> grpc.ServerCredentials:
    """Mutual TLS: the server demands and verifies a client certificate from our CA."""
    return grpc.ssl_server_credentials(
        [(tls.key, tls.cert)], root_certificates=tls.ca, require_client_auth=True
    )


def _require_pair(material: TlsMaterial) -> None:
    """ValueError unless the private key is the certificate's (files caught mid-renewal)."""
    cert = x509.load_pem_x509_certificate(material.cert)
    key = serialization.load_pem_private_key(material.key, password=None)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if key.public_key().public_bytes(der, spki) != cert.public_key().public_bytes(der, spki):
        raise ValueError("the identity's key is not its certificate's")


class RotatingCredentials:
    """Server credentials re-read from an identity directory when its files change.

    gRPC asks :meth:`fetch` on every new handshake; returning a new configuration makes
    new connections use the new certificate, with no restart and without dropping the
    connections already open.
    """

    def __init__(self, identity: IdentityFiles) -> None:
        self._identity = identity
        self._stamp = self._identity.stamp()

    def _config(self) -> grpc.ServerCertificateConfiguration:
        material = TlsMaterial.from_dir(self._identity)
        _require_pair(material)  # a renewal with a new key writes the key, then the cert
        return grpc.ssl_server_certificate_configuration(
            [(material.key, material.cert)], root_certificates=material.ca
        )

    def credentials(self) -> grpc.ServerCredentials:
        """Dynamic mutual-TLS credentials starting from the files as they are now."""
        # grpc-stubs omit it, but gRPC documents that the fetcher returns None for "no change".
        fetch = cast(Callable[[], grpc.ServerCertificateConfiguration], self.fetch)
        return grpc.dynamic_ssl_server_credentials(
            self._config(), fetch, require_client_authentication=True
        )

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """A new configuration if the files changed since the last look, else None."""
        try:
            stamp = self._identity.stamp()
            if stamp == self._stamp:
                return None
            config = self._config()
        except Exception:  # half-written files: keep serving the old certificate
            log.warning("tls.reload_failed")
            return None
        self._stamp = stamp
        log.info("tls.reloaded")
        return config


def make_server(
    register: Callable[[grpc.Server], None],
    *,
    tls: TlsMaterial | RotatingCredentials,
    bind: str,
    authorizer: Authorizer,
    rate_limit: RateLimit | None = None,
    max_workers: int = 8,
    on_denied: DenialHook | None = None,
) -> tuple[grpc.Server, int]:
    """Build a started mutual-TLS server with limits; returns it and the bound port.

    ``tls`` is fixed material, or :class:`RotatingCredentials` to pick up renewed
    certificates without a restart. Every call is authorized by ``authorizer`` before its
    handler runs (deny by default),
    then charged to its caller's rate limit (``rate_limit``, or the default).
    ``bind`` may use port 0 to let the OS choose a free port.
    """
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="rpc"),
        interceptors=[
            BoundaryInterceptor(authorizer, RateLimiter(rate_limit or RateLimit()), on_denied)
        ],
        options=SERVER_OPTIONS,
        maximum_concurrent_rpcs=max_workers * 8,
    )
    register(server)
    creds = tls.credentials() if isinstance(tls, RotatingCredentials) else server_credentials(tls)
    port = server.add_secure_port(bind, creds)
    if port == 0:
        raise ChildregError(f"could not listen on {bind}")
    server.start()
    return server, port


def secure_channel(
    address: str,
    tls: TlsMaterial,
    server_name: str | None,
    *,
    max_reconnect_backoff_ms: int | None = None,
) -> grpc.Channel:
    """A mutual-TLS channel; ``server_name`` pins the name the server's certificate must carry.

    ``max_reconnect_backoff_ms`` caps gRPC's reconnect backoff (default: up to 120 s), so a
    client that must notice a server coming back (the coordinator's rounds) does so quickly.
    """
    creds = grpc.ssl_channel_credentials(
        root_certificates=tls.ca, private_key=tls.key, certificate_chain=tls.cert
    )
    options: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.enable_retries", 0),
    ]
    if server_name:
        options.append(("grpc.ssl_target_name_override", server_name))
    if max_reconnect_backoff_ms is not None:
        options += [
            ("grpc.initial_reconnect_backoff_ms", min(100, max_reconnect_backoff_ms)),
            ("grpc.min_reconnect_backoff_ms", min(100, max_reconnect_backoff_ms)),
            ("grpc.max_reconnect_backoff_ms", max_reconnect_backoff_ms),
        ]
    return grpc.secure_channel(address, creds, options=options)


#: Where the boundary leaves the identity it read on the call's context, for the handler.
_PEER_ATTRIBUTE: Final = "_childreg_peer"


def peer_identity(context: grpc.ServicerContext) -> str:
    """The caller's SPIFFE id from its verified certificate, or '-' if none.

    Inside a call the boundary admitted, the identity it read already (gRPC builds a new
    auth context on every ``auth_context()``, so it is read once per call).
    """
    known = getattr(context, _PEER_ATTRIBUTE, None)
    if isinstance(known, str):
        return known
    return _spiffe_in(_auth_of(context))


def _auth_of(context: grpc.ServicerContext) -> AuthContext:
    try:
        # grpc-stubs says Mapping[str, bytes]; the runtime gives lists of bytes per key.
        return cast(AuthContext, context.auth_context())
    except Exception:  # pragma: no cover - defensive: auth context unavailable
        return {}


def _spiffe_in(auth: AuthContext) -> str:
    for uri in auth.get("x509_subject_alternative_name", []):
        text = uri.decode(errors="replace")
        if text.startswith("spiffe://"):
            return text
    return "-"


def _identified(context: grpc.ServicerContext) -> tuple[AuthContext, str]:
    """The call's auth context and claimed identity, read once and left on the context."""
    auth = _auth_of(context)
    peer = _spiffe_in(auth)
    with contextlib.suppress(AttributeError, TypeError):  # a context that takes no attributes
        setattr(context, _PEER_ATTRIBUTE, peer)
    return auth, peer


def _status_with_details(exc: ChildregError) -> status_pb2.Status:
    code = status_for(exc)
    status = status_pb2.Status(code=code.value[0], message=str(exc))
    status.details.add().Pack(
        error_details_pb2.ErrorInfo(reason=_error_class(exc).__name__, domain=ERROR_DOMAIN)
    )
    if isinstance(exc, InvalidInput) and exc.violations:
        bad = error_details_pb2.BadRequest()
        size = 0
        for sent, v in enumerate(exc.violations):
            fv = error_details_pb2.BadRequest.FieldViolation(
                field=v.field if v.line is None else f"line[{v.line}].{v.field}",
                description=v.problem,
            )
            size += fv.ByteSize() + 4
            if size > MAX_VIOLATION_BYTES:
                more = bad.field_violations.add()
                more.field = MORE_FIELD
                more.description = f"{len(exc.violations) - sent} more not listed"
                break
            bad.field_violations.append(fv)
        status.details.add().Pack(bad)
    return status


def _already_aborted(context: grpc.ServicerContext) -> bool:
    """True when the handler itself called ``context.abort`` (its status must stand)."""
    code_of = getattr(context, "code", None)  # absent from grpc-stubs, present at run time
    code = code_of() if callable(code_of) else None
    return code is not None and code != grpc.StatusCode.OK


def _abort(context: grpc.ServicerContext, exc: BaseException) -> None:
    if _already_aborted(context):
        raise exc
    if isinstance(exc, ChildregError):
        context.abort_with_status(rpc_status.to_status(_status_with_details(exc)))
    context.abort(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE)


if TYPE_CHECKING:  # grpc-stubs makes the interceptor generic; the runtime class is not
    _Interceptor = grpc.ServerInterceptor[Any, Any]
else:
    _Interceptor = grpc.ServerInterceptor


#: Called with (method, caller's SPIFFE id, status name) when a call is refused at the
#: door before any handler ran — by authorization, or (INVALID_ARGUMENT) because its
#: request message could not be decoded — before the refusal is sent.
DenialHook = Callable[[str, str, str], None]


class BoundaryInterceptor(_Interceptor):
    """Authorize, translate errors at the boundary, and log one line per RPC (no contents)."""

    def __init__(
        self, authorizer: Authorizer, limiter: RateLimiter, on_denied: DenialHook | None = None
    ) -> None:
        self._authorizer = authorizer
        self._limiter = limiter
        self._on_denied = on_denied

    def _admit(
        self, method: str, context: grpc.ServicerContext, auth: AuthContext, peer: str
    ) -> None:
        """Charge the caller's rate limit (refused calls count too), authorize, and insist
        on a deadline. An authorization refusal is reported to ``on_denied`` (a node
        records it in its audit log) before the call is refused. ``auth`` and ``peer`` are
        the call's auth context and the identity its certificate claims."""
        # Charged first, by the identity the certificate claims: a revoked or expired
        # certificate still completes TLS, and its refusals must not be free (each one
        # may be written to a node's audit log).
        self._limiter.take(peer)
        try:
            caller = self._authorizer.identify(context, auth)
            self._authorizer.permit(method, caller)
        except (PermissionDenied, Unauthenticated) as exc:
            if self._on_denied is not None:
                try:
                    self._on_denied(method, peer, status_for(exc).name)
                except Exception as hook_error:  # the call is refused either way
                    log.error("rpc.denial_hook_failed", error_type=type(hook_error).__name__)
            raise
        _require_deadline(context)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        decode = _Decoder(method, handler.request_deserializer)
        streaming_request = handler.request_streaming

        def guard(fn: Callable[..., Any], streaming_response: bool) -> Callable[..., Any]:
            def unary(raw: Any, context: grpc.ServicerContext) -> Any:
                start = time.perf_counter()
                code = "OK"
                auth, peer = _identified(context)
                try:
                    self._admit(method, context, auth, peer)
                    return fn(self._decoded(raw, streaming_request, decode, peer), context)
                except Exception as exc:
                    code = _log_failure(method, peer, context, exc)
                    _abort(context, exc)
                finally:
                    _log_rpc(context, method, peer, code, start)

            def streaming(raw: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                start = time.perf_counter()
                code = "OK"
                auth, peer = _identified(context)
                try:
                    self._admit(method, context, auth, peer)
                    yield from fn(self._decoded(raw, streaming_request, decode, peer), context)
                except Exception as exc:
                    code = _log_failure(method, peer, context, exc)
                    _abort(context, exc)
                finally:
                    _log_rpc(context, method, peer, code, start)

            return streaming if streaming_response else unary

        kinds = {
            "unary_unary": grpc.unary_unary_rpc_method_handler,
            "unary_stream": grpc.unary_stream_rpc_method_handler,
            "stream_unary": grpc.stream_unary_rpc_method_handler,
            "stream_stream": grpc.stream_stream_rpc_method_handler,
        }
        for kind, make in kinds.items():
            fn = getattr(handler, kind)
            if fn is not None:
                # The request arrives as bytes (no deserializer): the guard decodes it
                # after admission, so a malformed message is an answered INVALID_ARGUMENT.
                return make(
                    guard(fn, handler.response_streaming),
                    request_deserializer=None,
                    response_serializer=handler.response_serializer,
                )
        return handler  # pragma: no cover - every handler has one of the four kinds

    def _decoded(self, raw: Any, streaming: bool, decode: _Decoder, peer: str) -> Any:
        """The request parsed from its bytes, after admission (authorization first).

        A unary request that does not parse never reaches the handler: like a refusal at
        the door, it is reported to ``on_denied`` (a node's ``denied`` leaf, outcome
        INVALID_ARGUMENT). A stream's messages are parsed as the handler reads them: one
        that does not parse raises InvalidInput inside the handler, whose own leaf (the
        action's, outcome INVALID_ARGUMENT) records it.
        """
        if streaming:
            return (decode(item) for item in raw)
        try:
            return decode(raw)
        except InvalidInput:
            if self._on_denied is not None:
                try:
                    self._on_denied(decode.method, peer, grpc.StatusCode.INVALID_ARGUMENT.name)
                except Exception as hook_error:  # the call is refused either way
                    log.error("rpc.denial_hook_failed", error_type=type(hook_error).__name__)
            raise


class _Decoder:
    """Parses one request message of one method from its wire bytes, or InvalidInput
    naming the field "request" (never the bytes, never the parser's detail)."""

    def __init__(self, method: str, deserializer: Callable[[bytes], Any] | None) -> None:
        self.method = method
        self._deserializer = deserializer
        self._problem = f"not a valid {_input_type_of(method)} message"

    def __call__(self, raw: bytes) -> Any:
        if self._deserializer is None:
            return raw
        try:
            return self._deserializer(raw)
        except Exception as exc:  # a parser's error is about the bytes the caller sent
            log.warning("rpc.malformed_request", method=self.method, error_type=type(exc).__name__)
            raise InvalidInput(
                "the request could not be decoded", [Violation("request", self._problem)]
            ) from None


@functools.lru_cache(maxsize=256)  # looked up once per method, not per call
def _input_type_of(method: str) -> str:
    """The request message's name for a full method name like /pkg.Service/Method."""
    name = method.strip("/").replace("/", ".")
    try:
        found = descriptor_pool.Default().FindMethodByName(name)
    except KeyError:
        return "request"
    return str(found.input_type.name)


def _require_deadline(context: grpc.ServicerContext) -> None:
    """Refuse calls without a deadline, or with one beyond MAX_DEADLINE_SECONDS."""
    remaining = context.time_remaining()
    if remaining is None or remaining > MAX_DEADLINE_SECONDS:
        raise InvalidInput(
            f"every call must carry a deadline of at most {MAX_DEADLINE_SECONDS:.0f} seconds",
            [Violation("deadline", "missing or too long")],
        )


def _log_failure(method: str, peer: str, context: grpc.ServicerContext, exc: BaseException) -> str:
    if isinstance(exc, PermissionDenied | Unauthenticated):
        # Reasons are about certificates and roles, never about records.
        log.warning("rpc.denied", method=method, peer=peer, reason=str(exc))
    if isinstance(exc, ChildregError):
        return status_for(exc).name
    if _already_aborted(context):
        return "ABORTED"
    # Only the exception type: messages of foreign exceptions may quote personal data.
    log.error("rpc.unexpected_error", method=method, error_type=type(exc).__name__)
    return "INTERNAL"


def _log_rpc(
    context: grpc.ServicerContext, method: str, peer: str, code: str, start: float
) -> None:
    """The call's one log line, written once the call has ended: off the answer's path.

    The duration is the handler's, measured now. gRPC runs the callback when the call
    ends (also when it is cancelled or the server stops); if the call has ended already,
    the line is written at once.
    """
    duration_ms = round((time.perf_counter() - start) * 1000, 2)

    def line() -> None:
        log.info("rpc", method=method, peer=peer, status=code, duration_ms=duration_ms)

    try:
        deferred = context.add_callback(line)
    except Exception:  # pragma: no cover - defensive: a context without callbacks
        deferred = False
    if not deferred:
        line()


_LINE_FIELD = re.compile(r"^line\[(\d+)\]\.(.+)$")


def _error_class(exc: ChildregError) -> type[ChildregError]:
    """The most specific class of ``exc`` in the status table (what a client re-creates)."""
    for cls in type(exc).__mro__:
        if cls in STATUS_TABLE:
            return cls
    return ChildregError


def error_class_of(err: grpc.RpcError) -> type[ChildregError]:
    """The domain error class a failed call carries: the server's ErrorInfo reason when
    present, else the class of its status (DEADLINE_EXCEEDED counts as Unavailable)."""
    reason = ""
    with contextlib.suppress(ValueError, AttributeError):
        status = rpc_status.from_call(err)  # type: ignore[arg-type]
        for detail in status.details if status is not None else ():
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                if info.domain == ERROR_DOMAIN:
                    reason = info.reason
    return error_class_for(err.code(), reason)


def violations_from_error(err: grpc.RpcError) -> list[Violation]:
    """Recover the field violations a server attached to an INVALID_ARGUMENT error."""
    try:
        status = rpc_status.from_call(err)  # type: ignore[arg-type]
    except ValueError:  # details and status disagree (e.g. trailers cut by a size limit)
        return []
    out: list[Violation] = []
    if status is None:
        return out
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            for fv in bad.field_violations:
                m = _LINE_FIELD.match(fv.field)
                if m:
                    out.append(Violation(m.group(2), fv.description, int(m.group(1))))
                else:
                    out.append(Violation(fv.field, fv.description))
    return out
