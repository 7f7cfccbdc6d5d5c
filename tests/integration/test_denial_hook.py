"""Authorization refusals reach the node's audit hook; rate-limited ones do not.

A node records every authorization denial as an audit leaf (node/server.py wires the
hook). The hook must see each refusal exactly once, never a permitted call, and a caller
over its rate limit is refused before the hook (so refusals cannot flood the log).
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from childreg.authz import Authorizer
from childreg.ratelimit import RateLimit
from childreg.rpc import make_server, secure_channel
from tests.conftest import FEDERATION, IssueFn, tls
from tests.integration.test_authorization import (
    DEPARTMENT,
    METHODS,
    SERVER_NAME,
    Spy,
    call,
    full_name,
    spy_handlers,
)

GET_CHILD = next(m for m in METHODS if m.name == "GetChild")


@pytest.fixture
def hooked(issue: IssueFn) -> Iterator[tuple[str, list[tuple[str, str, str]]]]:
    """Department alpha's node with spies, a denial hook, and a burst of 3 calls."""
    seen: list[tuple[str, str, str]] = []
    server, port = make_server(
        lambda s: s.add_generic_rpc_handlers(spy_handlers(Spy())),
        tls=tls(issue("node", DEPARTMENT)),
        bind="127.0.0.1:0",
        authorizer=Authorizer(FEDERATION, department=DEPARTMENT),
        rate_limit=RateLimit(rate=0.001, burst=3),
        on_denied=lambda method, peer, code: seen.append((method, peer, code)),
    )
    yield f"127.0.0.1:{port}", seen
    server.stop(None)


def test_each_denial_reaches_the_hook_once(
    hooked: tuple[str, list[tuple[str, str, str]]], issue: IssueFn
) -> None:
    """A school's read is refused and reported; department staff's read is not reported."""
    address, seen = hooked
    assert (
        call(address, tls(issue("school", "school-9")), GET_CHILD)
        == grpc.StatusCode.PERMISSION_DENIED
    )
    assert seen == [
        (full_name(GET_CHILD), f"spiffe://{FEDERATION}/school/school-9", "PERMISSION_DENIED")
    ]
    staff = tls(issue("department-staff", f"{DEPARTMENT}.clerk"))
    assert call(address, staff, GET_CHILD) == grpc.StatusCode.OK
    assert len(seen) == 1


def test_refusals_over_the_rate_limit_are_not_reported(
    hooked: tuple[str, list[tuple[str, str, str]]], issue: IssueFn
) -> None:
    """Three refused calls use the burst; the next ones are RESOURCE_EXHAUSTED, unreported."""
    address, seen = hooked
    school = tls(issue("school", "school-10"))
    codes = [call(address, school, GET_CHILD) for _ in range(6)]
    assert (
        codes == [grpc.StatusCode.PERMISSION_DENIED] * 3 + [grpc.StatusCode.RESOURCE_EXHAUSTED] * 3
    )
    assert len(seen) == 3


def test_a_malformed_request_is_charged_and_reported_after_authorization(
    hooked: tuple[str, list[tuple[str, str, str]]], issue: IssueFn
) -> None:
    """Undecodable bytes from a permitted caller are refused INVALID_ARGUMENT and reported
    to the hook; from a refused one PERMISSION_DENIED; both count against the rate limit."""
    address, seen = hooked
    staff = tls(issue("department-staff", f"{DEPARTMENT}.clerk"))
    channel = secure_channel(address, staff, SERVER_NAME)
    raw = channel.unary_unary(full_name(GET_CHILD), None, None)
    codes = []
    for _ in range(4):
        try:
            raw(b"\x0a\x05ab", timeout=5)  # truncated
        except grpc.RpcError as err:
            codes.append(err.code())
    channel.close()
    assert codes == [grpc.StatusCode.INVALID_ARGUMENT] * 3 + [grpc.StatusCode.RESOURCE_EXHAUSTED]
    peer = f"spiffe://{FEDERATION}/department-staff/{DEPARTMENT}.clerk"
    assert seen == [(full_name(GET_CHILD), peer, "INVALID_ARGUMENT")] * 3
