"""What a released table keeps of an erased child, for whoever holds the node's keys.

The privacy ledger keeps each released vector, and the noise of a (catalogue version,
table, snapshot, cell) is deterministic under the node's noise secret (childreg/dp/prng.py).
So the node's keys re-draw the exact noise of a release; a recount after an erasure with
that noise differs from the kept vector exactly in the cells the erased child was counted
in. This test states the property erasure would need and is expected to fail until the
design changes (docs/storage.md, "What it does not reach").
"""

from __future__ import annotations

import pytest

from childreg import codes
from childreg.history import ErasureIn
from node.audit.actor import Actor, acting_as
from node.crypto.keys import Keyring
from node.records.registry import Registry
from node.statistics.desk import per_department_noise
from node.store.base import RecordStore
from tests.unit import secagg_nodes
from tests.unit.node.statistics.test_node_privacy import (
    FEDERATION,
    YEAR,
    import_record,
    question,
    signed,
)
from tools.dev.federation import default_catalogue


@pytest.mark.xfail(
    strict=True,
    reason="design: deterministic noise lets the node's keys denoise a kept release "
    "(docs/storage.md, What it does not reach)",
)
def test_a_kept_release_does_not_show_an_erased_childs_cell(
    store: RecordStore, keyring: Keyring
) -> None:
    """After an erasure, the kept vector minus a recount under the same noise does not
    single out the erased child's education form."""
    registry = Registry(store, keyring)
    registry.import_records([import_record(i) for i in range(30)])
    desk = secagg_nodes.statistics_desk(store, keyring)
    catalogue = default_catalogue(FEDERATION)
    released = desk.answer(question(signed(catalogue)), "coordinator").counts
    with acting_as(Actor.staff("baku", "aysel")):
        registry.erase_child(ErasureIn(child_id="C00007", reason="guardian_request"))
    table = catalogue.table("education_form")
    recount = desk._noisy(catalogue, table, YEAR, per_department_noise(table))
    difference = [a - b for a, b in zip(released, recount, strict=True)]
    erased_cell = 7 % len(codes.EDUCATION_FORMS)  # the table is dense over the code list
    assert difference != [int(cell == erased_cell) for cell in range(len(difference))]
