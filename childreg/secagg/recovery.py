"""Dropout recovery for secure aggregation: round keys, sealed Shamir shares, double masking.

Why this module exists: with pairwise masks alone (childreg/secagg/masks.py) a round that
misses one upload never unmasks. Bonawitz et al. 2017 ("Practical Secure Aggregation for
Privacy-Preserving Machine Learning", CCS) fix that, and this module is their protocol over
the keys the signed roster already pins (docs/secure-aggregation.md, "A round, step by step"):

1. every participant advertises a fresh X25519 **round mask key**, signed with its upload key;
2. it splits the round mask key's secret and a fresh **self-mask seed** with Shamir
   (childreg/secagg/shamir.py, threshold :func:`threshold`) and seals one share pair to each
   participant that advertised (SecretBox under a key agreed from the two *roster* masking
   keys, bound to sender, recipient and round), all sent through the coordinator;
3. its upload is its vector + the self mask + the pairwise masks agreed from round mask keys;
4. after the uploads the coordinator names who uploaded (the survivors); each survivor opens
   the shares sealed to it and reveals, for a survivor, its self-mask share, for a department
   that dropped, its mask-key share — never both for one department: the node records the
   survivors of the table once and answers no other split, in any round of that table.

With t shares of every survivor's self seed and of every dropped department's mask key the
coordinator removes the self masks and the dropped departments' pairwise masks and gets the
sum over the survivors (childreg/secagg/unmasking.py); claiming a live department dropped
gets it that department's mask key but never its self-mask seed, so its upload stays
uniformly masked.

Every per-round secret is derived from the node's roster masking key and everything the round
is bound to (round id, table, snapshot and the round context), so a node keeps no state
between the steps and, asked twice, answers the same. Pure: PyNaCl and hashlib, no I/O.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import nacl.bindings
import nacl.exceptions
from nacl.public import PrivateKey, PublicKey
from nacl.secret import SecretBox
from nacl.signing import SigningKey, VerifyKey

from childreg.errors import PermissionDenied
from childreg.secagg import masks, shamir
from childreg.signed import canonical_json

__all__ = [
    "ADVERT_CONTEXT",
    "KEY_SHARES_CONTEXT",
    "REVEAL_SLOT_BYTES",
    "SEALED_BYTES",
    "UNMASK_CONTEXT",
    "Reveal",
    "RoundSecrets",
    "SealedBatch",
    "Signed",
    "advert",
    "catalogue_digest",
    "key_shares",
    "masked_upload",
    "open_advert",
    "open_key_shares",
    "open_reveal",
    "positions",
    "reveal",
    "round_context",
    "round_secrets",
    "threshold",
]

#: Domain prefixes of the three signed node messages: none passes as another or as an upload.
ADVERT_CONTEXT: Final = b"childreg secagg round key v1\n"
KEY_SHARES_CONTEXT: Final = b"childreg secagg key shares v1\n"
UNMASK_CONTEXT: Final = b"childreg secagg unmask v1\n"
_PERSON: Final = b"childreg-secagg2"  # BLAKE2b personalisation, 16 bytes
_SECRET_BYTES: Final = 32
#: One sealed share pair: a 24-byte nonce, the 16-byte tag and two shares.
SEALED_BYTES: Final = 24 + 16 + 2 * shamir.SHARE_BYTES
#: A revealed share's slot: zero-padded to twice its width, so that a weighted sum of whole
#: runs read as one integer (childreg/secagg/unmasking.py) never carries from slot to slot.
REVEAL_SLOT_BYTES: Final = 2 * shamir.SHARE_BYTES


@dataclass(frozen=True)
class Signed:
    """A node's message: canonical JSON bytes, raw bytes beside them (sealed or revealed
    shares, so that nobody decodes them from text), and the Ed25519 signature (upload key)
    over both (:func:`_signed_bytes`)."""

    body: bytes
    signature: bytes
    blob: bytes = b""


def threshold(members: int, colluders: int, participants: int, dropouts: int) -> int:
    """The fewest survivors a round of ``participants`` may complete with, and the Shamir
    threshold: more than half of the roster's ``members``, at least 3, more than
    ``colluders``, at most ``dropouts`` fewer than the participants, and more than half of
    (participants + colluders) — so that a coordinator that tells some nodes a department
    dropped and others it survived cannot collect t shares of both of its secrets."""
    return max(
        masks.MIN_PARTICIPANTS,
        members // 2 + 1,
        colluders + 1,
        participants - dropouts,
        (participants + colluders) // 2 + 1,
    )


def positions(participants: Sequence[str]) -> dict[str, int]:
    """Each participant's Shamir point: 1 + its place in the sorted set."""
    return {d: i + 1 for i, d in enumerate(sorted(participants))}


def catalogue_digest(signed_catalogue: bytes) -> str:
    """The catalogue digest bound into a round: BLAKE2b-256 of the signed catalogue's bytes,
    which the node and the coordinator both hold exactly."""
    return hashlib.blake2b(signed_catalogue, digest_size=32).hexdigest()


def round_context(
    *,
    federation: str,
    catalogue_version: int,
    catalogue_digest: str,
    dimensions: Sequence[str],
    roster_version: int,
    participants: Sequence[str],
) -> str:
    """Everything both sides of every pair agree on, bound into every round secret and mask."""
    return canonical_json(
        {
            "federation": federation,
            "catalogue_version": catalogue_version,
            "catalogue_digest": catalogue_digest,
            "dimensions": list(dimensions),
            "roster_version": roster_version,
            "participants": list(participants),
        }
    ).decode("utf-8")


def _field(value: str) -> bytes:
    raw = value.encode("utf-8")
    return struct.pack(">I", len(raw)) + raw


def _kdf(key: bytes, *fields: str, size: int = _SECRET_BYTES) -> bytes:
    message = b"".join(_field(f) for f in fields)
    return hashlib.blake2b(message, digest_size=size, key=key, person=_PERSON).digest()


@dataclass(frozen=True)
class RoundSecrets:
    """One node's secrets of one round, derived (never stored) from its roster masking key."""

    mask_key: PrivateKey
    self_seed: bytes
    _coefficient_key: bytes

    def coefficients(self, which: str, degree: int) -> list[int]:
        """The Shamir coefficients for secret ``which`` ("self" or "key"), fixed per round."""
        out = []
        for i in range(degree):
            wide = _kdf(self._coefficient_key, which, str(i), size=64)
            wide += _kdf(self._coefficient_key, which, str(i), "2", size=64)
            out.append(int.from_bytes(wide, "big") % shamir.PRIME)
        return out


def round_secrets(
    masking: PrivateKey, *, round_id: str, table_id: str, snapshot: str, context: str
) -> RoundSecrets:
    """The round mask key, self-mask seed and Shamir coefficients of one node for one round."""
    root = bytes(masking)
    bound = (round_id, table_id, snapshot, context)
    return RoundSecrets(
        mask_key=PrivateKey(_kdf(root, "round-mask-key/v1", *bound)),
        self_seed=_kdf(root, "self-mask-seed/v1", *bound),
        _coefficient_key=_kdf(root, "shamir-coefficients/v1", *bound),
    )


# --- signed messages ---------------------------------------------------------------------


def _signed_bytes(context: bytes, body: bytes, blob: bytes) -> bytes:
    """What a step message's signature covers: the prefix, the body's length, the body and
    BLAKE2b-256 of the blob (hashed once, at C speed, instead of copied into the signed
    message: the blobs are what the coordinator routes, O(n) bytes per message)."""
    digest = hashlib.blake2b(blob, digest_size=32, person=_PERSON).digest()
    return context + struct.pack(">Q", len(body)) + body + digest


def _sign(obj: dict[str, Any], key: SigningKey, context: bytes, blob: bytes = b"") -> Signed:
    body = canonical_json(obj)
    return Signed(body, key.sign(_signed_bytes(context, body, blob)).signature, blob)


def _open(
    message: Signed,
    key: VerifyKey,
    context: bytes,
    *,
    federation: str,
    department: str,
    round_id: str,
) -> dict[str, Any]:
    """The body of a signed node message, once its signature and binding check out."""
    try:
        key.verify(_signed_bytes(context, message.body, message.blob), message.signature)
        obj = json.loads(message.body)
    except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
        raise PermissionDenied(f"the message of department {department} does not verify") from None
    if not isinstance(obj, dict):
        raise PermissionDenied(f"the message of department {department} is malformed")
    got = (obj.get("federation"), obj.get("department"), obj.get("round_id"))
    if got != (federation, department, round_id):
        raise PermissionDenied(f"the message of department {department} is for another round")
    return obj


def advert(
    secrets: RoundSecrets, key: SigningKey, *, federation: str, department: str, round_id: str
) -> Signed:
    """Step 1: the node's round mask public key, signed."""
    public = base64.b64encode(bytes(secrets.mask_key.public_key)).decode("ascii")
    obj = {
        "federation": federation,
        "department": department,
        "round_id": round_id,
        "mask_key": public,
    }
    return _sign(obj, key, ADVERT_CONTEXT)


def open_advert(
    message: Signed, key: VerifyKey, *, federation: str, department: str, round_id: str
) -> PublicKey:
    """The round mask key a department advertised; PermissionDenied unless signed and bound."""
    obj = _open(
        message,
        key,
        ADVERT_CONTEXT,
        federation=federation,
        department=department,
        round_id=round_id,
    )
    try:
        raw = base64.b64decode(obj["mask_key"], validate=True)
    except (KeyError, TypeError, ValueError):
        raise PermissionDenied(f"the round key of department {department} is malformed") from None
    if len(raw) != _SECRET_BYTES:
        raise PermissionDenied(f"the round key of department {department} is malformed")
    return PublicKey(raw)


def _box(
    roster_masking: PrivateKey,
    peer_roster_key: PublicKey,
    *,
    sender: str,
    recipient: str,
    round_id: str,
) -> SecretBox:
    """The sealing key of one sender → recipient direction of one round (roster keys)."""
    try:
        shared = nacl.bindings.crypto_scalarmult(bytes(roster_masking), bytes(peer_roster_key))
    except RuntimeError as exc:
        raise ValueError("X25519 agreement gave an all-zero secret (bad peer key)") from exc
    if not any(shared):
        raise ValueError("X25519 agreement gave an all-zero secret (bad peer key)")
    return SecretBox(_kdf(shared, "share-box/v1", sender, recipient, round_id))


def key_shares(
    secrets: RoundSecrets,
    key: SigningKey,
    roster_masking: PrivateKey,
    recipients: Mapping[str, PublicKey],
    *,
    federation: str,
    department: str,
    round_id: str,
    all_participants: Sequence[str],
    t: int,
) -> Signed:
    """Step 2: one sealed pair of shares (self seed, mask key) per recipient, signed.

    ``recipients`` maps every department that advertised (this one included) to its
    *roster* masking key; each share pair is sealed under that pair's agreed key.
    """
    points = positions(all_participants)
    self_secret = int.from_bytes(secrets.self_seed, "big")
    key_secret = int.from_bytes(bytes(secrets.mask_key), "big")
    xs = [points[r] for r in recipients]
    self_shares = shamir.split(self_secret, secrets.coefficients("self", t - 1), xs)
    key_shares_ = shamir.split(key_secret, secrets.coefficients("key", t - 1), xs)
    sealed: list[bytes] = []
    order = sorted(recipients)
    for recipient in order:
        x = points[recipient]
        plain = shamir.to_bytes(self_shares[x]) + shamir.to_bytes(key_shares_[x])
        box = _box(
            roster_masking,
            recipients[recipient],
            sender=department,
            recipient=recipient,
            round_id=round_id,
        )
        sealed.append(bytes(box.encrypt(plain)))
    obj = {
        "federation": federation,
        "department": department,
        "round_id": round_id,
        "recipients": order,
    }
    return _sign(obj, key, KEY_SHARES_CONTEXT, b"".join(sealed))


@dataclass(frozen=True)
class SealedBatch:
    """One sender's sealed share pairs: one :data:`SEALED_BYTES` slice per recipient, in
    the order of ``recipients`` (sorted), so routing them is slicing bytes."""

    recipients: tuple[str, ...]
    blob: bytes

    def __getitem__(self, recipient: str) -> bytes:
        return self.slice(self.recipients.index(recipient))

    def slice(self, k: int) -> bytes:
        """The share pair sealed to the k-th recipient."""
        return self.blob[k * SEALED_BYTES : (k + 1) * SEALED_BYTES]


def open_key_shares(
    message: Signed,
    key: VerifyKey,
    *,
    federation: str,
    department: str,
    round_id: str,
    recipients: Sequence[str] | None = None,
) -> SealedBatch:
    """The sealed share pairs a department sent; PermissionDenied unless signed and whole
    (and, when ``recipients`` is given, sealed to exactly those, in that sorted order)."""
    obj = _open(
        message,
        key,
        KEY_SHARES_CONTEXT,
        federation=federation,
        department=department,
        round_id=round_id,
    )
    raw = obj.get("recipients")
    listed = (list(recipients) if raw == list(recipients) else None) if recipients else _names(raw)
    if listed is None or (recipients is None and listed != sorted(set(listed))):
        raise PermissionDenied(f"the key shares of department {department} are malformed")
    if len(message.blob) != SEALED_BYTES * len(listed):
        raise PermissionDenied(f"the key shares of department {department} are malformed")
    return SealedBatch(tuple(listed), message.blob)


def _names(value: Any) -> list[str] | None:
    """``value`` if it is a list of strings (parsed JSON), else None."""
    if isinstance(value, list) and set(map(type, value)) <= {str}:  # json.loads: exact types
        return value
    return None


def masked_upload(
    values: Sequence[int],
    secrets: RoundSecrets,
    department: str,
    round_keys: Mapping[str, PublicKey],
    *,
    round_id: str,
    table_id: str,
    snapshot: str,
    context: str,
) -> list[int]:
    """Step 3: values + self mask + pairwise masks with every other key holder, mod 2⁶⁴."""
    seeds = {
        peer: masks.pair_seed(
            secrets.mask_key,
            public,
            my_id=department,
            peer_id=peer,
            round_id=round_id,
            table_id=table_id,
            snapshot=snapshot,
            context=context,
        )
        for peer, public in round_keys.items()
        if peer != department
    }
    paired = masks.masked_with_seeds(values, department, seeds)
    own = masks.mask_stream(secrets.self_seed, len(paired))
    return [(a + m) % masks.MODULUS for a, m in zip(paired, own, strict=True)]


@dataclass(frozen=True)
class Reveal:
    """A survivor's answer in step 4: self-seed shares of survivors, mask-key shares of the
    departments that dropped, each a run of :data:`REVEAL_SLOT_BYTES` slots in the order of
    its tuple of departments (parsed only when asked for)."""

    department: str
    survivors: tuple[str, ...]
    self_of: tuple[str, ...]
    self_blob: bytes
    key_of: tuple[str, ...]
    key_blob: bytes

    def run(self, which: str) -> tuple[tuple[str, ...], bytes]:
        """The departments of run ``which`` ("self" or "key") in order, and its slots."""
        return (self.self_of, self.self_blob) if which == "self" else (self.key_of, self.key_blob)

    def share(self, which: str, owner: str) -> int | None:
        """This survivor's share of ``owner``'s secret ``which``, if it revealed one."""
        order, blob = self.run(which)
        if owner not in order:
            return None
        k = order.index(owner)
        slot = blob[k * REVEAL_SLOT_BYTES : (k + 1) * REVEAL_SLOT_BYTES]
        if any(slot[: shamir.SHARE_BYTES]):
            raise ValueError(f"a revealed share of {owner} is malformed")
        return shamir.from_bytes(slot[shamir.SHARE_BYTES :])

    @property
    def self_shares(self) -> dict[str, int]:
        """Every self-seed share revealed, by department."""
        return {d: v for d in self.self_of if (v := self.share("self", d)) is not None}

    @property
    def key_shares(self) -> dict[str, int]:
        """Every mask-key share revealed, by department."""
        return {d: v for d in self.key_of if (v := self.share("key", d)) is not None}


def reveal(
    roster_masking: PrivateKey,
    roster_keys: Mapping[str, PublicKey],
    sealed: Mapping[str, bytes],
    key: SigningKey,
    *,
    federation: str,
    department: str,
    round_id: str,
    survivors: Sequence[str],
) -> Signed:
    """Step 4 at a survivor: open each share pair sealed to it, reveal one half of each.

    ``sealed`` maps each sender to its ciphertext for this node; ``roster_keys`` the senders'
    roster masking keys. A pair that does not open (altered on the way) is left out. The
    caller has checked that this split is the only one it ever answers for the table.
    """
    alive = set(survivors)
    self_out: dict[str, bytes] = {}
    key_out: dict[str, bytes] = {}
    for sender, ciphertext in sorted(sealed.items()):
        public = roster_keys.get(sender)
        if public is None:
            continue
        box = _box(roster_masking, public, sender=sender, recipient=department, round_id=round_id)
        try:
            plain = box.decrypt(ciphertext)
        except (nacl.exceptions.CryptoError, ValueError):
            continue
        if len(plain) != 2 * shamir.SHARE_BYTES:
            continue
        half = plain[: shamir.SHARE_BYTES] if sender in alive else plain[shamir.SHARE_BYTES :]
        (self_out if sender in alive else key_out)[sender] = bytes(shamir.SHARE_BYTES) + half
    self_of, key_of = sorted(self_out), sorted(key_out)
    obj = {
        "federation": federation,
        "department": department,
        "round_id": round_id,
        "survivors": sorted(alive),
        "self_of": self_of,
        "key_of": key_of,
    }
    blob = b"".join(self_out[d] for d in self_of) + b"".join(key_out[d] for d in key_of)
    return _sign(obj, key, UNMASK_CONTEXT, blob)


def open_reveal(
    message: Signed, key: VerifyKey, *, federation: str, department: str, round_id: str
) -> Reveal:
    """A survivor's step-4 answer; PermissionDenied unless signed, bound and well formed."""
    obj = _open(
        message,
        key,
        UNMASK_CONTEXT,
        federation=federation,
        department=department,
        round_id=round_id,
    )
    self_of, key_of = _names(obj.get("self_of")), _names(obj.get("key_of"))
    survivors = _names(obj.get("survivors"))
    if self_of is None or key_of is None or survivors is None:
        raise PermissionDenied(f"the unmasking of department {department} is malformed")
    cut = REVEAL_SLOT_BYTES * len(self_of)
    if len(message.blob) != cut + REVEAL_SLOT_BYTES * len(key_of):
        raise PermissionDenied(f"the unmasking of department {department} is malformed")
    if len(set(self_of) | set(key_of)) != len(self_of) + len(key_of):
        # an honest node never reveals both halves for one department, nor one twice
        raise PermissionDenied(f"the unmasking of department {department} reveals both halves")
    return Reveal(
        department,
        tuple(survivors),
        tuple(self_of),
        message.blob[:cut],
        tuple(key_of),
        message.blob[cut:],
    )
