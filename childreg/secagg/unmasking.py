"""The coordinator's side of dropout recovery: rebuild the secrets, remove the masks, sum.

Why this module exists: after the four steps of a round (childreg/secagg/recovery.py) the
coordinator holds the survivors' uploads and, from the survivors' reveals, Shamir shares of
every survivor's self-mask seed and of every dropped department's round mask key. With t of
each it rebuilds them (the Lagrange weights computed once per set of holders, so the cost is
O(t) per secret), subtracts every self mask and the pairwise masks the survivors shared with
departments that dropped, and decodes the sum. With fewer than t shares of any needed secret
it stops, naming the department: nothing is unmasked. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from nacl.public import PrivateKey, PublicKey

from childreg.secagg import masks, shamir
from childreg.secagg.recovery import REVEAL_SLOT_BYTES, Reveal, positions

__all__ = ["NotEnoughShares", "unmask"]

_SECRET_BYTES: Final = 32


class NotEnoughShares(ValueError):
    """Fewer than t survivors revealed a share of a secret the sum needs."""

    def __init__(self, department: str, got: int, need: int) -> None:
        super().__init__(f"{department}: {got} of {need} shares")
        self.department = department


def _rebuild_runs(
    owners: Sequence[str],
    which: str,
    *,
    reveals: Sequence[Reveal],
    points: Mapping[str, int],
    t: int,
) -> dict[str, bytes]:
    """Every secret of ``owners`` at once, from t reveals whose runs list the same
    departments in the same order: Σ w_r·(run of r read as one integer) holds Σ w_r·y_{r,u}
    in slot u (each slot is twice a share's width, so nothing carries), which is secret u
    once reduced mod p. t big-integer products instead of t·n small ones. Owners no such
    group covers are left to :func:`_rebuild`."""
    groups: dict[tuple[str, ...], list[Reveal]] = {}
    for r in reveals:
        order, _ = r.run(which)
        groups.setdefault(order, []).append(r)
    wanted = set(owners)
    order, group = max(groups.items(), key=lambda kv: (len(kv[1]), len(kv[0])), default=((), []))
    if len(group) < t or not wanted & set(order):
        return {}
    chosen = group[:t]
    weights = shamir.lagrange_weights([points[r.department] for r in chosen])
    total = sum(weights[points[r.department]] * int.from_bytes(r.run(which)[1], "big")
                for r in chosen)  # fmt: skip
    slot = REVEAL_SLOT_BYTES
    raw = total.to_bytes(slot * len(order) + slot, "big")[slot:]  # room for the top carry
    out: dict[str, bytes] = {}
    for k, owner in enumerate(order):
        if owner in wanted:
            value = int.from_bytes(raw[k * slot : (k + 1) * slot], "big") % shamir.PRIME
            if value >= 2 ** (8 * _SECRET_BYTES):
                raise NotEnoughShares(owner, 0, t)  # inconsistent shares: not a secret
            out[owner] = value.to_bytes(_SECRET_BYTES, "big")
    return out


def _rebuild(
    owner: str,
    which: str,
    *,
    reveals: Sequence[Reveal],
    points: Mapping[str, int],
    t: int,
    cache: dict[tuple[int, ...], dict[int, int]],
) -> bytes:
    shares = {}
    for r in reveals:
        held = r.share(which, owner)
        if held is not None:
            shares[points[r.department]] = held
        if len(shares) == t:
            break
    if len(shares) < t:
        raise NotEnoughShares(owner, len(shares), t)
    xs = tuple(sorted(shares))
    if xs not in cache:
        cache[xs] = shamir.lagrange_weights(xs)
    value = shamir.reconstruct(shares, cache[xs])
    if value >= 2 ** (8 * _SECRET_BYTES):
        raise NotEnoughShares(owner, 0, t)  # inconsistent shares: not a secret at all
    return value.to_bytes(_SECRET_BYTES, "big")


def unmask(
    uploads: Mapping[str, Sequence[int]],
    reveals: Sequence[Reveal],
    round_keys: Mapping[str, PublicKey],
    *,
    participants: Sequence[str],
    t: int,
    round_id: str,
    table_id: str,
    snapshot: str,
    context: str,
) -> list[int]:
    """The sum of the survivors' vectors (signed int64), their masks removed.

    ``uploads`` are the survivors' uploads, ``round_keys`` every key holder's advertised
    round key (survivors and departments that dropped after sending shares). Raises
    NotEnoughShares naming a department whose secret fewer than t survivors revealed, and
    ValueError when a rebuilt mask key does not match its advertised key.
    """
    points = positions(participants)
    cache: dict[tuple[int, ...], dict[int, int]] = {}
    total = [0] * len(next(iter(uploads.values())))
    for values in uploads.values():
        total = [a + v for a, v in zip(total, values, strict=True)]
    length = len(total)
    gone = sorted(set(round_keys) - set(uploads))
    seeds = _rebuild_runs(list(uploads), "self", reveals=reveals, points=points, t=t)
    keys = _rebuild_runs(gone, "key", reveals=reveals, points=points, t=t)
    for survivor in uploads:
        seed = seeds.get(survivor) or _rebuild(
            survivor, "self", reveals=reveals, points=points, t=t, cache=cache
        )
        total = [a - m for a, m in zip(total, masks.mask_stream(seed, length), strict=True)]
    for dropped in gone:
        secret = PrivateKey(
            keys.get(dropped)
            or _rebuild(dropped, "key", reveals=reveals, points=points, t=t, cache=cache)
        )
        if bytes(secret.public_key) != bytes(round_keys[dropped]):
            raise ValueError(f"the rebuilt round key of {dropped} is not the one it advertised")
        for survivor in uploads:
            seed = masks.pair_seed(
                secret,
                round_keys[survivor],
                my_id=dropped,
                peer_id=survivor,
                round_id=round_id,
                table_id=table_id,
                snapshot=snapshot,
                context=context,
            )
            stream = masks.mask_stream(seed, length)
            # The survivor added the pair's mask if the dropped id is larger, else subtracted it.
            sign = -1 if dropped > survivor else 1
            total = [a + sign * m for a, m in zip(total, stream, strict=True)]
    return masks.unmask_sum([[a % masks.MODULUS for a in total]])
