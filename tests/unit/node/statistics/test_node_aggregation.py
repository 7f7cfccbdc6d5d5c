"""The node's secure-aggregation desk: rounds that unmask, shares that never change, one set.

Real keyrings, real stores (SQLCipher where durability matters) and a roster signed by a test
authority; the coordinator's side is played by ``masks.unmask_sum`` and ``open_share``.
Refusals, the budget, the mechanisms and the servicer are in
test_node_aggregation_refusals.py.
"""

from __future__ import annotations

import json
import secrets
import statistics
import tomllib
from fractions import Fraction
from pathlib import Path

import pytest
import tomli_w
from nacl.signing import SigningKey
from typer.testing import CliRunner

from childreg.config import load_config
from childreg.dp import zcdp
from childreg.errors import FailedPrecondition
from childreg.models import NoisyTableQuestion
from childreg.secagg import masks
from childreg.secagg.roster import (
    Participation,
    RosterMember,
    parse_roster,
    sign_roster,
    verify_roster,
)
from childreg.secagg.upload import open_share
from node.config import NodeConfig
from node.crypto.keys import KekSource, Keyring, generate_key_file
from node.rpc.statistics import masked_share_to_proto
from node.server import init_node
from node.statistics.aggregation import roster_entry
from node.store.sqlcipher import SqlCipherStore
from tests.conftest import IssueFn, authority_key
from tests.unit.secagg_nodes import (
    CALLER,
    FEDERATION,
    TABLES,
    YEAR,
    Node,
    make_keyring,
    make_node,
    ready_question,
    roster_object,
    round_id,
    round_total,
    run_round,
    share_question,
    signed_catalogue,
    signed_roster,
)
from tools.cli.main import app


def four_nodes(tmp_path: Path, children: tuple[int, ...] = (40, 25, 0, 13)) -> list[Node]:
    """Departments a, b, c, d on in-memory stores, with ``children`` children each."""
    return [
        make_node(dept, make_keyring(tmp_path / dept), children=count)
        for dept, count in zip("abcd", children, strict=True)
    ]


def stored_share(node: Node, table_id: str) -> tuple[int, ...]:
    """The share vector a node stored in its ledger for ``table_id``."""
    [entry] = [e for e in node.ledger() if e.table_id == table_id]
    return entry.released


def test_the_unmasked_sum_is_the_sum_of_the_stored_shares(tmp_path: Path) -> None:
    """A whole round unmasks to exactly the sum of the nodes' stored noisy shares, and every
    upload is bound to the round."""
    nodes = four_nodes(tmp_path)
    roster = signed_roster(nodes)
    rid = round_id()
    bodies = run_round(nodes, roster, "sex_by_age", rid)
    total = round_total(nodes, roster, "sex_by_age")
    shares = [stored_share(n, "sex_by_age") for n in nodes]
    assert total == [sum(cell) for cell in zip(*shares, strict=True)]
    assert len(total) == 12
    for node, body in zip(nodes, bodies, strict=True):
        assert (body.federation, body.department, body.round_id) == (
            FEDERATION,
            node.department,
            rid,
        )
        assert (body.table_id, body.academic_year, body.catalogue_version) == (
            "sex_by_age",
            YEAR,
            1,
        )
        assert list(body.dimensions) == ["sex", "age_band"]
        assert (list(body.participants), body.roster_version) == (["a", "b", "c", "d"], 1)
        # The upload is not the share: the masks hide it.
        assert list(body.values) != [v % masks.MODULUS for v in stored_share(node, "sex_by_age")]
    for node in nodes:
        [entry] = node.ledger()
        assert (entry.mechanism, entry.rho, entry.requested_by) == (
            "secure-aggregation",
            Fraction(1, 32),
            CALLER,
        )


def test_a_retry_gets_fresh_masks_over_the_same_share_and_no_second_charge(
    tmp_path: Path,
) -> None:
    """Two rounds of one table: uploads differ by masks only (x₁ − x₂ = 0 ≠ their difference),
    both unmask to the same national vector, and each ledger holds one entry."""
    nodes = four_nodes(tmp_path)
    roster = signed_roster(nodes)
    first = run_round(nodes, roster, "education_form")
    second = run_round(nodes, roster, "education_form")
    for a, b in zip(first, second, strict=True):
        difference = [(x - y) % masks.MODULUS for x, y in zip(a.values, b.values, strict=True)]
        assert difference != [0] * len(difference)  # x₁ − x₂ = 0: the shares are the same
    assert round_total(nodes, roster, "education_form") == round_total(
        nodes, roster, "education_form"
    )
    assert all(len(n.ledger()) == 1 for n in nodes)


def test_a_repeated_round_id_gives_the_same_upload(tmp_path: Path) -> None:
    """Nothing but the round id freshens the masks: the same round asked twice is identical."""
    nodes = four_nodes(tmp_path)
    roster = signed_roster(nodes)
    rid = round_id()
    assert run_round(nodes, roster, "education_form", rid) == run_round(
        nodes, roster, "education_form", rid
    )


def test_a_round_without_a_department_is_refused_after_a_full_round(tmp_path: Path) -> None:
    """After {a,b,c,d}, "a dropped" ({b,c,d}) is refused by every node and charges nothing,
    for the same table and for any other table of the snapshot (two tables summed over sets
    that differ by a share margins whose difference would be a's); the full set works for
    another table."""
    nodes = four_nodes(tmp_path)
    roster = signed_roster(nodes)
    run_round(nodes, roster, "education_form")
    dropped = share_question(roster, "education_form", ["b", "c", "d"])
    for node in nodes:
        with pytest.raises(FailedPrecondition):
            node.desk.share(dropped, CALLER)
        assert [e.table_id for e in node.ledger()] == ["education_form"]
        assert node.store.participation(YEAR) == Participation(frozenset("abcd"), 1)
    other = share_question(roster, "sex_by_age", ["b", "c", "d"])
    for node in nodes[1:]:
        with pytest.raises(FailedPrecondition, match="another set of departments"):
            node.desk.share(other, CALLER)
        assert [e.table_id for e in node.ledger()] == ["education_form"]
    run_round(nodes, roster, "sex_by_age")
    assert nodes[1].store.participation(YEAR) == Participation(frozenset("abcd"), 1)


def test_a_round_id_reused_under_another_catalogue_version_gets_unrelated_masks(
    tmp_path: Path,
) -> None:
    """Under catalogue v2 the node draws a fresh share; were the masks the same for the same
    round id, the two uploads would subtract to x₁ − x₂ (a change in the counts with far
    less noise than σ²). The masks are bound to the catalogue version, so they do not."""
    nodes = four_nodes(tmp_path)
    roster = signed_roster(nodes)
    rid = round_id()
    first = run_round(nodes, roster, "education_form", rid)
    question = share_question(
        roster, "education_form", "abcd", rid, cat=signed_catalogue(version=2), holders=nodes
    )
    listed = verify_roster(roster, authority_key().verify_key, federation=FEDERATION)
    second = [
        open_share(
            masked_share_to_proto(n.desk.share(question, CALLER)),
            listed.member(n.department).verify_key,
        )
        for n in nodes
    ]
    for node, one, two in zip(nodes, first, second, strict=True):
        shares = [e.released for e in node.ledger()]
        assert len(shares) == 2  # v1 and v2 each charged, each with its own share
        x1, x2 = shares
        diff = [(b - a) % masks.MODULUS for a, b in zip(one.values, two.values, strict=True)]
        assert diff != [(b - a) % masks.MODULUS for a, b in zip(x1, x2, strict=True)]
    sums = [
        round_total(nodes, roster, "education_form", cat=signed_catalogue(version=v))
        for v in (1, 2)
    ]
    for total, version in zip(sums, (0, 1), strict=True):
        assert total == [
            sum(col) for col in zip(*(n.ledger()[version].released for n in nodes), strict=True)
        ]


def test_a_roster_for_other_snapshots_is_refused(tmp_path: Path) -> None:
    """A roster applies to its range of snapshots only: outside it, Ready and Share refuse
    before anything is charged or recorded (one membership per snapshot)."""
    nodes = four_nodes(tmp_path)
    data = roster_object(n.entry() for n in nodes)
    data["first_snapshot"], data["last_snapshot"] = "2024/25", "2026/27"
    later = sign_roster(parse_roster(data), authority_key())
    for node in nodes:
        with pytest.raises(FailedPrecondition, match="applies to snapshots 2024/25 to 2026/27"):
            node.desk.ready(ready_question(later, "education_form"))
        with pytest.raises(FailedPrecondition, match="applies to snapshots"):
            node.desk.share(share_question(later, "education_form", "abcd"), CALLER)
        assert node.ledger() == []
        assert node.store.participation(YEAR) is None


def test_a_roster_raising_the_colluders_after_a_round_is_refused(tmp_path: Path) -> None:
    """The stored shares were drawn for c = 1: a roster claiming c = 2 for the same table and
    snapshot is refused by Ready and Share alike (it would overstate the noise), and charges
    nothing; the c = 1 roster still works."""
    nodes = four_nodes(tmp_path)
    roster = signed_roster(nodes, colluders=1)
    run_round(nodes, roster, "education_form")
    raised = signed_roster(nodes, colluders=2, version=2)
    for node in nodes:
        with pytest.raises(FailedPrecondition, match="assuming 1 colluding"):
            node.desk.ready(ready_question(raised, "education_form"))
        with pytest.raises(FailedPrecondition, match="assuming 1 colluding"):
            node.desk.share(share_question(raised, "education_form", "abcd", holders=nodes), CALLER)
        assert len(node.ledger()) == 1
    run_round(nodes, roster, "education_form")


def test_an_empty_department_adds_noise_to_every_cell(tmp_path: Path) -> None:
    """A node with no children still uploads a noisy share: most of 462 cells are nonzero."""
    nodes = four_nodes(tmp_path, children=(0, 0, 0, 0))
    run_round(nodes, signed_roster(nodes), "form_by_care_by_age")
    for node in nodes:
        share = stored_share(node, "form_by_care_by_age")
        assert len(share) == 462
        assert sum(v != 0 for v in share) > 0.7 * len(share)
        assert min(share) < 0 < max(share)


def test_share_noise_has_variance_sigma_squared_over_t_minus_c(tmp_path: Path) -> None:
    """With n = 4, c = 1 and the default 2 tolerated dropouts a round may finish with t = 3
    survivors, so each share has variance σ²/(t − c) = 8 per cell, not σ² = 16."""
    nodes = four_nodes(tmp_path, children=(0, 0, 0, 0))
    run_round(nodes, signed_roster(nodes, colluders=1), "form_by_care_by_age")
    noise = [v for n in nodes for v in stored_share(n, "form_by_care_by_age")]  # 1848 draws
    expected = float(zcdp.sigma_squared(Fraction(1, 32)) / 2)
    assert expected == pytest.approx(8)
    assert statistics.pvariance(noise) == pytest.approx(expected, rel=0.2)
    assert abs(statistics.fmean(noise)) < 0.5
    # The four shares together carry about (n / (t − c))·σ² = 32, and any t − c = 2 honest
    # ones at least σ² (sampling error allowed for).
    shares = [stored_share(n, "form_by_care_by_age") for n in nodes]
    national = [sum(cell) for cell in zip(*shares, strict=True)]
    assert statistics.pvariance(national) > 0.9 * 16


def test_shares_draw_other_noise_than_stage_1(tmp_path: Path) -> None:
    """The share's seeds have their own identity: with n − c = 1 (the same variance as stage
    1) the node's share and its stage-1 answer of the same empty table still differ."""
    keyring = make_keyring(tmp_path / "a")
    others = [make_node(d, make_keyring(tmp_path / d)) for d in "bc"]
    secure = make_node("a", keyring)
    clear = make_node("a", keyring)  # another store, so both mechanisms may be asked
    run_round(
        [secure, *others], signed_roster([secure, *others], colluders=2), "form_by_care_by_age"
    )
    answer = clear.statistics.answer(
        NoisyTableQuestion(
            signed_catalogue=signed_catalogue(), table_id="form_by_care_by_age", academic_year=YEAR
        ),
        CALLER,
    )
    share = stored_share(secure, "form_by_care_by_age")
    # Same secret, version, snapshot, cell and variance: equal seeds would give equal draws.
    assert sum(a == b for a, b in zip(answer.counts, share, strict=True)) < 0.3 * len(share)


def test_participation_and_the_share_survive_reopening_a_sqlcipher_store(tmp_path: Path) -> None:
    """After a restart the node still refuses another set, and a retry reuses the stored share."""
    keyrings = {d: make_keyring(tmp_path / d) for d in "abcd"}
    path, key = tmp_path / "a" / "node.db", secrets.token_hex(32)
    store = SqlCipherStore.open(path, key, create=True)
    nodes = [make_node("a", keyrings["a"], store, children=9)]
    nodes += [make_node(d, keyrings[d], children=5) for d in "bcd"]
    roster = signed_roster(nodes)
    before = round_total(nodes, roster, "care_by_age")
    store.close()
    reopened = SqlCipherStore.open(path, key)
    try:
        nodes[0] = make_node("a", keyrings["a"], reopened)
        assert reopened.participation(YEAR) == Participation(frozenset("abcd"), 1)
        with pytest.raises(FailedPrecondition):
            nodes[0].desk.share(share_question(roster, "care_by_age", "abc"), CALLER)
        after = round_total(nodes, roster, "care_by_age")
        assert after == before
        assert [(e.table_id, e.mechanism) for e in reopened.ledger(YEAR)] == [
            ("care_by_age", "secure-aggregation")
        ]
    finally:
        reopened.close()


def test_the_keys_are_the_keyrings_own_and_stable(tmp_path: Path) -> None:
    """Masking and upload keys are derived per keyring, each in its own domain, and stay the
    same when the keyring is reopened; the roster entry validates as a member."""
    keyring = make_keyring(tmp_path / "a")
    reopened = Keyring.open(
        tmp_path / "a" / "keyring.json", KekSource.from_key_file(tmp_path / "a" / "kek.key")
    )
    assert bytes(reopened.masking_key()) == bytes(keyring.masking_key())
    assert reopened.upload_signing_seed() == keyring.upload_signing_seed()
    derived = {
        bytes(keyring.masking_key()),
        keyring.upload_signing_seed(),
        keyring.noise_secret(),
        keyring.audit_signing_seed(),
        keyring.extract_signing_seed(),
    }
    assert len(derived) == 5
    assert all(len(k) == 32 for k in derived)
    assert bytes(make_keyring(tmp_path / "b").masking_key()) != bytes(keyring.masking_key())
    entry = roster_entry(keyring, federation=FEDERATION, department="a")
    member = RosterMember.model_validate(entry)
    assert member.identity == f"spiffe://{FEDERATION}/node/a"
    assert bytes(member.public_key) == bytes(keyring.masking_key().public_key)
    assert bytes(member.verify_key) == bytes(SigningKey(keyring.upload_signing_seed()).verify_key)
    assert (
        verify_roster(
            signed_roster([make_node("a", keyring), *four_nodes(tmp_path / "x")[1:]]),
            authority_key().verify_key,
        ).member("a")
        == member
    )


def test_every_table_of_the_catalogue_can_be_aggregated(tmp_path: Path) -> None:
    """Each table's round unmasks to a vector of its grid size, charged once per node."""
    nodes = four_nodes(tmp_path)
    roster = signed_roster(nodes)
    sizes = {t: len(round_total(nodes, roster, t)) for t in TABLES}
    assert sizes == {"education_form": 11, "sex_by_age": 12, "care_by_age": 42,
                     "form_by_care_by_age": 462}  # fmt: skip
    assert all(sum(e.rho for e in n.ledger()) == Fraction(4, 32) for n in nodes)


def test_roster_entry_command_prints_the_nodes_member_entry(tmp_path: Path, issue: IssueFn) -> None:
    """`childreg node roster-entry` prints a TOML [[members]] table (or JSON) that the roster
    accepts, with the keys the node's keyring derives and its identity in the federation."""
    identity = issue("node", "alpha")
    generate_key_file(tmp_path / "kek.key")
    config = tmp_path / "node.toml"
    config.write_text(
        tomli_w.dumps(
            {
                "department_id": "alpha", "name": "Alpha", "region": "shaki_zagatala",
                "districts": ["shaki"], "data_dir": str(tmp_path / "data"),
                "identity_dir": str(identity.directory), "kek_file": str(tmp_path / "kek.key"),
                "denylist_file": str(tmp_path / "denylist.json"),
                "statistics_authority_key": str(tmp_path / "authority.pub"),
            }
        )
    )  # fmt: skip
    init_node(load_config(NodeConfig, config))
    runner = CliRunner()
    text = runner.invoke(app, ["node", "roster-entry", "--config", str(config)])
    as_json = runner.invoke(app, ["node", "roster-entry", "--config", str(config), "--json"])
    assert (text.exit_code, as_json.exit_code) == (0, 0), text.output + as_json.output
    [member] = tomllib.loads(text.stdout)["members"]
    keyring = Keyring.open(
        tmp_path / "data" / "keyring.json", KekSource.from_key_file(tmp_path / "kek.key")
    )
    expected = roster_entry(keyring, federation=FEDERATION, department="alpha")
    assert member == json.loads(as_json.stdout) == expected
    assert member["identity"] == f"spiffe://{FEDERATION}/node/alpha"
    RosterMember.model_validate(member)
    help_text = runner.invoke(app, ["node", "roster-entry", "--help"]).output
    assert "[[members]]" in help_text
