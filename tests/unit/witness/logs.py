"""Node logs for the witness's unit tests: signers, Merkle trees and signed checkpoints.

Why this module exists: the tests of the cosigning decision, the store, the configuration
and the composition root all need the same node (its log key named after its origin), the
same witness key and the same two histories of one log (an honest one and a fork).
"""

from __future__ import annotations

from childreg.audit.checkpoint import Checkpoint, sign_checkpoint
from childreg.audit.merkle import MerkleTree
from childreg.audit.note import NoteSigner, generate_signer

ORIGIN = "childreg.test.childreg/alpha"
OTHER = "childreg.test.childreg/beta"


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


LOG = grown(b"honest", 20)
FORK = grown(b"forked", 20)  # another history: different roots at every size
