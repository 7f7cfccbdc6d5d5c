"""The actor a leaf names (node/audit/actor.py): three shapes, each checked where it is made."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from childreg.errors import InvalidInput
from node.audit.actor import Actor

SPIFFE = "spiffe://az.childreg/department-staff/baku.registrar-1"


def test_a_machine_actor_is_exactly_the_spiffe_id() -> None:
    """A SPIFFE id is kept byte for byte as the actor's name (the leaves of gRPC callers
    are unchanged)."""
    actor = Actor.machine(SPIFFE)
    assert (actor.name, actor.kind, str(actor)) == (SPIFFE, "machine", SPIFFE)


def test_staff_and_operator_actors_are_named_after_their_department() -> None:
    """A console person is department-staff/<dept>.<person>; an operator is
    department-operator/<dept>.<login>."""
    assert Actor.staff("baku", "registrar-1").name == "department-staff/baku.registrar-1"
    assert Actor.operator("baku", "ops.admin").name == "department-operator/baku.ops.admin"
    assert Actor.operator("baku", "ops").kind == "operator"


@pytest.mark.parametrize(
    "name",
    [SPIFFE, "spiffe://az.childreg/node/baku", "department-staff/baku.r1",
     "department-operator/baku.ops_1"],
)  # fmt: skip
def test_parse_gives_back_the_actor_a_name_was_made_from(name: str) -> None:
    """Every valid name parses to an actor of the same name."""
    assert Actor.parse(name).name == name


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: Actor.machine("-"), "actor"),
        (lambda: Actor.machine("spiffe://az.childreg/janitor/x"), "actor"),
        (lambda: Actor.machine("spiffe://az.childreg/school/S1"), "actor"),
        (lambda: Actor.staff("Baku", "r1"), "department"),
        (lambda: Actor.staff("baku.x", "r1"), "department"),
        (lambda: Actor.staff("baku", ""), "person"),
        (lambda: Actor.operator("baku", "Root User"), "login"),
        (lambda: Actor.operator("baku", "ops-"), "login"),
        (lambda: Actor.operator("baku", "a" * 65), "login"),
        (lambda: Actor.parse("department-operator/baku"), "actor"),
    ],
)
def test_malformed_actors_are_refused_naming_the_field(
    make: Callable[[], Actor], field: str
) -> None:
    """A malformed SPIFFE id, department, person or login is InvalidInput on that field."""
    with pytest.raises(InvalidInput) as refused:
        make()
    assert [v.field for v in refused.value.violations] == [field]
