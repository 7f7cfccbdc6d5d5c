"""One error hierarchy for every party, and the one table mapping it to gRPC status codes.

Messages of these errors are *public*: they may be sent to a peer or shown to a person,
so they name fields and problems but never carry a value from a record. Internal detail
goes to the log (without personal data) and never to the peer.

    ChildregError
    ├── InvalidInput            a request or file failed validation (has .violations)
    │   └── ImportRejected      a bulk import with bad rows; nothing was imported
    ├── NotFound                the named thing does not exist (here)
    │   └── Erased              a child's record was erased; only its pseudonym is known
    ├── AlreadyExists           a record with that id exists already
    ├── PermissionDenied        the caller may not do this
    ├── Unauthenticated         the caller did not prove who it is
    ├── ResourceExhausted       a size, rate or budget limit was hit
    ├── FailedPrecondition      the system is not in a state that allows this
    ├── Unavailable             a peer could not be reached in time
    └── KeyProblem              a key is missing or wrong (KEK, database key); see .hint
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc


@dataclass(frozen=True)
class Violation:
    """One problem with one field: where (``field``), what (``problem``), optional ``line``."""

    field: str
    problem: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}, " if self.line is not None else ""
        return f"{where}{self.field}: {self.problem}"


class ChildregError(Exception):
    """Base of every error this project raises on purpose; its message is public."""

    status: grpc.StatusCode = grpc.StatusCode.INTERNAL


class InvalidInput(ChildregError):
    """A request, file or configuration failed validation; nothing was changed."""

    status = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, message: str, violations: list[Violation] | None = None) -> None:
        super().__init__(message)
        self.violations: list[Violation] = list(violations or [])


class ImportRejected(InvalidInput):
    """A bulk import found bad rows; no row was imported."""


class NotFound(ChildregError):
    """The named thing does not exist."""

    status = grpc.StatusCode.NOT_FOUND


class Erased(NotFound):
    """The child's record was erased: nothing of it is held, only its pseudonym is known."""


class AlreadyExists(ChildregError):
    """A record with that identifier exists already."""

    status = grpc.StatusCode.ALREADY_EXISTS


class PermissionDenied(ChildregError):
    """The caller is known but may not do this."""

    status = grpc.StatusCode.PERMISSION_DENIED


class Unauthenticated(ChildregError):
    """The caller did not prove who it is."""

    status = grpc.StatusCode.UNAUTHENTICATED


class ResourceExhausted(ChildregError):
    """A size, rate or budget limit was reached."""

    status = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPrecondition(ChildregError):
    """The system is not in a state that allows the operation."""

    status = grpc.StatusCode.FAILED_PRECONDITION


class Unavailable(ChildregError):
    """A peer could not be reached in time."""

    status = grpc.StatusCode.UNAVAILABLE


class KeyProblem(ChildregError):
    """A key is missing, malformed or wrong; ``hint`` says what the operator can do."""

    status = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


#: The one table from error class to gRPC status. Anything not listed is INTERNAL.
STATUS_TABLE: dict[type[ChildregError], grpc.StatusCode] = {
    cls: cls.status
    for cls in (
        InvalidInput,
        ImportRejected,
        NotFound,
        Erased,
        AlreadyExists,
        PermissionDenied,
        Unauthenticated,
        ResourceExhausted,
        FailedPrecondition,
        Unavailable,
        KeyProblem,
    )
}


#: The domain of the ``google.rpc.ErrorInfo`` a server attaches to every domain error: its
#: reason is the error's class name (public, like the class itself), so a client recovers
#: the same class a local caller would have caught, even where two classes share a status.
ERROR_DOMAIN = "childreg.v1"


def error_class_for(status: grpc.StatusCode, reason: str = "") -> type[ChildregError]:
    """The error class a call failed with: the class ``reason`` names, else the most
    general class with that status (INTERNAL and unknown statuses: ChildregError)."""
    for cls in STATUS_TABLE:
        if cls.__name__ == reason and cls.status == status:
            return cls
    for cls in STATUS_TABLE:  # base classes come before their subclasses
        if cls.status == status:
            return cls
    if status == grpc.StatusCode.DEADLINE_EXCEEDED:
        return Unavailable
    return ChildregError


def status_for(exc: BaseException) -> grpc.StatusCode:
    """The gRPC status code for an exception: from the table, else INTERNAL."""
    for cls in type(exc).__mro__:
        if cls in STATUS_TABLE:
            return STATUS_TABLE[cls]
    return grpc.StatusCode.INTERNAL
