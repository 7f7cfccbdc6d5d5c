"""The witness: cosigns only consistent growth, keeps evidence of equivocation and rollback."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs
from typer.testing import CliRunner

from childreg.audit.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from childreg.audit.merkle import EMPTY_ROOT, MerkleTree
from childreg.audit.note import NoteSigner, generate_signer
from childreg.config import load_config
from childreg.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidInput,
    KeyProblem,
    NotFound,
    PermissionDenied,
)
from tools.cli.witness import app as witness_cli
from witness.config import (
    WitnessConfig,
    WitnessedNode,
    generate_witness_key,
    load_witness_signer,
)
from witness.cosigning import (
    MAX_NOTE_BYTES,
    MAX_PROOF_HASHES,
    Held,
    Witness,
    WitnessStore,
    check_request,
)

ORIGIN = "childreg.test.childreg/alpha"
OTHER = "childreg.test.childreg/beta"
ROOT = Path(__file__).resolve().parents[2]


def signer(name: str) -> NoteSigner:
    """A fresh Ed25519 note signer under ``name``."""
    return NoteSigner.from_key_string(generate_signer(name)[0])


NODE = signer(ORIGIN)
WITNESS = signer("witness.test-ombudsman")


def grown(prefix: bytes, size: int) -> MerkleTree:
    """A log of ``size`` leaves, each ``prefix`` and its number."""
    tree = MerkleTree()
    for i in range(size):
        tree.append(prefix + b"-%d" % i)
    return tree


def note_at(tree: MerkleTree, size: int, by: NoteSigner = NODE, origin: str = ORIGIN) -> str:
    """The tree's checkpoint at ``size``, signed by ``by``."""
    return sign_checkpoint(Checkpoint(origin, size, tree.root(size)), by)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[WitnessStore]:
    """A fresh witness database per test."""
    s = WitnessStore(tmp_path / "state" / "witness.db")
    yield s
    s.close()


@pytest.fixture
def witness(store: WitnessStore) -> Witness:
    """A witness of the one node ORIGIN."""
    return Witness(store, WITNESS, {ORIGIN: NODE.verifier()})


LOG = grown(b"honest", 20)
FORK = grown(b"forked", 20)  # another history: different roots at every size


def test_first_contact_then_consistent_growth_is_cosigned(witness: Witness) -> None:
    """From the empty tree, then with a consistency proof, the checkpoint is cosigned and held."""
    first = witness.add_checkpoint(note_at(LOG, 3), 0, [])
    second = witness.add_checkpoint(note_at(LOG, 11), 3, LOG.consistency_proof(3, 11))
    cp, opened = open_checkpoint(second, [NODE.verifier(), WITNESS.verifier()], origin=ORIGIN)
    assert (cp.size, cp.root) == (11, LOG.root(11))
    assert opened.verified_by == [ORIGIN, WITNESS.name]
    assert open_checkpoint(first, WITNESS.verifier())[0].size == 3
    assert witness.state(ORIGIN) == second
    assert witness.state(OTHER) is None
    assert witness.evidence() == []


def test_an_idempotent_repeat_is_cosigned_again(witness: Witness) -> None:
    """The same checkpoint again returns the same cosigned note and keeps no evidence."""
    note = note_at(LOG, 5)
    first = witness.add_checkpoint(note, 0, [])
    assert witness.add_checkpoint(note, 0, []) == first
    assert witness.add_checkpoint(note, 5, []) == first
    assert witness.evidence() == []


def test_equivocation_is_refused_with_both_notes_kept(witness: Witness) -> None:
    """Two roots for one size: refused, both signed notes kept, an alert without leaf data."""
    witness.add_checkpoint(note_at(LOG, 6), 0, [])
    held = witness.state(ORIGIN)
    forked = note_at(FORK, 6)
    with capture_logs() as logs, pytest.raises(FailedPrecondition, match="equivocates"):
        witness.add_checkpoint(forked, 6, [])
    [ev] = witness.evidence()
    assert (ev.kind, ev.origin, ev.held_size, ev.submitted_size) == ("equivocation", ORIGIN, 6, 6)
    assert ev.held_note == held
    assert ev.submitted_note == forked
    roots = {open_checkpoint(n, NODE.verifier())[0].root for n in (ev.held_note, ev.submitted_note)}
    assert roots == {LOG.root(6), FORK.root(6)}  # both verify under the node's own key
    [alert] = [e for e in logs if e["event"] == "witness.equivocation"]
    assert alert["log_level"] == "warning"
    assert (alert["origin"], alert["held_size"], alert["submitted_size"]) == (ORIGIN, 6, 6)
    assert "honest" not in repr(logs)
    assert "forked" not in repr(logs)
    assert witness.state(ORIGIN) == held


def test_rollback_is_refused_with_both_notes_kept(witness: Witness) -> None:
    """A smaller size after a bigger one: refused and kept as evidence; the held one stays."""
    witness.add_checkpoint(note_at(LOG, 9), 0, [])
    held = witness.state(ORIGIN)
    with capture_logs() as logs, pytest.raises(FailedPrecondition, match="never shrinks"):
        witness.add_checkpoint(note_at(LOG, 4), 0, [])
    [ev] = witness.evidence()
    assert (ev.kind, ev.held_size, ev.submitted_size) == ("rollback", 9, 4)
    assert ev.submitted_note == note_at(LOG, 4)
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["witness.rollback"]
    assert witness.state(ORIGIN) == held


def test_a_wrong_proof_is_refused_and_kept(witness: Witness) -> None:
    """A proof that does not lead from the held root is refused; notes and proof are kept."""
    witness.add_checkpoint(note_at(LOG, 3), 0, [])
    bad = [bytes([p[0] ^ 1]) + p[1:] for p in LOG.consistency_proof(3, 8)]
    with pytest.raises(FailedPrecondition, match="does not verify"):
        witness.add_checkpoint(note_at(LOG, 8), 3, bad)
    with pytest.raises(FailedPrecondition, match="does not verify"):  # a rewritten history
        witness.add_checkpoint(note_at(FORK, 8), 3, FORK.consistency_proof(3, 8))
    kinds = [(e.kind, e.held_size, e.submitted_size) for e in witness.evidence()]
    assert kinds == [("inconsistent", 3, 8), ("inconsistent", 3, 8)]
    assert list(witness.evidence()[0].proof) == bad
    assert open_checkpoint(witness.state(ORIGIN) or "", NODE.verifier())[0].size == 3


def test_a_stale_old_size_is_refused_naming_the_held_size(witness: Witness) -> None:
    """old_size other than the held size: FailedPrecondition telling it, and no evidence."""
    witness.add_checkpoint(note_at(LOG, 5), 0, [])
    with pytest.raises(FailedPrecondition, match="holds size 5"):
        witness.add_checkpoint(note_at(LOG, 9), 3, LOG.consistency_proof(3, 9))
    assert witness.evidence() == []
    witness.add_checkpoint(note_at(LOG, 9), 5, LOG.consistency_proof(5, 9))


def test_first_contact_needs_old_size_zero_and_an_empty_proof(witness: Witness) -> None:
    """Holding nothing, the witness accepts a checkpoint only as growth from the empty tree."""
    with pytest.raises(FailedPrecondition, match="holds no checkpoint"):
        witness.add_checkpoint(note_at(LOG, 4), 2, LOG.consistency_proof(2, 4))
    with pytest.raises(FailedPrecondition, match="empty"):
        witness.add_checkpoint(note_at(LOG, 4), 0, [LOG.root(2)])
    bogus = sign_checkpoint(Checkpoint(ORIGIN, 0, LOG.root(1)), NODE)
    with pytest.raises(FailedPrecondition, match="empty tree's root"):
        witness.add_checkpoint(bogus, 0, [])
    empty = sign_checkpoint(Checkpoint(ORIGIN, 0, EMPTY_ROOT), NODE)
    witness.add_checkpoint(empty, 0, [])
    witness.add_checkpoint(note_at(LOG, 4), 0, [])  # growth from the empty tree needs no proof
    assert witness.evidence() == []


def test_unknown_origins_and_foreign_keys_are_refused(witness: Witness) -> None:
    """An origin not pinned, or a note not signed by the origin's pinned key, is refused."""
    with pytest.raises(PermissionDenied, match="does not witness"):
        witness.add_checkpoint(note_at(LOG, 2, by=signer(OTHER), origin=OTHER), 0, [])
    with pytest.raises(PermissionDenied):
        witness.add_checkpoint(note_at(LOG, 2, by=signer(ORIGIN)), 0, [])  # same name, other key
    with pytest.raises(PermissionDenied):
        witness.add_checkpoint(note_at(LOG, 2, by=WITNESS), 0, [])
    with pytest.raises(InvalidInput):
        witness.add_checkpoint("not a note\n", 0, [])
    assert witness.state(ORIGIN) is None
    assert witness.evidence() == []


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


def test_concurrent_submissions_are_serialised(witness: Witness) -> None:
    """Many threads submitting the same growth all get the same cosignature, no evidence."""
    witness.add_checkpoint(note_at(LOG, 2), 0, [])
    note, proof = note_at(LOG, 16), LOG.consistency_proof(2, 16)
    results: list[str] = []

    def submit() -> None:
        results.append(witness.add_checkpoint(note, 2, proof))

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8
    assert len(set(results)) == 1
    assert witness.evidence() == []


@pytest.mark.parametrize(
    ("note", "old_size", "proof", "field"),
    [
        ("", 0, [], "note"),
        ("x" * (MAX_NOTE_BYTES + 1), 0, [], "note"),
        ("n", -1, [], "old_size"),
        ("n", 1 << 64, [], "old_size"),
        ("n", 0, [b"\x00" * 31], "consistency"),
        ("n", 0, [b"\x00" * 32] * (MAX_PROOF_HASHES + 1), "consistency"),
    ],
)
def test_request_fields_are_bounded(
    note: str, old_size: int, proof: list[bytes], field: str
) -> None:
    """Oversized notes, impossible sizes and malformed proofs are refused, naming the field."""
    with pytest.raises(InvalidInput) as caught:
        check_request(note, old_size, proof)
    assert [v.field for v in caught.value.violations] == [field]


def test_witness_key_file_is_private_and_never_overwritten(tmp_path: Path) -> None:
    """keygen writes 0600 and refuses to replace a key; loading checks mode and name."""
    path = tmp_path / "witness.key"
    verifier = generate_witness_key(path, "witness.test")
    assert os.stat(path).st_mode & 0o777 == 0o600
    signer_ = load_witness_signer(path, "witness.test")
    assert signer_.verifier().key_string() == verifier
    with pytest.raises(AlreadyExists):
        generate_witness_key(path, "witness.test")
    with pytest.raises(KeyProblem, match="named"):
        load_witness_signer(path, "witness.other")
    path.chmod(0o644)
    with pytest.raises(KeyProblem, match="other users"):
        load_witness_signer(path, "witness.test")
    with pytest.raises(KeyProblem):
        load_witness_signer(tmp_path / "absent.key", "witness.test")


def test_pinned_node_keys_are_checked() -> None:
    """A node's pinned key must parse and be named after its origin; origins are childreg's."""
    WitnessedNode(origin=ORIGIN, verifier_key=NODE.verifier().key_string())
    with pytest.raises(ValueError, match="named"):
        WitnessedNode(origin=OTHER, verifier_key=NODE.verifier().key_string())
    with pytest.raises(ValueError, match="verifier_key"):
        WitnessedNode(origin=ORIGIN, verifier_key="nonsense")
    with pytest.raises(ValueError, match="origin"):
        WitnessedNode(origin="alpha", verifier_key=signer("alpha").verifier().key_string())


def test_example_config_is_valid() -> None:
    """deploy/config/witness.example.toml validates."""
    cfg = load_config(WitnessConfig, ROOT / "deploy" / "config" / "witness.example.toml")
    assert cfg.name == "witness.az-ombudsman"
    assert [n.origin for n in cfg.nodes] == [
        "childreg.az.childreg/baku",
        "childreg.az.childreg/nakhchivan",
    ]
    assert cfg.db_path.name == "witness.db"


def test_cli_keygen_and_evidence(tmp_path: Path) -> None:
    """`keygen` prints the verifier key; `evidence --json` lists what the store kept."""
    runner = CliRunner()
    key = tmp_path / "w.key"
    result = runner.invoke(witness_cli, ["keygen", "--out", str(key), "--name", "witness.cli"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == load_witness_signer(key, "witness.cli").verifier().key_string()

    config = tmp_path / "witness.toml"
    config.write_text(
        f'name = "witness.cli"\nsigning_key_file = "w.key"\nstate_dir = "state"\n'
        f'identity_dir = "id"\ndenylist_file = "deny.json"\n'
        f'statistics_authority_key = "authority.pub"\n'
        f'[[nodes]]\norigin = "{ORIGIN}"\nverifier_key = "{NODE.verifier().key_string()}"\n',
        encoding="utf-8",
    )
    store = WitnessStore(tmp_path / "state" / "witness.db")
    w = Witness(store, load_witness_signer(key, "witness.cli"), {ORIGIN: NODE.verifier()})
    w.add_checkpoint(note_at(LOG, 3), 0, [])
    with pytest.raises(FailedPrecondition):
        w.add_checkpoint(note_at(FORK, 3), 3, [])
    store.close()
    result = runner.invoke(witness_cli, ["evidence", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    [item] = json.loads(result.stdout)
    assert (item["kind"], item["origin"], item["submitted_note"]) == (
        "equivocation",
        ORIGIN,
        note_at(FORK, 3),
    )
    table = runner.invoke(witness_cli, ["evidence", "--config", str(config)])
    assert table.exit_code == 0, table.output
    assert "equivocation" in table.stdout
