"""A witness: cosign a node's audit-log checkpoint only if it extends the one already held.

Why: a node could otherwise rewrite its own log (an insider edits a past leaf) or show
different logs to different people (two roots for one size, "equivocation"). A witness —
the coordinator, or an independent body running ``childreg audit witness serve`` — keeps
the latest checkpoint of every node it trusts, cosigns a newer one only after checking an
RFC 9162 consistency proof from the one it holds, and keeps both signed notes as evidence
when the node contradicts itself. Its cosignatures are C2SP ``tlog-cosignature/v1`` lines
(timestamped), so standard verifiers can check them. A checkpoint cosigned by witnesses
the auditor trusts can then be relied upon offline (docs/witness.md).

After the node rotates its log key it sends its key-transition statements
(childreg/key_transition.py): the witness follows them, and those it followed before, from
the pinned key to the key of the checkpoint's size, remembers them in its store, and
refuses a rival statement from a key it already followed.

The rules, per origin, against the latest checkpoint held (``held``):

- none held: the request must say ``old_size == 0`` with an empty proof. A proof from the
  empty tree proves nothing, so first contact is trust on first use: the witness learns
  the log as the node presents it then, and holds the node to it from that moment on.
- same size and root as held: an idempotent repeat, cosigned again (nothing is stored).
- same size, another root: EQUIVOCATION — evidence kept, alert logged, refused.
- smaller size: ROLLBACK — evidence kept, alert logged, refused.
- bigger size: ``old_size`` must be the held size (else FailedPrecondition naming it,
  nothing kept) and the proof must verify from the held root (else INCONSISTENT evidence
  kept, alert logged, refused).

Everything is decided and written under one lock in one ``BEGIN IMMEDIATE`` transaction of
the witness's store (:mod:`witness.store`), committed with ``synchronous=FULL`` before the
cosigned note is returned, so an answer the node got is never forgotten after a crash, and
concurrent calls (or processes) are serialised. This module decides; it touches no file and
no network itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import structlog
from nacl.signing import VerifyKey

from childreg.audit.checkpoint import MAX_TREE_SIZE, Checkpoint, open_checkpoint
from childreg.audit.leaf import utc_now
from childreg.audit.merkle import EMPTY_ROOT, HASH_SIZE, verify_consistency
from childreg.audit.note import NoteSigner, NoteVerifier, add_cosignature, note_text
from childreg.errors import (
    ChildregError,
    FailedPrecondition,
    InvalidInput,
    PermissionDenied,
    Violation,
)
from childreg.key_transition import KeyTransition, follow, key_for_size
from witness.store import EQUIVOCATION, INCONSISTENT, ROLLBACK, Evidence, Held, Kind, WitnessStore

log = structlog.get_logger("childreg.witness")

MAX_NOTE_BYTES: Final = 64 * 1024
"""Largest checkpoint note a witness accepts (a checkpoint with 100 cosignatures is ~15 KiB)."""
MAX_PROOF_HASHES: Final = 64
"""Most hashes in a consistency proof (a tree of up to 2^64 leaves needs fewer)."""
MAX_ORIGIN_CHARS: Final = 1024
MAX_TRANSITIONS: Final = 100
"""Most key-transition statements a request may carry (childreg/key_transition.py)."""


def _invalid(field: str, problem: str) -> InvalidInput:
    return InvalidInput(f"witness request: {field}: {problem}", [Violation(field, problem)])


def check_request(note: str, old_size: int, proof: Sequence[bytes]) -> tuple[bytes, ...]:
    """Refuse a request whose fields are out of bounds (InvalidInput naming the field)."""
    if not isinstance(note, str) or not note:
        raise _invalid("note", "a signed checkpoint note is required")
    if len(note) > MAX_NOTE_BYTES or len(note.encode("utf-8", "replace")) > MAX_NOTE_BYTES:
        raise _invalid("note", f"larger than {MAX_NOTE_BYTES} bytes")
    if not isinstance(old_size, int) or not 0 <= old_size <= MAX_TREE_SIZE:
        raise _invalid("old_size", f"must be between 0 and {MAX_TREE_SIZE}")
    hashes = tuple(proof)
    if len(hashes) > MAX_PROOF_HASHES:
        raise _invalid("consistency", f"at most {MAX_PROOF_HASHES} hashes, not {len(hashes)}")
    for i, h in enumerate(hashes):
        if not isinstance(h, bytes) or len(h) != HASH_SIZE:
            raise _invalid("consistency", f"hash {i} is not {HASH_SIZE} bytes")
    return hashes


def check_origin(origin: str) -> str:
    """Refuse an empty or oversized origin in a state query (InvalidInput naming it)."""
    if not isinstance(origin, str) or not origin:
        raise _invalid("origin", "an origin is required")
    if len(origin) > MAX_ORIGIN_CHARS:
        raise _invalid("origin", f"longer than {MAX_ORIGIN_CHARS} characters")
    return origin


@dataclass(frozen=True)
class _Verdict:
    action: Literal["store", "repeat", "refuse", "evidence"]
    error: ChildregError | None = None
    kind: Kind | None = None


def _refuse(message: str) -> _Verdict:
    return _Verdict("refuse", FailedPrecondition(message))


def _evidence(kind: Kind, message: str) -> _Verdict:
    return _Verdict("evidence", FailedPrecondition(message), kind)


def _first_contact(new: Checkpoint, old_size: int, proof: Sequence[bytes]) -> _Verdict:
    """Trust on first use: accept the log as presented, from the empty tree."""
    if old_size != 0:
        return _refuse(
            f"this witness holds no checkpoint of {new.origin} (size 0); "
            "send old_size 0 and an empty consistency proof"
        )
    if not verify_consistency(0, new.size, EMPTY_ROOT, new.root, proof):
        return _refuse(
            "a proof from the empty tree is empty, and a checkpoint of size 0 has the "
            "empty tree's root"
        )
    return _Verdict("store")


def _judge(held: Held | None, new: Checkpoint, old_size: int, proof: Sequence[bytes]) -> _Verdict:
    """What to do with ``new`` given what is held (pure: no storage, no signing)."""
    if held is None:
        return _first_contact(new, old_size, proof)
    origin = new.origin
    verdict = _Verdict("store")
    if new.size == held.size:
        verdict = (
            _Verdict("repeat")
            if new.root == held.root
            else _evidence(
                EQUIVOCATION,
                f"this witness holds another root for size {new.size} of {origin}: the log "
                "equivocates; both signed checkpoints are kept as evidence",
            )
        )
    elif new.size < held.size:
        verdict = _evidence(
            ROLLBACK,
            f"this witness holds size {held.size} of {origin}, newer than {new.size}: a log "
            "never shrinks; both signed checkpoints are kept as evidence",
        )
    elif old_size != held.size:
        verdict = _refuse(
            f"old_size is {old_size} but this witness holds size {held.size} of {origin}; "
            f"send a consistency proof from size {held.size}"
        )
    elif not verify_consistency(held.size, new.size, held.root, new.root, proof):
        verdict = _evidence(
            INCONSISTENT,
            f"the consistency proof from size {held.size} to {new.size} of {origin} does not "
            "verify; both signed checkpoints and the proof are kept as evidence",
        )
    return verdict


class Witness:
    """Cosigns the checkpoints of the logs it trusts, holding each to its own history."""

    def __init__(
        self,
        store: WitnessStore,
        signer: NoteSigner,
        trusted: Mapping[str, NoteVerifier],
        *,
        clock: Callable[[], str] = utc_now,
        seconds: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._signer = signer
        self._trusted = dict(trusted)
        self._clock = clock
        self._seconds = seconds

    def _cosign(self, note: str) -> str:
        """``note`` with this witness's C2SP ``cosignature/v1`` (timestamped now) added."""
        return add_cosignature(note, self._signer, timestamp=int(self._seconds()))

    @property
    def verifier(self) -> NoteVerifier:
        """The witness's public key, for auditors and nodes to pin."""
        return self._signer.verifier()

    def _open(
        self, note: str, transitions: Sequence[str] = ()
    ) -> tuple[Checkpoint, list[tuple[bytes, str]]]:
        """The checkpoint, verified with the key that signs its size — its origin's pinned
        key, or the one the key-transition statements (those followed before, and the
        node's) lead to from it — and the statements followed, as (old key, note).
        PermissionDenied if none, if a statement does not verify, or if it rivals one
        followed before."""
        unverified = Checkpoint.parse(note_text(note))
        origin = unverified.origin
        verifier = self._trusted.get(origin)
        if verifier is None:
            shown = origin if len(origin) <= 100 else origin[:97] + "..."
            raise PermissionDenied(f"this witness does not witness the log {shown}")
        if len(transitions) > MAX_TRANSITIONS:
            raise _invalid("key_transitions", f"at most {MAX_TRANSITIONS} statements")
        known = self._store.transitions(origin)
        followed: list[tuple[bytes, str]] = []
        if transitions or known:
            notes = [*known, *transitions]
            try:
                chain = follow(verifier.public_key, notes, "audit", origin)
            except PermissionDenied:
                log.warning("witness.rival_key_transition", origin=origin)
                raise
            key = key_for_size(verifier.public_key, chain, unverified.size)
            texts = {KeyTransition.parse(note_text(n)).to_text(): n for n in reversed(notes)}
            followed = [(t.old, texts[t.to_text()]) for t in chain]
            if key != verifier.public_key:
                verifier = NoteVerifier(origin, VerifyKey(key))
        checkpoint, _ = open_checkpoint(note, verifier, origin=origin)
        return checkpoint, followed

    def add_checkpoint(
        self, note: str, old_size: int, proof: Sequence[bytes], transitions: Sequence[str] = ()
    ) -> str:
        """The node's checkpoint cosigned by this witness, once stored; or a refusal.

        ``transitions`` are the node's log-key transition statements: a checkpoint signed
        by a later key of the node verifies through them from the pinned key. Raises
        InvalidInput (bad fields or format), PermissionDenied (unknown origin, or not signed
        by its pinned key or its successor) or FailedPrecondition (see the module docstring).
        """
        hashes = check_request(note, old_size, proof)
        new, followed = self._open(note, transitions)
        kept: tuple[int, bool] | None = None
        with self._store.transaction():
            if followed:  # remembered, so a rival statement later is refused (_open)
                # Again inside the transaction: a concurrent call may have remembered one.
                pinned = self._trusted[new.origin].public_key
                known = self._store.transitions(new.origin)
                follow(pinned, [*known, *(n for _, n in followed)], "audit", new.origin)
                self._store.add_transitions(new.origin, followed, self._clock())
            held = self._store.latest(new.origin)
            verdict = _judge(held, new, old_size, hashes)
            if verdict.action == "store":
                cosigned = self._cosign(note)
                self._store.put_latest(
                    Held(new.origin, new.size, new.root, cosigned), self._clock()
                )
            elif held is not None and verdict.kind is not None:
                submitted = Held(new.origin, new.size, new.root, note)
                kept = self._store.add_evidence(
                    verdict.kind, held, submitted, hashes, self._clock()
                )
        if held is not None and verdict.kind is not None and kept is not None:
            self._alert(verdict.kind, held, new, kept[0], repeated=not kept[1])
        if verdict.action == "store":
            log.info("witness.cosigned", origin=new.origin, size=new.size, old_size=old_size)
            return cosigned
        if verdict.action == "repeat":
            return self._cosign(note)
        assert verdict.error is not None
        raise verdict.error

    @staticmethod
    def _alert(kind: Kind, held: Held, new: Checkpoint, seq: int, *, repeated: bool) -> None:
        """The operator's alarm: which log, which sizes, where the evidence is (no leaf data)."""
        log.warning(
            f"witness.{kind}",
            origin=new.origin,
            held_size=held.size,
            submitted_size=new.size,
            evidence=seq,
            repeated=repeated,
        )

    def state(self, origin: str) -> str | None:
        """The latest (cosigned) checkpoint note held for ``origin``, if any."""
        held = self._store.latest(origin)
        return None if held is None else held.note

    def evidence(self, origin: str | None = None) -> list[Evidence]:
        """Every contradiction kept, oldest first."""
        return self._store.evidence(origin)

    def close(self) -> None:
        """Close the witness's store (on shutdown)."""
        self._store.close()
