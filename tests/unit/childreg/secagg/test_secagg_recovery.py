"""Dropout recovery (childreg/secagg/recovery.py, unmasking.py), with keys made in the test."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

import pytest
from nacl.public import PrivateKey, PublicKey
from nacl.signing import SigningKey

from childreg.errors import PermissionDenied
from childreg.secagg import recovery, unmasking
from childreg.secagg.recovery import Signed

FED, RID, TABLE, YEAR = "test.childreg", "ab" * 16, "form", "2023/24"


@dataclasses.dataclass
class Party:
    """One department's roster keys and its vector."""

    dept: str
    masking: PrivateKey
    signing: SigningKey
    vector: list[int]


def parties(n: int) -> list[Party]:
    return [
        Party(f"d{i:02d}", PrivateKey.generate(), SigningKey.generate(), [i, -i, 3 * i])
        for i in range(n)
    ]


def context(names: Sequence[str]) -> str:
    return recovery.round_context(
        federation=FED, catalogue_version=1, catalogue_digest="00", dimensions=["x"],
        roster_version=1, participants=names,
    )  # fmt: skip


def run(
    ps: list[Party],
    t: int,
    *,
    before_upload: set[str],
    split: dict[str, Sequence[str]] | None = None,
) -> tuple[dict[str, list[int]], list[recovery.Reveal], dict[str, PublicKey], str]:
    """The four steps over ``ps``; those in ``before_upload`` drop before uploading."""
    names = [p.dept for p in ps]
    ctx = context(names)
    secrets = {
        p.dept: recovery.round_secrets(
            p.masking, round_id=RID, table_id=TABLE, snapshot=YEAR, context=ctx
        )
        for p in ps
    }
    keys = {p.dept: secrets[p.dept].mask_key.public_key for p in ps}
    roster_keys = {p.dept: p.masking.public_key for p in ps}
    sealed = {
        p.dept: recovery.open_key_shares(
            recovery.key_shares(
                secrets[p.dept], p.signing, p.masking, roster_keys, federation=FED,
                department=p.dept, round_id=RID, all_participants=names, t=t,
            ),
            p.signing.verify_key, federation=FED, department=p.dept, round_id=RID,
        )
        for p in ps
    }  # fmt: skip
    uploads = {
        p.dept: recovery.masked_upload(
            p.vector, secrets[p.dept], p.dept, keys, round_id=RID, table_id=TABLE,
            snapshot=YEAR, context=ctx,
        )
        for p in ps
        if p.dept not in before_upload
    }  # fmt: skip
    survivors = sorted(uploads)
    reveals = [
        recovery.open_reveal(
            recovery.reveal(
                p.masking, roster_keys, {s: c[p.dept] for s, c in sealed.items()}, p.signing,
                federation=FED, department=p.dept, round_id=RID,
                survivors=survivors,
            ),
            p.signing.verify_key, federation=FED, department=p.dept, round_id=RID,
        )
        for p in ps
        if p.dept in uploads
    ]  # fmt: skip
    return uploads, reveals, keys, ctx


@pytest.mark.parametrize(
    ("n", "c", "dropouts", "members", "expected"),
    [(4, 1, 2, 4, 3), (14, 1, 2, 14, 12), (20, 1, 2, 20, 18), (20, 1, 0, 20, 20),
     (11, 1, 2, 20, 11), (10, 5, 8, 10, 8)],
)  # fmt: skip
def test_the_threshold_is_the_largest_of_its_rules(
    n: int, c: int, dropouts: int, members: int, expected: int
) -> None:
    """t is at least 3, a majority of the roster, c + 1, n − dropouts and more than (n+c)/2."""
    t = recovery.threshold(members, c, n, dropouts)
    assert t == expected
    assert t > members // 2
    assert 2 * t > n + c


def test_with_departments_dropped_before_upload_the_sum_is_the_survivors() -> None:
    """Two of eight drop before uploading: their pairwise masks are rebuilt from the mask-key
    shares, every self mask from the self-seed shares, and the sum is the survivors' exactly."""
    ps = parties(8)
    uploads, reveals, keys, ctx = run(ps, 6, before_upload={"d02", "d05"})
    total = unmasking.unmask(
        uploads, reveals, keys, participants=[p.dept for p in ps], t=6, round_id=RID,
        table_id=TABLE, snapshot=YEAR, context=ctx,
    )  # fmt: skip
    alive = [p.vector for p in ps if p.dept not in {"d02", "d05"}]
    assert total == [sum(col) for col in zip(*alive, strict=True)]


def test_a_reveal_holds_one_half_per_sender_never_both() -> None:
    """A survivor reveals the self-mask share of each survivor and the mask-key share of each
    department that dropped, and no department appears in both."""
    ps = parties(5)
    _, reveals, _, _ = run(ps, 4, before_upload={"d01"})
    for r in reveals:
        assert set(r.self_shares) == {"d00", "d02", "d03", "d04"}
        assert set(r.key_shares) == {"d01"}


def test_fewer_than_t_reveals_unmask_nothing() -> None:
    """With only t − 1 survivors revealing, unmasking stops naming a department."""
    ps = parties(6)
    uploads, reveals, keys, ctx = run(ps, 5, before_upload=set())
    with pytest.raises(unmasking.NotEnoughShares):
        unmasking.unmask(
            uploads, reveals[:4], keys, participants=[p.dept for p in ps], t=5, round_id=RID,
            table_id=TABLE, snapshot=YEAR, context=ctx,
        )  # fmt: skip


def test_sealed_shares_open_only_for_their_recipient() -> None:
    """A share pair sealed to one department does not open for another (nor for anyone
    holding only public keys): the reveal leaves it out."""
    ps = parties(4)
    names = [p.dept for p in ps]
    roster_keys = {p.dept: p.masking.public_key for p in ps}
    a, b, c = ps[0], ps[1], ps[2]
    secrets = recovery.round_secrets(
        a.masking, round_id=RID, table_id=TABLE, snapshot=YEAR, context=context(names)
    )
    sealed = recovery.open_key_shares(
        recovery.key_shares(
            secrets, a.signing, a.masking, roster_keys, federation=FED, department=a.dept,
            round_id=RID, all_participants=names, t=3,
        ),
        a.signing.verify_key, federation=FED, department=a.dept, round_id=RID,
    )  # fmt: skip
    misdirected = recovery.open_reveal(
        recovery.reveal(
            c.masking, roster_keys, {a.dept: sealed[b.dept]}, c.signing, federation=FED,
            department=c.dept, round_id=RID, survivors=names,
        ),
        c.signing.verify_key, federation=FED, department=c.dept, round_id=RID,
    )  # fmt: skip
    assert misdirected.self_shares == misdirected.key_shares == {}


def test_a_round_key_signed_by_another_key_or_for_another_round_is_refused() -> None:
    """open_advert refuses a forged signature, another round id and another department."""
    a, b = parties(2)
    secrets = recovery.round_secrets(
        a.masking, round_id=RID, table_id=TABLE, snapshot=YEAR, context="x"
    )
    good = recovery.advert(secrets, a.signing, federation=FED, department=a.dept, round_id=RID)
    assert bytes(
        recovery.open_advert(
            good, a.signing.verify_key, federation=FED, department=a.dept, round_id=RID
        )
    ) == bytes(secrets.mask_key.public_key)
    forged = Signed(good.body, b.signing.sign(recovery.ADVERT_CONTEXT + good.body).signature)
    with pytest.raises(PermissionDenied):
        recovery.open_advert(
            forged, a.signing.verify_key, federation=FED, department=a.dept, round_id=RID
        )
    with pytest.raises(PermissionDenied):
        recovery.open_advert(
            good, a.signing.verify_key, federation=FED, department=a.dept, round_id="cd" * 16
        )
    other = json.loads(good.body) | {"department": b.dept}
    with pytest.raises(PermissionDenied):
        recovery.open_advert(
            Signed(json.dumps(other).encode(), good.signature),
            a.signing.verify_key, federation=FED, department=b.dept, round_id=RID,
        )  # fmt: skip


def test_round_secrets_are_fixed_per_round_and_fresh_across_rounds() -> None:
    """The same round gives the same secrets (a node asked twice says the same); another
    round id or context gives unrelated ones."""
    key = PrivateKey.generate()

    def derive(rid: str, ctx: str) -> recovery.RoundSecrets:
        return recovery.round_secrets(key, round_id=rid, table_id=TABLE, snapshot=YEAR, context=ctx)

    one, again = derive(RID, "x"), derive(RID, "x")
    assert bytes(one.mask_key) == bytes(again.mask_key)
    assert one.self_seed == again.self_seed
    assert one.coefficients("self", 3) == again.coefficients("self", 3)
    for other in (derive("cd" * 16, "x"), derive(RID, "y")):
        assert bytes(other.mask_key) != bytes(one.mask_key)
        assert other.self_seed != one.self_seed
