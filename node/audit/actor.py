"""Who did it: the authenticated actor an audit leaf names, whichever door they came through.

Why: the audited service (node/audit/service.py) must not care how a caller proved who
they are, yet every leaf must name them in one of a few fixed shapes, so an auditor can
tell a machine from a person from an operator at the node's console. Each front door
authenticates its caller and makes one :class:`Actor`:

- a machine or a CLI over mutual TLS: its certificate's SPIFFE id,
  ``spiffe://<federation>/<role>/<id>`` (exactly the string the gRPC boundary reads, so a
  gRPC caller's leaves are byte for byte what they always were);
- a person signed in to the department's web console (a later issue):
  ``department-staff/<department>.<person>``;
- an operator running a command with the key-encryption key on the node's host:
  ``department-operator/<department>.<login>``, the login being the host account's.

The leaf format (childreg/audit/leaf.py) keeps the actor as a plain string; the shapes are
enforced here, where actors are made. An actor never carries personal data beyond the
account name the department itself gave its staff or operator.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Final, Literal

from childreg.errors import InvalidInput, Violation
from childreg.pki import SpiffeId

Kind = Literal["machine", "staff", "operator"]

STAFF_PREFIX: Final = "department-staff/"
OPERATOR_PREFIX: Final = "department-operator/"
#: What a record's history names as the actor of a change made outside the audited
#: service (a test or a tool calling the registry directly); every front door sets one.
UNATTRIBUTED: Final = "unattributed"
_ACTING: ContextVar[str | None] = ContextVar("childreg_acting", default=None)
#: A department id, as the node's configuration spells it (childreg.models.PartyId).
_DEPARTMENT: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
#: A person's or a login's name within the department (the SPIFFE id's name rule).
_NAME: Final = re.compile(r"[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?")


@dataclass(frozen=True)
class Actor:
    """An authenticated actor; ``name`` is what its leaves record as ``actor``.

    Make one with :meth:`machine`, :meth:`staff` or :meth:`operator` (or :meth:`parse` a
    name read back from a leaf); each refuses a malformed name with InvalidInput.
    """

    name: str
    kind: Kind

    def __str__(self) -> str:
        return self.name

    @classmethod
    def machine(cls, spiffe_id: str) -> Actor:
        """A caller over mutual TLS, named by its verified certificate's SPIFFE id."""
        try:
            SpiffeId.parse(spiffe_id)
        except InvalidInput:
            raise InvalidInput(
                "actor is not a childreg SPIFFE id; expected spiffe://<federation>/<role>/<id>",
                [Violation("actor", "malformed SPIFFE id")],
            ) from None
        return cls(spiffe_id, "machine")

    @classmethod
    def staff(cls, department: str, person: str) -> Actor:
        """A department's staff member signed in to the node's web console."""
        return cls(STAFF_PREFIX + _member(department, person, "person", ""), "staff")

    @classmethod
    def operator(cls, department: str, login: str) -> Actor:
        """An operator running a command on the node's host with its key-encryption key."""
        hint = "; run the command from an account so named"
        return cls(OPERATOR_PREFIX + _member(department, login, "login", hint), "operator")

    @classmethod
    def parse(cls, name: str) -> Actor:
        """The actor a leaf's ``actor`` string names (InvalidInput if it is none of them)."""
        for prefix, make in ((STAFF_PREFIX, cls.staff), (OPERATOR_PREFIX, cls.operator)):
            if name.startswith(prefix):
                department, dot, member = name[len(prefix) :].partition(".")
                if not dot:
                    raise _malformed("actor", "must be <department>.<name> after the role")
                return make(department, member)
        return cls.machine(name)


def _member(department: str, member: str, field: str, hint: str) -> str:
    if not _DEPARTMENT.fullmatch(department):
        raise _malformed(
            "department", "must be the node's department id (lowercase letters, digits, _ or -)"
        )
    if not _NAME.fullmatch(member):
        raise _malformed(
            field,
            "must be 1-64 lowercase letters, digits, '.', '_' or '-', starting and ending "
            "with a letter or digit" + hint,
        )
    return f"{department}.{member}"


def _malformed(field: str, problem: str) -> InvalidInput:
    return InvalidInput(f"{field}: {problem}", [Violation(field, problem)])


@contextmanager
def acting_as(actor: Actor) -> Iterator[None]:
    """Within the block, :func:`acting` names ``actor`` (the audited service sets it around
    every action, so a record's history names exactly the actor of the action's leaf)."""
    token = _ACTING.set(actor.name)
    try:
        yield
    finally:
        _ACTING.reset(token)


def acting() -> str:
    """The name of the actor whose action is running, or :data:`UNATTRIBUTED`."""
    return _ACTING.get() or UNATTRIBUTED
