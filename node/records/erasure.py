"""Erasing a child's record by crypto-shredding, and telling every read it was erased.

Why its own module: erasure is the one change that takes a record away instead of adding
to it. Every sealed field of a child (identity, assessments, history details, guardians'
names on consents) is sealed under the child's own random data key, which exists only
wrapped under the KEK in the child's row; deleting that row (with SQLite's
``secure_delete`` on, node/store/sqlcipher/erasure.py) destroys the key, so every copy of
those sealed fields, in an old backup or a page not yet overwritten, opens with no key the
node holds. The rest of the child's rows (placements, care settings, the plain
categories, search tokens, history, closing, consents, emergency accesses) are deleted in
the same transaction.

The history's skeleton (kind, time, actor of each step) is deleted too rather than kept:
the audit log already keeps that skeleton under the child's pseudonym, one leaf per step,
and a skeleton without its row would say nothing the log does not. What stays is a
tombstone (pseudonym, when, by whom, a reason code: never free text) and the audit leaves,
so reads answer :class:`~childreg.errors.Erased` and no id can be registered again as the
same child. Tables already released stay as released (the privacy ledger keeps each
released vector); tables computed from then on do not count the child.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final

from childreg.audit.leaf import utc_now
from childreg.errors import AlreadyExists, Erased, KeyProblem, NotFound
from childreg.history import ErasureIn
from node.audit.actor import acting
from node.crypto.keys import Keyring
from node.store.base import RecordStore, StoredChild, StoredErasure

#: What every read of an erased child answers (no data, no date, no reason).
ERASED_MESSAGE: Final = (
    "the child's record was erased: nothing of it is held, only its pseudonym in the audit log"
)
_IDENTITY: Final = "identity"  # node.records.registry.IDENTITY_CONTEXT


@dataclass(frozen=True)
class Erasure:
    """What one erasure did: for the guardian's receipt (node/consent/receipts.py).

    ``guardian`` is the guardian's name as it was recorded (read before the key was
    destroyed; None if none was), for the receipt only, never a log; ``erased`` counts the
    rows removed by kind (``identity``, ``placements``, ``care_settings``, ``assessments``,
    ``history_steps``, ``consents``, ``emergency_accesses``).
    """

    child_id: str
    pseudonym: str  # hex, as the audit log's leaves name the child
    erased_at: str
    actor: str
    reason: str
    guardian: str | None
    erased: dict[str, int]


def absent(store: RecordStore, keyring: Keyring, child_id: str) -> NotFound:
    """The error for a child not held: :class:`Erased` if its pseudonym has a tombstone."""
    if store.erasure_of(keyring.pseudonym(child_id.strip())) is not None:
        return Erased(ERASED_MESSAGE)
    return NotFound("no child with that child_id")


def refuse_erased_id(store: RecordStore, keyring: Keyring, child_id: str) -> None:
    """AlreadyExists if ``child_id`` names an erased child (its id is never used again)."""
    if store.erasure_of(keyring.pseudonym(child_id)) is not None:
        raise AlreadyExists(
            "a child with this child_id was erased; register the child under a new child_id"
        )


class Eraser:
    """Erases children: destroys each one's data key and rows, keeps its tombstone."""

    def __init__(self, store: RecordStore, keyring: Keyring) -> None:
        self._store = store
        self._keys = keyring

    def erase(self, request: ErasureIn) -> Erasure:
        """Erase one child's record now; NotFound if it is not held, Erased if it was erased.

        Inside one ``atomic()`` block (joined by the audited service's, so the erasure and
        its leaf commit together). The actor recorded is the action's (node/audit/actor.py).
        """
        child_id = request.child_id
        store = self._store
        with store.atomic():
            stored = store.get_child(child_id)
            if stored is None:
                raise absent(store, self._keys, child_id)
            identity = self._identity(stored)
            erased = {
                "identity": 1,
                "placements": len(store.placements(child_id)),
                "care_settings": len(store.care_settings(child_id)),
                "assessments": len(store.assessments(child_id)),
                "history_steps": len(store.events(child_id)),
                "consents": len(store.consents_of(child_id)),
                "emergency_accesses": len(store.breakglass_of(child_id)),
            }
            pseudonym = self._keys.pseudonym(child_id)
            tombstone = StoredErasure(pseudonym, utc_now(), acting(), request.reason)
            store.erase_child(child_id, tombstone)
        return Erasure(
            child_id=child_id,
            pseudonym=pseudonym.hex(),
            erased_at=tombstone.erased_at,
            actor=tombstone.actor,
            reason=tombstone.reason,
            guardian=identity.get("guardian_name"),
            erased=erased,
        )

    def _identity(self, stored: StoredChild) -> dict[str, str | None]:
        """The child's identity fields for the receipt; empty if its key or identity does not
        open (a damaged row is erased all the same)."""
        cid = stored.child_id
        try:
            key = self._keys.child_key(cid, stored.key_version, stored.wrapped_key)
            plain = self._keys.unseal(key, cid, _IDENTITY, stored.sealed_identity)
        except KeyProblem:
            return {}
        fields: dict[str, str | None] = json.loads(plain)
        return fields
