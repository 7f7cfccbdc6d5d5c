"""The witness's store: what it holds and keeps survives reopening; evidence is append-only."""

from __future__ import annotations

from pathlib import Path

import pytest

from childreg.errors import FailedPrecondition, NotFound
from tests.unit.witness.logs import FORK, LOG, NODE, ORIGIN, WITNESS, note_at
from witness.cosigning import Witness
from witness.store import Held, WitnessStore


def test_state_and_evidence_survive_reopening(tmp_path: Path) -> None:
    """What was held and kept is there after a restart; a repeated contradiction is kept once."""
    path = tmp_path / "witness.db"
    store = WitnessStore(path)
    w = Witness(store, WITNESS, {ORIGIN: NODE.verifier()})
    w.add_checkpoint(note_at(LOG, 7), 0, [])
    held = w.state(ORIGIN)
    with pytest.raises(FailedPrecondition):
        w.add_checkpoint(note_at(FORK, 7), 7, [])
    store.close()

    store = WitnessStore(path)
    w = Witness(store, WITNESS, {ORIGIN: NODE.verifier()})
    assert w.state(ORIGIN) == held
    with pytest.raises(FailedPrecondition):
        w.add_checkpoint(note_at(FORK, 7), 7, [])
    assert [e.kind for e in w.evidence()] == ["equivocation"]
    w.add_checkpoint(note_at(LOG, 12), 7, LOG.consistency_proof(7, 12))
    assert store.origins() == [ORIGIN]
    store.close()
    readonly = WitnessStore(path, readonly=True)
    assert [e.kind for e in readonly.evidence(ORIGIN)] == ["equivocation"]
    assert readonly.latest(ORIGIN) is not None
    readonly.close()
    with pytest.raises(NotFound):
        WitnessStore(tmp_path / "missing.db", readonly=True)


def test_evidence_is_append_only(store: WitnessStore) -> None:
    """The database itself refuses to change or delete evidence."""
    held = Held(ORIGIN, 2, LOG.root(2), note_at(LOG, 2))
    store.add_evidence("rollback", held, Held(ORIGIN, 1, LOG.root(1), note_at(LOG, 1)), [], "t")
    conn = store._conn
    for sql in ("UPDATE evidence SET kind = 'rollback'", "DELETE FROM evidence"):
        with pytest.raises(Exception, match="append-only"):
            conn.execute(sql)
    assert len(store.evidence()) == 1


def test_sizes_beyond_sqlite_integers_are_kept_exactly(store: WitnessStore) -> None:
    """Tree sizes are unsigned 64-bit; the store keeps them exactly."""
    size = (1 << 64) - 1
    store.put_latest(Held(ORIGIN, size, LOG.root(1), "n"), "t")
    assert (store.latest(ORIGIN) or Held("", 0, b"", "")).size == size
