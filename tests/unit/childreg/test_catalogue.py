"""The signed table catalogue: validation, accounting, authority keys, signing and the CLI."""

from __future__ import annotations

import base64
import json
import stat
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey
from typer.testing import CliRunner

from childreg.catalogue import (
    SIGNING_CONTEXT,
    TABLE_DIMENSIONS,
    Catalogue,
    generate_authority_key,
    load_catalogue,
    load_signing_key,
    load_verify_key,
    parse_catalogue,
    public_key_text,
    read_signed_catalogue,
    sign_catalogue,
    verify_catalogue,
)
from childreg.errors import AlreadyExists, InvalidInput, KeyProblem, PermissionDenied
from childreg.signed import key_id
from tools.cli.catalogue import app
from tools.clients.authority import catalogue_rows
from tools.clients.client import EXIT_KEY, EXIT_REFUSED, EXIT_REJECTED, CliError

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "deploy" / "config" / "catalogue.toml"

Data = dict[str, Any]


def authored() -> Data:
    """A small valid catalogue as an author writes it (a fresh copy each time)."""
    return {
        "federation": "test.childreg",
        "version": 3,
        "snapshot_rho": "1/4",
        "delta": 1e-9,
        "display_threshold": 10,
        "tables": [
            {
                "id": "education_form",
                "title": "Children by form of education",
                "dimensions": ["education_form"],
                "rho": "1/32",
            },
            {
                "id": "education_form_by_sex",
                "title": "Children by form of education and sex",
                "dimensions": ["education_form", "sex"],
                "rho": "0.03125",
            },
            {
                "id": "age_by_sex",
                "title": "Children by age band and sex",
                "dimensions": ["age_band", "sex"],
                "rho": "1/16",
            },
        ],
    }


@pytest.fixture
def catalogue() -> Catalogue:
    """The small valid catalogue, validated."""
    return parse_catalogue(authored())


@pytest.fixture
def key() -> SigningKey:
    """A statistics-authority signing key."""
    return SigningKey.generate()


def refusal(data: Data) -> InvalidInput:
    """The InvalidInput raised for ``data`` (fails the test if it validates)."""
    with pytest.raises(InvalidInput) as caught:
        parse_catalogue(data)
    return caught.value


def fields(exc: InvalidInput) -> list[str]:
    """The fields named by an error's violations."""
    return [v.field for v in exc.violations]


# --- validation --------------------------------------------------------------------------


def test_authored_catalogue_parses_to_exact_fractions(catalogue: Catalogue) -> None:
    """ρ texts become exact fractions; a decimal is read exactly, and the total is exact."""
    assert [t.rho for t in catalogue.tables] == [Fraction(1, 32), Fraction(1, 32), Fraction(1, 16)]
    assert catalogue.total_rho == Fraction(1, 8)
    assert catalogue.tables[1].dimensions == ("education_form", "sex")


def _set(path: tuple[Any, ...], value: Any) -> Callable[[Data], None]:
    def change(data: Data) -> None:
        target: Any = data
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value

    return change


DIMS = "dimensions"
INVALID: list[tuple[str, tuple[Any, ...], Any, str]] = [
    ("unknown dimension", ("tables", 1, DIMS), ["sex", "colour"], "tables.1.dimensions.1"),
    ("region", ("tables", 0, DIMS), ["region"], "tables.0.dimensions.0"),
    ("district", ("tables", 2, DIMS), ["sex", "district"], "tables.2.dimensions.1"),
    ("repeated dimension", ("tables", 0, DIMS), ["sex", "sex"], "tables.0.dimensions"),
    ("four dimensions", ("tables", 0, DIMS), list(TABLE_DIMENSIONS[:4]), "tables.0.dimensions"),
    ("no dimension", ("tables", 0, DIMS), [], "tables.0.dimensions"),
    ("duplicate id", ("tables", 2, "id"), "education_form", "tables.2.id"),
    (
        "same set, other order",
        ("tables", 2, DIMS),
        ["sex", "education_form"],
        "tables.2.dimensions",
    ),
    ("over the cap", ("snapshot_rho",), "1/10", "tables"),
    ("rho text", ("tables", 0, "rho"), "a little", "tables.0.rho"),
    ("rho zero", ("tables", 0, "rho"), "0", "tables.0.rho"),
    ("rho negative", ("tables", 0, "rho"), -0.5, "tables.0.rho"),
    ("rho bool", ("tables", 0, "rho"), True, "tables.0.rho"),
    ("snapshot rho text", ("snapshot_rho",), "1/0", "snapshot_rho"),
    ("bad id", ("tables", 1, "id"), "Education Form", "tables.1.id"),
    ("long title", ("tables", 1, "title"), "x" * 201, "tables.1.title"),
    ("control in title", ("tables", 1, "title"), "a\x1bb", "tables.1.title"),
    ("bad federation", ("federation",), "AZ Childreg", "federation"),
    ("version zero", ("version",), 0, "version"),
    ("version bool", ("version",), True, "version"),
    ("delta too big", ("delta",), 0.01, "delta"),
    ("delta zero", ("delta",), 0.0, "delta"),
    ("threshold", ("display_threshold",), 1001, "display_threshold"),
    ("no tables", ("tables",), [], "tables"),
    ("unknown key", ("colour",), "blue", "colour"),
]


@pytest.mark.parametrize(
    ("path", "value", "field"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid_catalogue_is_refused_naming_the_field(
    path: tuple[Any, ...], value: Any, field: str
) -> None:
    """Each kind of invalid catalogue raises InvalidInput with a violation on that field."""
    data = authored()
    _set(path, value)(data)
    assert field in fields(refusal(data))


def test_geography_is_refused_with_the_reason() -> None:
    """Region as a dimension is refused, saying every table is published by region anyway."""
    data = authored()
    data["tables"][0]["dimensions"] = ["region"]
    problems = [v.problem for v in refusal(data).violations]
    assert any("published for the nation and for each region" in p for p in problems)


def test_each_problem_is_its_own_violation() -> None:
    """A repeated id, a repeated set and an exceeded cap are three violations, not one."""
    data = authored()
    data["tables"].append({**data["tables"][0], "title": "again"})
    data["snapshot_rho"] = "1/8"
    assert sorted(fields(refusal(data))) == ["tables", "tables.3.dimensions", "tables.3.id"]


def test_violations_do_not_echo_values() -> None:
    """A bad value never appears in the refusal's message or violations."""
    data = authored()
    data["tables"][0]["id"] = "ZZSECRETZZ"
    data["tables"][1]["dimensions"] = ["ZZOTHERZZ"]
    exc = refusal(data)
    text = str(exc) + " ".join(str(v) for v in exc.violations)
    assert "ZZSECRETZZ" not in text
    assert "ZZOTHERZZ" not in text


def test_cap_may_be_spent_exactly() -> None:
    """Tables that add up to exactly the cap are allowed (exact fractions, no rounding)."""
    data = authored()
    data["snapshot_rho"] = "0.125"
    assert parse_catalogue(data).total_rho == Fraction(1, 8)


# --- lookup and accounting ---------------------------------------------------------------


def test_table_for_finds_the_set_in_any_order(catalogue: Catalogue) -> None:
    """Dimensions in another order name the same table."""
    assert catalogue.table_for(["sex", "education_form"]).id == "education_form_by_sex"
    assert catalogue.table_for(("sex", "age_band")).id == "age_by_sex"
    assert catalogue.table("age_by_sex").dimensions == ("age_band", "sex")


def test_unknown_set_is_refused_with_a_message_that_depends_only_on_the_question(
    catalogue: Catalogue,
) -> None:
    """The refusal names the asked dimensions (sorted) and nothing else of the catalogue."""
    other = parse_catalogue(
        {**authored(), "federation": "other", "tables": authored()["tables"][:1]}
    )
    messages = set()
    for cat in (catalogue, other):
        for question in (["sex", "care_setting"], ["care_setting", "sex"]):
            with pytest.raises(InvalidInput) as caught:
                cat.table_for(question)
            messages.add(str(caught.value))
    assert messages == {
        "no catalogue table has the dimensions care_setting, sex; "
        "`childreg stats catalogue show` lists the tables"
    }


def test_unknown_table_id_and_repeated_dimension_are_refused(catalogue: Catalogue) -> None:
    """An unknown id, a repeated dimension, or geography as a question is InvalidInput."""
    with pytest.raises(InvalidInput, match="no catalogue table has the id"):
        catalogue.table("nope")
    with pytest.raises(InvalidInput, match="must not repeat"):
        catalogue.table_for(["sex", "sex"])
    with pytest.raises(InvalidInput, match="region"):
        catalogue.table_for(["region"])


def test_costs_follow_the_zcdp_accounting(catalogue: Catalogue) -> None:
    """ρ = 1/32 gives σ² = 16, σ = 4, a ±8 margin; cells follow the code lists."""
    cost = catalogue.table("education_form_by_sex").cost(catalogue.delta)
    assert cost.sigma_squared == Fraction(16)
    assert (cost.sigma, cost.margin95, cost.cells) == (4.0, 8, 22)
    assert 1.0 < cost.epsilon < 2.0
    assert catalogue.table("age_by_sex").cost(catalogue.delta).sigma_squared == 8


def test_canonical_bytes_are_compact_sorted_and_exact(catalogue: Catalogue) -> None:
    """Canonical JSON: sorted keys, no spaces, exact ρ strings, author's dimension order."""
    raw = catalogue.canonical_bytes()
    obj = json.loads(raw)
    assert raw == json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    assert b'": ' not in raw
    assert list(obj) == sorted(obj)
    assert obj["tables"][1]["rho"] == "1/32"
    assert obj["tables"][2]["dimensions"] == ["age_band", "sex"]
    assert len(catalogue.digest()) == 64


# --- signing -----------------------------------------------------------------------------


def test_sign_and_verify_round_trip(catalogue: Catalogue, key: SigningKey) -> None:
    """A signed catalogue verifies against the authority's key and comes back equal."""
    blob = sign_catalogue(catalogue, key)
    back = verify_catalogue(blob, key.verify_key, federation="test.childreg")
    assert back == catalogue
    assert back.canonical_bytes() == catalogue.canonical_bytes()
    assert json.loads(blob)["key_id"] == key_id(key.verify_key)


def test_signing_is_deterministic(catalogue: Catalogue, key: SigningKey) -> None:
    """The same catalogue and key give the same bytes, also after a parse round trip."""
    again = parse_catalogue(json.loads(catalogue.canonical_bytes()))
    assert sign_catalogue(catalogue, key) == sign_catalogue(catalogue, key)
    assert sign_catalogue(again, key) == sign_catalogue(catalogue, key)


TAMPERS: list[tuple[str, Callable[[Data], None]]] = [
    ("rho", _set(("tables", 0, "rho"), "1/8")),
    ("dimension", _set(("tables", 1, "dimensions"), ["education_form", "age_band"])),
    ("dimension order", _set(("tables", 1, "dimensions"), ["sex", "education_form"])),
    ("id", _set(("tables", 0, "id"), "education")),
    ("title", _set(("tables", 0, "title"), "Something else")),
    ("cap", _set(("snapshot_rho",), "1")),
    ("version", _set(("version",), 4)),
    ("invalid content", _set(("tables", 0, "dimensions"), ["region"])),
]


@pytest.mark.parametrize("change", [t[1] for t in TAMPERS], ids=[t[0] for t in TAMPERS])
def test_a_tampered_catalogue_is_refused(
    catalogue: Catalogue, key: SigningKey, change: Callable[[Data], None]
) -> None:
    """Changing anything signed (even into invalid content) is PermissionDenied."""
    doc = json.loads(sign_catalogue(catalogue, key))
    change(doc["catalogue"])
    with pytest.raises(PermissionDenied, match="does not verify"):
        verify_catalogue(json.dumps(doc).encode(), key.verify_key)


def test_a_flipped_signature_byte_is_refused(catalogue: Catalogue, key: SigningKey) -> None:
    """One changed bit of the signature is PermissionDenied."""
    doc = json.loads(sign_catalogue(catalogue, key))
    sig = bytearray(base64.b64decode(doc["signature"]))
    sig[10] ^= 0x01
    doc["signature"] = base64.b64encode(bytes(sig)).decode()
    with pytest.raises(PermissionDenied):
        verify_catalogue(json.dumps(doc).encode(), key.verify_key)


def test_another_authoritys_key_is_refused(catalogue: Catalogue, key: SigningKey) -> None:
    """Signed by another key: refused, also when the file claims the pinned key's id."""
    other = SigningKey.generate()
    blob = sign_catalogue(catalogue, other)
    with pytest.raises(PermissionDenied, match="another key"):
        verify_catalogue(blob, key.verify_key)
    doc = json.loads(blob)
    doc["key_id"] = key_id(key.verify_key)
    with pytest.raises(PermissionDenied, match="does not verify"):
        verify_catalogue(json.dumps(doc).encode(), key.verify_key)


def test_wrong_federation_is_refused(catalogue: Catalogue, key: SigningKey) -> None:
    """A catalogue of another federation is PermissionDenied when the federation is pinned."""
    with pytest.raises(PermissionDenied, match=r"for federation test\.childreg, not az\.childreg"):
        verify_catalogue(sign_catalogue(catalogue, key), key.verify_key, federation="az.childreg")


@pytest.mark.parametrize(
    "blob",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'{"format": "childreg-catalogue/1"}',
        b"[" * 100_000,
        b" " * (256 * 1024 + 1),
    ],
    ids=["text", "bytes", "list", "keys", "deep", "large"],
)
def test_malformed_files_are_invalid_input(blob: bytes, key: SigningKey) -> None:
    """Bad JSON, a wrong shape or an oversized file is InvalidInput, never a crash."""
    with pytest.raises(InvalidInput):
        verify_catalogue(blob, key.verify_key)


def test_wrong_format_and_nan_are_invalid_input(catalogue: Catalogue, key: SigningKey) -> None:
    """An unknown format name or a NaN in the content is InvalidInput."""
    doc = json.loads(sign_catalogue(catalogue, key))
    with pytest.raises(InvalidInput, match="childreg-catalogue/1"):
        verify_catalogue(json.dumps({**doc, "format": "other/1"}).encode(), key.verify_key)
    doc["catalogue"]["delta"] = float("nan")
    with pytest.raises(InvalidInput):
        verify_catalogue(json.dumps(doc).encode(), key.verify_key)


def test_validly_signed_invalid_content_is_invalid_input(key: SigningKey) -> None:
    """Content that the authority signed but that breaks the rules is refused as InvalidInput."""
    content = authored()
    content["snapshot_rho"] = "1/100"
    body = json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
    doc = {
        "format": "childreg-catalogue/1",
        "catalogue": content,
        "key_id": key_id(key.verify_key),
        "signature": base64.b64encode(key.sign(SIGNING_CONTEXT + body).signature).decode(),
    }
    with pytest.raises(InvalidInput) as caught:
        verify_catalogue(json.dumps(doc).encode(), key.verify_key)
    assert "tables" in fields(caught.value)


def test_read_signed_catalogue_from_a_file(
    catalogue: Catalogue, key: SigningKey, tmp_path: Path
) -> None:
    """A signed file on disk verifies; a missing file is InvalidInput."""
    path = tmp_path / "catalogue.signed.json"
    path.write_bytes(sign_catalogue(catalogue, key))
    assert read_signed_catalogue(path, key.verify_key) == catalogue
    with pytest.raises(InvalidInput):
        read_signed_catalogue(tmp_path / "missing.json", key.verify_key)


dimension_sets = st.lists(
    st.lists(st.sampled_from(TABLE_DIMENSIONS), min_size=1, max_size=3, unique=True),
    min_size=1,
    max_size=8,
    unique_by=frozenset,
)


@settings(max_examples=40, deadline=None)
@given(sets=dimension_sets, denominators=st.lists(st.integers(8, 10**6), min_size=8, max_size=8))
def test_any_valid_catalogue_round_trips(sets: list[list[str]], denominators: list[int]) -> None:
    """Every valid catalogue signs and verifies to itself with identical canonical bytes."""
    tables = [
        {"id": f"t{i}", "title": f"Table {i}", "dimensions": dims, "rho": f"1/{denominators[i]}"}
        for i, dims in enumerate(sets)
    ]
    data = {**authored(), "snapshot_rho": "1", "tables": tables}
    catalogue = parse_catalogue(data)
    key = SigningKey(bytes(32))
    assert verify_catalogue(sign_catalogue(catalogue, key), key.verify_key) == catalogue


# --- authority keys ----------------------------------------------------------------------


def test_authority_key_files(tmp_path: Path) -> None:
    """The secret key is 0600, the public key one line; both load and match."""
    secret, public = generate_authority_key(tmp_path / "authority")
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    line = public.read_text(encoding="ascii")
    assert line.startswith("ed25519:")
    assert line.count("\n") == 1
    signing = load_signing_key(secret)
    assert bytes(load_verify_key(public)) == bytes(signing.verify_key)
    assert bytes(load_verify_key(line)) == bytes(signing.verify_key)
    assert public_key_text(signing.verify_key) == line.strip()


def test_authority_key_is_never_overwritten(tmp_path: Path) -> None:
    """A second generate in the same directory is refused and leaves the key as it was."""
    secret, _ = generate_authority_key(tmp_path)
    before = secret.read_bytes()
    with pytest.raises(AlreadyExists):
        generate_authority_key(tmp_path)
    assert secret.read_bytes() == before


def test_key_problems_give_advice_and_no_key_bytes(tmp_path: Path) -> None:
    """Missing, swapped, garbled or exposed key files raise KeyProblem with a hint."""
    secret, public = generate_authority_key(tmp_path)
    seed_text = secret.read_text(encoding="ascii").strip().split(":", 1)[1]
    problems: list[KeyProblem] = []
    for attempt in (
        lambda: load_signing_key(tmp_path / "missing.key"),
        lambda: load_signing_key(public),
        lambda: load_verify_key(secret),
        lambda: load_verify_key(tmp_path / "missing.pub"),
        lambda: load_verify_key("ed25519:not-base64!"),
    ):
        with pytest.raises(KeyProblem) as caught:
            attempt()
        problems.append(caught.value)
    garbled = tmp_path / "garbled.key"
    garbled.write_bytes(b"\x00\x01garbage")
    garbled.chmod(0o600)
    with pytest.raises(KeyProblem):
        load_signing_key(garbled)
    secret.chmod(0o640)
    with pytest.raises(KeyProblem, match="other users"):
        load_signing_key(secret)
    assert all(p.hint for p in problems)
    assert not any(seed_text in f"{p} {p.hint}" for p in problems)


# --- the example and the CLI -------------------------------------------------------------


def test_the_example_catalogue_is_valid() -> None:
    """deploy/config/catalogue.toml: 8 tables of 1/32 (σ = 4), exactly the 1/4 cap, ε ≈ 4.4."""
    catalogue = load_catalogue(EXAMPLE)
    assert (catalogue.federation, catalogue.version) == ("az.childreg", 1)
    assert len(catalogue.tables) == 8
    assert {t.rho for t in catalogue.tables} == {Fraction(1, 32)}
    assert catalogue.total_rho == catalogue.snapshot_rho == Fraction(1, 4)
    assert all(row["sigma"] == 4 and row["margin95"] == 8 for row in catalogue_rows(catalogue))
    assert 4.3 < catalogue.snapshot_epsilon() < 4.5


def test_a_yaml_catalogue_loads_the_same(tmp_path: Path, catalogue: Catalogue) -> None:
    """The authoring format may be YAML; it means the same catalogue."""
    path = tmp_path / "catalogue.yaml"
    path.write_text(yaml.safe_dump(authored()), encoding="utf-8")
    assert load_catalogue(path).canonical_bytes() == catalogue.canonical_bytes()


def _invoke(args: list[str]) -> tuple[int, str, BaseException | None]:
    result = CliRunner().invoke(app, args)
    code = result.exception.code if isinstance(result.exception, CliError) else result.exit_code
    return code, result.output, result.exception


def test_cli_init_sign_show_and_verify(tmp_path: Path) -> None:
    """authority-init, sign, show --json and verify work together and never print the key."""
    keys = tmp_path / "authority"
    source = tmp_path / "catalogue.toml"
    source.write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    signed = tmp_path / "catalogue.signed.json"
    outputs = []
    for args in (
        ["authority-init", "--out", str(keys)],
        ["sign", str(source), "--key", str(keys / "authority.key"), "--out", str(signed)],
        ["verify", str(signed), "--authority", str(keys / "authority.pub")],
        ["show", str(signed), "--authority", str(keys / "authority.pub")],
    ):
        code, output, exc = _invoke(args)
        assert code == 0, (output, exc)
        outputs.append(output)
    code, output, _ = _invoke(
        ["show", str(signed), "--authority", str(keys / "authority.pub"), "--json"]
    )
    assert code == 0
    shown = json.loads(output)
    assert shown["snapshot_rho"] == shown["total_rho"] == "1/4"
    assert [t["id"] for t in shown["tables"]][:2] == ["education_form", "education_form_by_sex"]
    assert {(t["rho"], t["sigma_squared"], t["margin95"]) for t in shown["tables"]} == {
        ("1/32", "16", 8)
    }
    seed_text = (keys / "authority.key").read_text(encoding="ascii").strip().split(":", 1)[1]
    assert not any(seed_text in o for o in [*outputs, output])
    assert "key id" in outputs[0]


def test_cli_refuses_the_wrong_key_without_a_traceback(
    tmp_path: Path, catalogue: Catalogue, key: SigningKey
) -> None:
    """verify with another authority's key exits with the 'refused' code and one line."""
    signed = tmp_path / "catalogue.signed.json"
    signed.write_bytes(sign_catalogue(catalogue, key))
    other = public_key_text(SigningKey.generate().verify_key)
    code, output, exc = _invoke(["verify", str(signed), "--authority", other, "--json"])
    assert code == EXIT_REFUSED
    assert isinstance(exc, CliError)
    assert exc.hint
    assert "Traceback" not in output
    code, _, _ = _invoke(["verify", str(signed), "--authority", public_key_text(key.verify_key)])
    assert code == 0


def test_cli_reports_invalid_sources_and_key_problems(tmp_path: Path) -> None:
    """sign with an invalid source is 'rejected' with the fields listed; a bad key is exit 4."""
    keys = tmp_path / "k"
    assert _invoke(["authority-init", "--out", str(keys)])[0] == 0
    bad = tmp_path / "bad.yaml"
    data = authored()
    data["tables"][0]["dimensions"] = ["district"]
    bad.write_text(yaml.safe_dump(data), encoding="utf-8")
    out = tmp_path / "out.json"
    code, _, exc = _invoke(
        ["sign", str(bad), "--key", str(keys / "authority.key"), "--out", str(out)]
    )
    assert code == EXIT_REJECTED
    assert isinstance(exc, CliError)
    assert [v.field for v in exc.violations] == ["tables.0.dimensions.0"]
    assert not out.exists()
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(authored()), encoding="utf-8")
    code, _, _ = _invoke(
        ["sign", str(good), "--key", str(keys / "authority.pub"), "--out", str(out)]
    )
    assert code == EXIT_KEY


def test_cli_authority_init_refuses_to_overwrite(tmp_path: Path) -> None:
    """A second authority-init into the same directory fails and keeps the first key."""
    assert _invoke(["authority-init", "--out", str(tmp_path)])[0] == 0
    before = (tmp_path / "authority.key").read_bytes()
    code, output, exc = _invoke(["authority-init", "--out", str(tmp_path)])
    assert code == EXIT_REJECTED
    assert isinstance(exc, CliError)
    assert "never overwritten" in str(exc)
    assert (tmp_path / "authority.key").read_bytes() == before
    assert stat.S_IMODE((tmp_path / "authority.key").stat().st_mode) == 0o600
    assert "Traceback" not in output


@pytest.mark.parametrize("command", ["authority-init", "sign", "show", "verify"])
def test_every_command_has_help(command: str) -> None:
    """Each catalogue command answers --help."""
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output
