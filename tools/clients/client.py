"""Client side of the CLI: connecting with an identity, and turning RPC failures into advice.

Every call passes a deadline. Failures become :class:`CliError` with a one-line message
that says what happened and what to do next, and the documented exit code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import grpc

from childreg.errors import (
    AlreadyExists,
    ChildregError,
    FailedPrecondition,
    InvalidInput,
    KeyProblem,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    Violation,
)
from childreg.pki import IdentityFiles
from childreg.rpc import TlsMaterial, error_class_of, secure_channel, violations_from_error
from childreg.server_check import check_endpoint

#: Documented exit codes of every `childreg` command (docs/cli.md).
EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_INCOMPLETE = 3
EXIT_KEY = 4
EXIT_UNAVAILABLE = 5
EXIT_REJECTED = 6
EXIT_REFUSED = 7
EXIT_UNVERIFIED = 8
#: A registration held back: the node holds likely duplicates (`childreg child register`).
EXIT_HELD = 9

DEFAULT_TIMEOUT = 30.0

Q = TypeVar("Q")
R = TypeVar("R")


class CliError(Exception):
    """A failure to show a person: one line, an optional hint, violations, an exit code."""

    def __init__(
        self,
        message: str,
        *,
        code: int = EXIT_INTERNAL,
        hint: str = "",
        violations: list[Violation] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.hint = hint
        self.violations = list(violations or [])


#: The one table from error class to exit code, for errors raised in the CLI's own process
#: and for errors a server sent (their class travels with them: childreg.rpc.error_class_of).
#: A class not listed takes its nearest listed base class; anything else exits 1.
#: docs/cli.md, "Exit codes", shows the same table (a test compares them).
EXIT_CODES: dict[type[ChildregError], int] = {
    KeyProblem: EXIT_KEY,
    Unavailable: EXIT_UNAVAILABLE,
    InvalidInput: EXIT_REJECTED,
    NotFound: EXIT_REJECTED,
    AlreadyExists: EXIT_REJECTED,
    PermissionDenied: EXIT_REFUSED,
    Unauthenticated: EXIT_REFUSED,
    FailedPrecondition: EXIT_REFUSED,
    ResourceExhausted: EXIT_REFUSED,
}


def exit_code_of(cls: type[ChildregError]) -> int:
    """The exit code for an error class, from :data:`EXIT_CODES`."""
    for base in cls.__mro__:
        if base in EXIT_CODES:
            return EXIT_CODES[base]
    return EXIT_INTERNAL


def exit_code_for(exc: ChildregError) -> int:
    """The CLI exit code for a domain error (the same whether local or from a server)."""
    return exit_code_of(type(exc))


def cli_error(exc: ChildregError) -> CliError:
    """A domain error raised in this process as the CliError shown for it: its message,
    hint and violations, and the exit code of its class."""
    return CliError(
        str(exc),
        code=exit_code_for(exc),
        hint=getattr(exc, "hint", ""),
        violations=getattr(exc, "violations", None),
    )


@dataclass(frozen=True)
class Endpoint:
    """Where a server is and how to reach it: address, the name to pin, our identity."""

    address: str
    identity_dir: Path
    server_name: str | None = None
    timeout: float = DEFAULT_TIMEOUT

    def channel(self) -> grpc.Channel:
        """A mutual-TLS channel to the server using our identity; PermissionDenied if the
        server presents a certificate on the deny-list in our identity directory."""
        check_endpoint(self.address, self.identity_dir, self.server_name, self.timeout)
        tls = TlsMaterial.from_dir(IdentityFiles(self.identity_dir))
        return secure_channel(self.address, tls, self.server_name)


def env_default(name: str) -> str | None:
    """A value from the environment, or None when unset or empty."""
    return os.environ.get(name) or None


def rpc_failure(err: grpc.RpcError, what: str, address: str) -> CliError:
    """Translate a failed call into advice for a person."""
    code = err.code()
    details = err.details() or ""
    exit_code = exit_code_of(error_class_of(err))
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return CliError(
            f"{what}: could not reach {address} in time ({code.name})",
            code=exit_code,
            hint="check that the server runs, the address and --server-name are right, "
            "and that your identity was issued by the same federation CA",
        )
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return CliError(
            f"{what}: rejected: {details}",
            code=exit_code,
            violations=violations_from_error(err),
        )
    if code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.ALREADY_EXISTS):
        return CliError(f"{what}: {details}", code=exit_code)
    if code in (
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    ):
        return CliError(f"{what}: refused ({code.name}): {details}", code=exit_code)
    return CliError(
        f"{what}: the server failed ({code.name}): {details}",
        code=exit_code,
        hint="the server's log has the details",
    )


def call(
    endpoint: Endpoint, what: str, method: grpc.UnaryUnaryMultiCallable[Q, R], request: Q
) -> R:
    """One unary call with the endpoint's deadline, its failure turned into advice."""
    try:
        return method(request, timeout=endpoint.timeout)
    except grpc.RpcError as exc:
        raise rpc_failure(exc, what, endpoint.address) from None


REJECTED_HINT = "fix the rows listed (line, column, problem) and import the whole file again"


def rejected_import(violations: list[Violation]) -> CliError:
    """The error shown when the local check refuses a file because of bad rows."""
    bad_lines = {v.line for v in violations if v.line is not None}
    n = len(bad_lines) or len(violations)
    return CliError(
        f"{n} bad rows; nothing was imported",
        code=EXIT_REJECTED,
        hint=REJECTED_HINT,
        violations=violations,
    )
