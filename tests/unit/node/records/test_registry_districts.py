"""A node keeps only its own department's children: the registry's district check."""

from __future__ import annotations

import pytest

from childreg.errors import ImportRejected, InvalidInput
from childreg.history import Correction
from node.crypto.keys import Keyring
from node.records.registry import Registry, RowSealer
from node.store.base import RecordStore
from tests.unit.node.records.children import a_child
from tests.unit.node.records.test_registry import a_row

BAKU = ("nasimi", "yasamal")


@pytest.fixture
def baku(store: RecordStore, keyring: Keyring) -> Registry:
    """The registry of a department covering two Baku districts."""
    return Registry(store, keyring, districts=BAKU)


def test_registration_outside_the_districts_is_refused(baku: Registry, store: RecordStore) -> None:
    """Registering a child from Ganja at Baku's node names the field and the district."""
    with pytest.raises(InvalidInput) as caught:
        baku.register_child(a_child("C1", district="ganja"))
    [violation] = caught.value.violations
    assert violation.field == "district"
    assert "ganja" in violation.problem
    assert store.child_count() == 0


def test_registration_inside_the_districts_is_kept(baku: Registry, store: RecordStore) -> None:
    """A child from one of the department's districts is registered."""
    baku.register_child(a_child("C1", district="yasamal"))
    assert store.child_count() == 1


def test_correction_moving_outside_the_districts_is_refused(baku: Registry) -> None:
    """A correction that moves a child to another department's district changes nothing."""
    baku.register_child(a_child("C1", district="nasimi"))
    with pytest.raises(InvalidInput, match="outside") as caught:
        baku.correct_child(
            Correction(child_id="C1", reason="moved", district="ganja", given_name="Leyla")
        )
    assert [(v.field, "ganja" in v.problem) for v in caught.value.violations] == [
        ("district", True)
    ]
    assert baku.get_child("C1").child.district == "nasimi"
    assert baku.get_child("C1").child.given_name == "Aysel"


def test_import_row_outside_the_districts_rejects_the_import(
    baku: Registry, store: RecordStore, keyring: Keyring
) -> None:
    """An import with one out-of-district row, parsed or already sealed, imports nothing and
    names that row's line and district."""
    rows = [a_row(2, "C1"), a_row(3, "C2", district="ganja")]
    sealed = [RowSealer(keyring).row(a_row(4, "C3", district="shusha"))]
    with pytest.raises(ImportRejected) as caught:
        baku.import_records([*rows, *sealed])
    assert [(v.line, v.field) for v in caught.value.violations] == [
        (3, "district"),
        (4, "district"),
    ]
    assert "ganja" in caught.value.violations[0].problem
    assert "shusha" in caught.value.violations[1].problem
    assert store.child_count() == 0


def test_registry_without_districts_takes_any_district(
    store: RecordStore, keyring: Keyring
) -> None:
    """A registry built without a district list (tools, tests) accepts every profile district."""
    Registry(store, keyring).register_child(a_child("C1", district="ganja"))
    assert store.child_count() == 1
