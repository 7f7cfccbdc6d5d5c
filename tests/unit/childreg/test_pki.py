"""The federation CA: identities carry one SPIFFE URI, the right key usages, private keys 0600."""

from __future__ import annotations

import datetime as dt
import json
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from childreg.errors import InvalidInput, KeyProblem
from childreg.pki import CertificateAuthority, IdentityFiles, SpiffeId, spiffe_id_of
from tests.conftest import FEDERATION, IssueFn


def load(files: IdentityFiles) -> x509.Certificate:
    return x509.load_pem_x509_certificate(files.cert.read_bytes())


def test_identity_has_exactly_one_spiffe_uri(issue: IssueFn) -> None:
    """An issued certificate names its party as spiffe://federation/role/id and nothing else."""
    cert = load(issue("school", "school-17"))
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
        f"spiffe://{FEDERATION}/school/school-17"
    ]
    assert spiffe_id_of(cert) == SpiffeId(FEDERATION, "school", "school-17")


def test_server_roles_get_server_auth_and_clients_do_not(issue: IssueFn) -> None:
    """Nodes get serverAuth and clientAuth; a statistician gets clientAuth only."""
    node_eku = load(issue("node", "n1")).extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    stat_eku = load(issue("statistician", "s1")).extensions.get_extension_for_class(
        x509.ExtendedKeyUsage
    )
    assert set(node_eku.value) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert list(stat_eku.value) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_private_keys_are_owner_only(issue: IssueFn, ca: CertificateAuthority) -> None:
    """Identity keys are written with mode 0600."""
    files = issue("auditor", "a1")
    assert stat.S_IMODE(files.key.stat().st_mode) == 0o600


def test_ca_refuses_to_overwrite(tmp_path: Path) -> None:
    """Creating a CA where one exists fails and leaves the old key in place."""
    CertificateAuthority.create("x.childreg", tmp_path)
    before = (tmp_path / "ca.key").read_bytes()
    with pytest.raises(InvalidInput):
        CertificateAuthority.create("x.childreg", tmp_path)
    assert (tmp_path / "ca.key").read_bytes() == before


def test_ca_round_trips_through_disk(tmp_path: Path) -> None:
    """A CA loaded from its directory keeps its federation name and can issue."""
    CertificateAuthority.create("y.childreg", tmp_path / "ca")
    loaded = CertificateAuthority.load(tmp_path / "ca")
    files = loaded.issue("coordinator", "national", tmp_path / "c")
    assert files.spiffe_id() == SpiffeId("y.childreg", "coordinator", "national")


def test_missing_ca_is_a_key_problem_with_a_hint(tmp_path: Path) -> None:
    """Loading a CA from an empty directory says so and what to do next."""
    with pytest.raises(KeyProblem) as info:
        CertificateAuthority.load(tmp_path)
    assert "pki init" in info.value.hint


@pytest.mark.parametrize(
    ("role", "ident"), [("wizard", "x"), ("school", "Upper"), ("school", "a b"), ("school", "")]
)
def test_bad_role_or_id_is_refused(
    ca: CertificateAuthority, tmp_path: Path, role: str, ident: str
) -> None:
    """Unknown roles and ids outside [a-z0-9._-] are refused before anything is written."""
    with pytest.raises(InvalidInput):
        ca.issue(role, ident, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "uri",
    [
        "spiffe://f/school",
        "https://f/school/x",
        "spiffe://f/wizard/x",
        "spiffe://f/school/x/y",
        "spiffe://f/school/x\n",
    ],
)
def test_malformed_spiffe_ids_are_refused(uri: str) -> None:
    """Only spiffe://federation/<known role>/<id> parses."""
    with pytest.raises(InvalidInput):
        SpiffeId.parse(uri)


def test_leftover_temp_files_or_symlinks_are_not_written_through(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    """A planted world-readable tls.key.tmp or symlink does not receive the new private key."""
    out = tmp_path / "id"
    out.mkdir()
    decoy = tmp_path / "decoy"
    decoy.write_bytes(b"")
    (out / "tls.key.tmp").symlink_to(decoy)
    files = ca.issue("school", "s-9", out)
    assert decoy.read_bytes() == b""
    assert stat.S_IMODE(files.key.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in files.key.read_bytes()


def test_pki_commands_issue_list_and_revoke(tmp_path: Path) -> None:
    """`pki init`, `issue`, `revoke`, `list --json` work together and never print a key."""
    from typer.testing import CliRunner

    from tools.cli.main import app

    runner = CliRunner()
    ca_dir = str(tmp_path / "ca")
    steps = [
        ["pki", "init", "--federation", "cli.childreg", "--ca-dir", ca_dir],
        ["pki", "issue", "school", "school-1", "--out", str(tmp_path / "s1"), "--ca-dir", ca_dir],
        ["pki", "issue", "school", "school-2", "--out", str(tmp_path / "s2"), "--ca-dir", ca_dir],
        ["pki", "revoke", "--cert", str(tmp_path / "s1" / "tls.crt"), "--ca-dir", ca_dir],
    ]
    outputs = []
    for argv in steps:
        result = runner.invoke(app, argv)
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    listed = runner.invoke(app, ["pki", "list", "--ca-dir", ca_dir, "--json"])
    rows = json.loads(listed.stdout)
    assert [(r["spiffe_id"], r["revoked"]) for r in rows] == [
        ("spiffe://cli.childreg/school/school-1", True),
        ("spiffe://cli.childreg/school/school-2", False),
    ]
    assert not any("PRIVATE KEY" in out for out in [*outputs, listed.output])


@pytest.mark.parametrize(
    ("role", "days"),
    [("node", 365), ("coordinator", 365), ("witness", 365), ("school", 90), ("auditor", 90),
     ("statistician", 90), ("department-staff", 90)],
)  # fmt: skip
def test_default_lifetime_is_the_roles(tmp_path: Path, role: str, days: int) -> None:
    """Without a validity, a service's certificate lasts a year and a person's 90 days."""
    ca = CertificateAuthority.create("l.childreg", tmp_path / "ca")
    files = ca.issue(role, "baku.x" if role == "department-staff" else "x", tmp_path / "id")
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime == dt.timedelta(days=days, minutes=5)  # not_before is 5 minutes back


def test_certificate_never_outlives_the_ca(tmp_path: Path) -> None:
    """A certificate asked for longer than the CA lasts ends when the CA does."""
    ca = CertificateAuthority.create("m.childreg", tmp_path / "ca", validity=dt.timedelta(days=30))
    files = ca.issue("node", "baku", tmp_path / "id", validity=dt.timedelta(days=365))
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    assert cert.not_valid_after_utc == ca.cert.not_valid_after_utc
