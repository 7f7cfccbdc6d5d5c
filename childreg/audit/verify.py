"""What an auditor concludes from a node's signed checkpoint and its leaves, with no network.

Why: "the log verifies" must mean the same thing in every tool — the auditor's CLI, the
evidence bundle checked years later, tests — so the whole judgement lives here, pure: given
a checkpoint note, the leaf bytes, the node's pinned verifier key and, optionally, the
checkpoint verified last time with a consistency proof, it returns a
:class:`VerificationReport` naming every problem found. Nothing served by the node is
trusted: the checkpoint's signature and origin are checked first, the leaf hashes and the
root are recomputed from the leaf bytes, every leaf must be a canonical ``AuditEvent``
whose ``seq`` is its index, and the new checkpoint must extend the old one (RFC 9162
consistency), else the log was rewritten.

An evidence bundle (:func:`make_bundle`, :func:`verify_bundle`) is one JSON object holding
everything needed to repeat the verification offline: the checkpoint note, every leaf in
base64, the key it was verified with, optional inclusion proofs for single leaves, and
optional other signed checkpoints of the same log (the one verified before, those the
witnesses cosigned) each with the RFC 9162 consistency proof between it and the bundle's.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from childreg.audit import merkle
from childreg.audit.checkpoint import (
    Checkpoint,
    CheckpointOriginMismatch,
    open_checkpoint,
    parse_childreg_origin,
)
from childreg.audit.leaf import AuditEvent
from childreg.audit.note import NoteVerifier, UnverifiedNote
from childreg.errors import ChildregError, InvalidInput
from childreg.key_transition import LogKeys

BUNDLE_FORMAT: Final = "childreg-audit-bundle/1"

# Problem codes (stable: scripts read them from the JSON report).
BAD_SIGNATURE: Final = "bad-signature"
WRONG_ORIGIN: Final = "wrong-origin"
MALFORMED_CHECKPOINT: Final = "malformed-checkpoint"
SIZE_MISMATCH: Final = "size-mismatch"
ROOT_MISMATCH: Final = "root-mismatch"
BAD_LEAF: Final = "bad-leaf"
SEQ_MISMATCH: Final = "seq-mismatch"
NODE_MISMATCH: Final = "node-mismatch"
BAD_PREVIOUS: Final = "bad-previous"
LOG_REWRITTEN: Final = "log-rewritten"
MALFORMED_BUNDLE: Final = "malformed-bundle"
KEY_MISMATCH: Final = "key-mismatch"
BAD_INCLUSION: Final = "bad-inclusion-proof"
BAD_CONSISTENCY: Final = "bad-consistency-proof"

#: Leaf indices named in one problem's message (the count is always given).
SHOWN_INDICES: Final = 10


@dataclass(frozen=True)
class Problem:
    """One reason a log does not verify: a stable ``code`` and a message for a person."""

    code: str
    message: str


@dataclass(frozen=True)
class VerificationReport:
    """The verdict on one log: ``ok`` only when no problem was found.

    ``size`` and ``root`` are those of the signed checkpoint (None when it did not open);
    ``events`` are the leaves that parsed, in order (meaningful only when ``ok``).
    """

    origin: str
    size: int | None
    root: bytes | None
    problems: tuple[Problem, ...] = ()
    previous_size: int | None = None
    events: tuple[AuditEvent, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether everything verified."""
        return not self.problems

    @property
    def rewritten(self) -> bool:
        """Whether the log contradicts the checkpoint verified before (evidence to keep)."""
        return any(p.code == LOG_REWRITTEN for p in self.problems)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (no leaf contents)."""
        return {
            "ok": self.ok,
            "origin": self.origin,
            "size": self.size,
            "root": None if self.root is None else base64.b64encode(self.root).decode("ascii"),
            "previous_size": self.previous_size,
            "rewritten": self.rewritten,
            "problems": [{"code": p.code, "message": p.message} for p in self.problems],
        }


def _indices(found: list[int]) -> str:
    shown = ", ".join(str(i) for i in found[:SHOWN_INDICES])
    more = f" … ({len(found)} in all)" if len(found) > SHOWN_INDICES else ""
    return f"{shown}{more}"


def _open(note: str, verifier: NoteVerifier, origin: str) -> Checkpoint | Problem:
    """The checkpoint if ``verifier`` signed it for ``origin``, else the problem."""
    try:
        cp, _ = open_checkpoint(note, verifier, origin=origin)
    except CheckpointOriginMismatch as exc:
        return Problem(WRONG_ORIGIN, str(exc))
    except UnverifiedNote as exc:
        return Problem(BAD_SIGNATURE, f"not signed by the pinned node key: {exc}")
    except InvalidInput as exc:
        return Problem(MALFORMED_CHECKPOINT, str(exc))
    return cp


def check_leaves(
    leaves: Sequence[bytes], department: str | None
) -> tuple[list[AuditEvent], list[Problem]]:
    """Parse every leaf: canonical ``AuditEvent``, ``seq`` = index, one constant ``node``."""
    events: list[AuditEvent] = []
    bad: list[int] = []
    wrong_seq: list[int] = []
    wrong_node: list[int] = []
    node = department
    for i, data in enumerate(leaves):
        try:
            event = AuditEvent.from_bytes(data)
        except InvalidInput:
            bad.append(i)
            continue
        events.append(event)
        if event.seq != i:
            wrong_seq.append(i)
        if node is None:
            node = event.node
        if event.node != node:
            wrong_node.append(i)
    problems = []
    if bad:
        problems.append(Problem(BAD_LEAF, f"leaves {_indices(bad)} are not canonical audit events"))
    if wrong_seq:
        problems.append(
            Problem(SEQ_MISMATCH, f"leaves {_indices(wrong_seq)} carry another sequence number")
        )
    if wrong_node:
        problems.append(
            Problem(NODE_MISMATCH, f"leaves {_indices(wrong_node)} name another node than {node}")
        )
    return events, problems


def _department(origin: str) -> str | None:
    try:
        return parse_childreg_origin(origin)[1]
    except InvalidInput:
        return None  # not a childreg origin: only require the node to be constant


def _against_previous(
    cp: Checkpoint,
    previous: str,
    verifier: NoteVerifier,
    consistency: Sequence[bytes] | None,
    leaves: Sequence[bytes],
) -> tuple[int | None, Problem | None]:
    """(the previous size, a problem) from comparing the new checkpoint to the old one."""
    old = _open(previous, verifier, cp.origin)
    if isinstance(old, Problem):
        return None, Problem(BAD_PREVIOUS, f"the saved previous checkpoint: {old.message}")
    if old.size > cp.size:
        return old.size, Problem(
            LOG_REWRITTEN, f"log rewritten: it shrank from {old.size} to {cp.size} leaves"
        )
    if consistency is not None:
        fits = merkle.verify_consistency(old.size, cp.size, old.root, cp.root, consistency)
        how = "the consistency proof"
    else:  # no proof: the leaves themselves must reproduce the old root
        fits = len(leaves) >= old.size and merkle.root_from_leaves(leaves[: old.size]) == old.root
        how = "the leaves"
    if not fits:
        return old.size, Problem(
            LOG_REWRITTEN,
            f"log rewritten: {how} do not show the checkpoint of {cp.size} leaves extending "
            f"the one of {old.size} verified before",
        )
    return old.size, None


def verify_log(
    note: str,
    leaves: Sequence[bytes],
    verifier: NoteVerifier,
    *,
    origin: str | None = None,
    previous: str | None = None,
    consistency: Sequence[bytes] | None = None,
    previous_verifier: NoteVerifier | None = None,
) -> VerificationReport:
    """Verify a whole log: the signed checkpoint ``note`` against all of its ``leaves``.

    ``previous_verifier`` checks ``previous`` when another key signed it (the node's log
    key was rotated in between, childreg/key_transition.py); by default ``verifier``.

    ``verifier`` is the node's pinned key; the checkpoint's origin must be ``origin``
    (default: the key's name, which is the log's origin). With ``previous`` (a checkpoint
    verified earlier) the new one must extend it: by ``consistency`` (an RFC 9162 proof
    from the old size to the new) if given, else by the leaves themselves.
    """
    expected = verifier.name if origin is None else origin
    opened = _open(note, verifier, expected)
    if isinstance(opened, Problem):
        return VerificationReport(expected, None, None, (opened,))
    cp = opened
    problems: list[Problem] = []
    if len(leaves) != cp.size:
        problems.append(
            Problem(
                SIZE_MISMATCH,
                f"{len(leaves)} leaves for a checkpoint of {cp.size}: "
                "the log was truncated or extended",
            )
        )
    elif merkle.root_from_leaves(leaves) != cp.root:
        problems.append(
            Problem(
                ROOT_MISMATCH,
                "the leaves do not hash to the signed root: a leaf was changed, added or removed",
            )
        )
    events, leaf_problems = check_leaves(leaves, _department(cp.origin))
    problems += leaf_problems
    previous_size = None
    if previous is not None:
        previous_size, problem = _against_previous(
            cp, previous, previous_verifier or verifier, consistency, leaves
        )
        if problem is not None:
            problems.append(problem)
    return VerificationReport(
        cp.origin, cp.size, cp.root, tuple(problems), previous_size, tuple(events)
    )


def make_bundle(
    note: str,
    leaves: Sequence[bytes],
    verifier: NoteVerifier,
    *,
    created: str,
    proofs: Mapping[int, Sequence[bytes]] | None = None,
    consistency: Sequence[tuple[str, int, int, Sequence[bytes]]] = (),
    key_transitions: Sequence[str] = (),
) -> dict[str, Any]:
    """An evidence bundle: everything :func:`verify_bundle` needs, as a JSON-ready dict.

    ``key_transitions`` are the node's log-key transition statements (when its key was
    rotated since ``verifier`` was pinned); a bundle without any has no such field.

    ``proofs`` maps a leaf index to its inclusion proof in the checkpoint's tree;
    ``consistency`` lists (another signed checkpoint, old size, new size, proof) where the
    proof links that checkpoint's tree and the bundle's (the smaller one is old).
    """
    size = len(leaves)
    bundle: dict[str, Any] = {
        "format": BUNDLE_FORMAT,
        "origin": verifier.name,
        "verifier_key": verifier.key_string(),
        "created": created,
        "checkpoint": note,
        "leaves": [base64.b64encode(leaf).decode("ascii") for leaf in leaves],
        "inclusion_proofs": [
            {
                "index": index,
                "tree_size": size,
                "hashes": [base64.b64encode(h).decode("ascii") for h in hashes],
            }
            for index, hashes in sorted((proofs or {}).items())
        ],
        "consistency_proofs": [
            {
                "checkpoint": other,
                "old_size": old,
                "new_size": new,
                "hashes": [base64.b64encode(h).decode("ascii") for h in hashes],
            }
            for other, old, new, hashes in consistency
        ],
    }
    if key_transitions:
        bundle["key_transitions"] = list(key_transitions)
    return bundle


def bundle_text(bundle: Mapping[str, Any]) -> str:
    """The bundle as the JSON text written to a file."""
    return json.dumps(bundle, indent=1, ensure_ascii=False) + "\n"


class _Malformed(Exception):
    pass


def _b64(value: object) -> bytes:
    if not isinstance(value, str):
        raise _Malformed("a base64 value is not a string")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise _Malformed("a value is not standard base64") from None


def _field(bundle: Mapping[str, Any], name: str, kind: type) -> Any:
    value = bundle.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise _Malformed(f"the field {name!r} is missing or of the wrong type")
    return value


_Linked = tuple[str, int, int, list[bytes]]


def _parse_links(bundle: Mapping[str, Any]) -> list[_Linked]:
    """The optional consistency proofs (absent from bundles written before them)."""
    links: list[_Linked] = []
    for item in bundle.get("consistency_proofs", []):
        if not isinstance(item, dict):
            raise _Malformed("a consistency proof is not an object")
        hashes = [_b64(h) for h in _field(item, "hashes", list)]
        links.append(
            (
                _field(item, "checkpoint", str),
                _field(item, "old_size", int),
                _field(item, "new_size", int),
                hashes,
            )
        )
    return links


def _parse_bundle(
    data: str | bytes,
) -> tuple[Mapping[str, Any], list[bytes], list[tuple[int, int, list[bytes]]]]:
    try:
        bundle = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _Malformed("not JSON") from None
    if not isinstance(bundle, dict) or bundle.get("format") != BUNDLE_FORMAT:
        raise _Malformed(f"not a {BUNDLE_FORMAT} bundle")
    for name in ("origin", "verifier_key", "checkpoint"):
        _field(bundle, name, str)
    leaves = [_b64(v) for v in _field(bundle, "leaves", list)]
    proofs = []
    for item in _field(bundle, "inclusion_proofs", list):
        if not isinstance(item, dict):
            raise _Malformed("an inclusion proof is not an object")
        hashes = [_b64(h) for h in _field(item, "hashes", list)]
        proofs.append((_field(item, "index", int), _field(item, "tree_size", int), hashes))
    if not isinstance(bundle.get("consistency_proofs", []), list):
        raise _Malformed("the field 'consistency_proofs' is not a list")
    return bundle, leaves, proofs


def _bad_links(
    links: Sequence[_Linked],
    key_of: Callable[[str], NoteVerifier],
    origin: str,
    size: int,
    root: bytes,
) -> list[int]:
    """Which consistency proofs (by position) fail to link their checkpoint to the bundle's;
    ``key_of`` gives the node's key of each checkpoint."""
    failed = []
    for n, (note, old_size, new_size, hashes) in enumerate(links):
        other = _open(note, key_of(note), origin)
        if isinstance(other, Problem):
            failed.append(n)
            continue
        if (old_size, new_size) == (other.size, size):
            ok = merkle.verify_consistency(old_size, new_size, other.root, root, hashes)
        elif (old_size, new_size) == (size, other.size):
            ok = merkle.verify_consistency(old_size, new_size, root, other.root, hashes)
        else:
            ok = False
        if not ok:
            failed.append(n)
    return failed


def verify_bundle(data: str | bytes, verifier: NoteVerifier) -> VerificationReport:
    """Verify an evidence bundle offline against the pinned node key ``verifier``.

    The bundle's own ``verifier_key`` is only a label: it must equal the pinned key, and
    the signature is checked with the pinned key whatever the bundle says — or, when the
    node rotated its log key since, with the key the bundle's ``key_transitions`` lead to
    from the pinned key for that checkpoint's size. Every other checkpoint the bundle
    carries must be signed the same way and linked to the bundle's by its consistency proof.
    """
    try:
        bundle, leaves, proofs = _parse_bundle(data)
        links = _parse_links(bundle)
    except _Malformed as exc:
        problem = Problem(MALFORMED_BUNDLE, f"the evidence bundle is malformed: {exc}")
        return VerificationReport(verifier.name, None, None, (problem,))
    transitions = bundle.get("key_transitions", [])
    if not isinstance(transitions, list) or not all(isinstance(t, str) for t in transitions):
        problem = Problem(MALFORMED_BUNDLE, "the field 'key_transitions' is not a list of text")
        return VerificationReport(verifier.name, None, None, (problem,))
    try:  # the pinned key, or the one the node's statements lead to, for each size
        keys = LogKeys(verifier, transitions)
    except ChildregError as exc:
        problem = Problem(BAD_SIGNATURE, f"the bundle's key-transition statements: {exc}")
        return VerificationReport(verifier.name, None, None, (problem,))
    note = bundle["checkpoint"]
    report = verify_log(note, leaves, keys.at_note(note), origin=verifier.name)
    extra: list[Problem] = []
    if bundle["verifier_key"] != verifier.key_string() or bundle["origin"] != report.origin:
        extra.append(
            Problem(KEY_MISMATCH, "the bundle names another key or origin than the pinned key")
        )
    if report.size is not None and report.root is not None:
        failed = [
            index
            for index, tree_size, hashes in proofs
            if not (
                tree_size == report.size
                and 0 <= index < len(leaves)
                and merkle.verify_inclusion(
                    merkle.leaf_hash(leaves[index]), index, tree_size, hashes, report.root
                )
            )
        ]
        if failed:
            extra.append(
                Problem(BAD_INCLUSION, f"inclusion proofs of leaves {_indices(failed)} fail")
            )
        unlinked = _bad_links(links, keys.at_note, report.origin, report.size, report.root)
        if unlinked:
            extra.append(
                Problem(
                    BAD_CONSISTENCY,
                    f"consistency proofs {_indices(unlinked)} do not link their signed "
                    "checkpoint to the bundle's",
                )
            )
    return replace(report, problems=report.problems + tuple(extra))


def check_witnessed(
    leaves: Sequence[bytes],
    witnessed_note: str,
    node: NoteVerifier,
    witness: NoteVerifier,
    consistency: Sequence[bytes] | None = None,
) -> list[Problem]:
    """Compare the leaves a node served with the checkpoint a witness cosigned.

    A node could show auditors a history other than the one it gave its witnesses; a
    witnessed checkpoint of N leaves pins the first N leaves, so their root must match.
    A witness may hold a larger size than the node showed (the log grew after it was
    fetched, if only by the auditor's own reads): then ``consistency``, an RFC 9162 proof
    the node gave from the size it showed to the witnessed size, must show the witnessed
    tree extends the leaves served. Problems are LOG_REWRITTEN (keep the evidence), or
    BAD_SIGNATURE when the note is not signed by both the node and the witness.
    """
    try:
        checkpoint, opened = open_checkpoint(witnessed_note, [node, witness], origin=node.name)
    except ChildregError as exc:
        return [Problem(BAD_SIGNATURE, f"the witness's checkpoint does not open: {exc}")]
    if {node.name, witness.name} - set(opened.verified_by):
        return [
            Problem(BAD_SIGNATURE, "the witness's checkpoint lacks the node's or its own signature")
        ]
    shown = len(leaves)
    if checkpoint.size > shown:
        served = merkle.root_from_leaves(list(leaves))
        if consistency is not None and merkle.verify_consistency(
            shown, checkpoint.size, served, checkpoint.root, consistency
        ):
            return []
        how = "without" if consistency is None else "with no valid"
        return [
            Problem(
                LOG_REWRITTEN,
                f"witness {witness.name} holds {checkpoint.size} leaves; the node showed "
                f"{shown}, {how} consistency proof that the witnessed log extends them",
            )
        ]
    if merkle.root_from_leaves(list(leaves[: checkpoint.size])) != checkpoint.root:
        return [
            Problem(
                LOG_REWRITTEN,
                f"the first {checkpoint.size} leaves differ from those witness "
                f"{witness.name} cosigned",
            )
        ]
    return []
