"""Rotating the node's signing keys (audit checkpoints, extracts, uploads), announced.

Why: the node's three Ed25519 signing keys are derived from its keyring (node/crypto/keys.py)
and pinned elsewhere: auditors and witnesses pin the audit key, schools the extract key, the
roster the upload key. A key that may have leaked, or that policy says to retire, is
replaced by the next generation of its derivation, and the change is announced by a
key-transition statement (childreg/key_transition.py) signed by the old and the new key, so
whoever pinned the old key still verifies old material and follows to the new one.

One rotation is one transaction: the statement (from the size the log has once the
rotation's own ``keys.rotate_signing`` leaf is in) is kept in the store and the leaf naming
the operator is appended; the number of statements of a key is its generation minus one
(:func:`signing_generations`), so a rotation killed anywhere leaves the old key in use
(nothing committed) or the new one (everything committed). After an audit-key rotation the
node signs a checkpoint of the new size with the new key at once. The node must be stopped
(the caller holds the data-directory lock), since a serving node holds its keys in memory.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Final

import structlog
from nacl.signing import SigningKey, VerifyKey

from childreg.audit.checkpoint import childreg_origin
from childreg.audit.leaf import utc_now
from childreg.audit.note import NoteSigner, verifier_key_string
from childreg.errors import InvalidInput, Violation
from childreg.key_transition import WHICH, KeyTransition, key_name, sign_transition
from node.audit.actor import Actor
from node.audit.log import AuditLog
from node.audit.service import Audited
from node.crypto.keys import Keyring
from node.store.base import RecordStore

__all__ = [
    "ROTATE_SIGNING_ACTION",
    "SigningRotation",
    "public_key",
    "rotate_signing_key",
    "signing_generations",
    "transitions_of",
    "with_signing",
]

log = structlog.get_logger("childreg.node.keys")

ROTATE_SIGNING_ACTION: Final = "keys.rotate_signing"


def signing_generations(store: RecordStore) -> dict[str, int]:
    """Each signing key's generation in use: one more than its statements kept."""
    generations = dict.fromkeys(WHICH, 1)
    for which, _ in store.key_transitions():
        generations[which] = generations.get(which, 1) + 1
    return generations


def with_signing(keyring: Keyring, store: RecordStore) -> Keyring:
    """``keyring`` with the signing keys of the generations ``store`` records."""
    return keyring.with_signing(signing_generations(store))


def transitions_of(store: RecordStore, which: str) -> list[str]:
    """The signed statements of the ``which`` key, oldest first."""
    return [note for kind, note in store.key_transitions() if kind == which]


def _seed(keyring: Keyring, which: str, generation: int) -> bytes:
    if which == "audit":
        return keyring.audit_signing_seed(generation)
    if which == "extract":
        return keyring.extract_signing_seed(generation)
    return keyring.upload_signing_seed(generation)


def public_key(keyring: Keyring, which: str, generation: int | None = None) -> bytes:
    """The 32-byte public key of the ``which`` signing key (default: the one in use)."""
    gen = keyring.signing_generation(which) if generation is None else generation
    return bytes(SigningKey(_seed(keyring, which, gen)).verify_key)


@dataclass(frozen=True)
class SigningRotation:
    """What a rotation did (public keys and sizes only)."""

    which: str
    from_generation: int
    to_generation: int
    old_key: str
    new_key: str
    from_size: int
    statement: str

    def to_json(self) -> dict[str, object]:
        """The summary as JSON-ready values (no secret)."""
        return {
            "which": self.which,
            "from_generation": self.from_generation,
            "to_generation": self.to_generation,
            "old_key": self.old_key,
            "new_key": self.new_key,
            "from_size": self.from_size,
            "statement": self.statement,
        }


def _key_text(which: str, name: str, key: bytes) -> str:
    """How the key is pinned: a note verifier key string for the audit key, base64 else."""
    if which == "audit":
        return verifier_key_string(name, VerifyKey(key))
    return base64.b64encode(key).decode()


def rotate_signing_key(
    store: RecordStore,
    keyring: Keyring,
    which: str,
    *,
    federation: str,
    department: str,
    actor: Actor,
) -> SigningRotation:
    """Replace the ``which`` signing key by its next generation and announce it (see the
    module); InvalidInput naming ``which`` if it is not audit, extract or upload."""
    if which not in WHICH:
        raise InvalidInput(
            f"which must be one of {', '.join(WHICH)}", [Violation("which", "unknown key")]
        )
    keyring = with_signing(keyring, store)
    origin = childreg_origin(federation, department)
    name = key_name(which, origin)
    old_gen = keyring.signing_generation(which)
    new_gen = old_gen + 1
    old_signer = NoteSigner(name, SigningKey(_seed(keyring, which, old_gen)))
    new_signer = NoteSigner(name, SigningKey(_seed(keyring, which, new_gen)))
    audit = AuditLog(
        store, keyring.audit_signing_seed(), federation=federation, department=department
    )
    request = json.dumps(
        {"which": which, "from_generation": old_gen, "to_generation": new_gen},
        sort_keys=True,
        separators=(",", ":"),
    ).encode("utf-8")

    def rotate() -> tuple[str, KeyTransition]:
        # The leaf appended with this change takes index = the size now: checkpoints of one
        # more leaf or larger include it and are the new key's.
        statement = KeyTransition(
            which,
            name,
            old_signer.verifier().public_key,
            new_signer.verifier().public_key,
            store.audit_size() + 1,
            utc_now(),
        )
        note = sign_transition(statement, old_signer, new_signer)
        store.add_key_transition(which, note)
        return note, statement

    note, statement = Audited(store, keyring, audit).change(
        actor, ROTATE_SIGNING_ACTION, request, rotate
    )
    if which == "audit":  # the first checkpoint under the new key, at once
        rotated = with_signing(keyring, store)
        AuditLog(
            store, rotated.audit_signing_seed(), federation=federation, department=department
        ).checkpoint()
    log.info("node.signing_key.rotated", which=which, generation=new_gen)
    return SigningRotation(
        which,
        old_gen,
        new_gen,
        _key_text(which, name, statement.old),
        _key_text(which, name, statement.new),
        statement.from_size,
        note,
    )
