"""Consent and extracts end to end: department staff, two schools and an auditor, real
processes over mutual TLS, the node's log witnessed (extracts fail closed otherwise).

The consented school gets exactly the purpose's fields and nothing of the diagnosis,
national id or family; the other school cannot use the grant; after withdrawal the grant
stops working at once; every extract and denial is one leaf that `childreg audit search`
finds with its grant reference and outcome.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from childreg import csvformat
from childreg.models import ImportRecord
from childreg.profile import embedded
from node.consent.extract import POLICY
from tests.e2e.conftest import cli, trim
from tools.clients import importer
from tools.dev.directory import department_entry, school_entry
from tools.dev.federation import LocalFederation
from tools.dev.synth import DepartmentPlan

SCHOOL, OTHER = "school-7", "school-8"


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, synthetic: tuple[list[DepartmentPlan], list[Path]]
) -> Iterator[tuple[LocalFederation, ImportRecord, Path]]:
    """One witnessed department with 200 children; a child with diagnoses; two schools."""
    plans, files = synthetic
    root = tmp_path_factory.mktemp("extract")
    fed = LocalFederation(
        root / "fed",
        plans[:1],
        witness=True,
        node_settings={"audit_checkpoint_seconds": 0.2},
        schools=(SCHOOL, OTHER),
    )
    with fed:
        fed.setup()
        fed.issue_identity("school", SCHOOL)
        fed.issue_identity("school", OTHER)
        fed.start_nodes()
        csv_file = trim(files[0], root / "a.csv", 200)
        importer.import_file(fed.staff_endpoint(plans[0].id), csv_file)
        records = [r for r in csvformat.iter_rows(csv_file) if isinstance(r, ImportRecord)]
        child = next(
            r for r in records
            if r.assessment and r.assessment.diagnoses and r.child.national_id
        )  # fmt: skip
        fed.wait_witnessed(plans[0].id)  # extracts fail closed until the log is witnessed
        yield fed, child, root


def node_args(fed: LocalFederation, identity: Path) -> list[str]:
    node = fed.nodes[fed.departments[0].id]
    return ["--node", node.address, "--server-name", node.server_name, "--identity", str(identity)]


def school_id(fed: LocalFederation, ident: str) -> str:
    return f"spiffe://{fed.federation}/school/{ident}"


def test_consent_extract_withdraw_and_audit(
    world: tuple[LocalFederation, ImportRecord, Path], tmp_path: Path
) -> None:
    """Staff grant a consent, the school opens its extract with only the policy's fields,
    another school and a withdrawn grant are refused, and the auditor finds each attempt as one
    leaf."""
    fed, child, _ = world
    dept = fed.departments[0].id
    staff = fed.identity(f"staff-{dept}")
    today = dt.date.today()
    r = cli("consent", "grant", *node_args(fed, staff), "--child", child.child.child_id,
            "--guardian", "Leyla Mammadova", "--purpose", "iep_preparation",
            "--school", school_id(fed, SCHOOL), "--from", today.isoformat(),
            "--until", (today + dt.timedelta(days=30)).isoformat(), "--evidence", "form-17",
            "--language", "az", "--receipt-dir", str(tmp_path / "receipts"), "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    granted = json.loads(r.stdout)
    grant, consent_id = granted["grant"], granted["consent"]["consent_id"]
    receipt = next((tmp_path / "receipts").glob("*grant.html")).read_text()
    assert "Leyla Mammadova" in receipt
    assert consent_id in receipt
    plan = fed.departments[0]
    named = school_entry(embedded(), SCHOOL, plan.districts[0], 1)["names"]["az"]
    department = department_entry(embedded(), plan.id, plan.region, 1)["names"]["az"]
    assert named in receipt
    assert department in receipt
    assert "spiffe://" not in receipt
    assert next((tmp_path / "receipts").glob("*grant.pdf")).read_bytes().startswith(b"%PDF-")
    r = cli("node", "extract-key", "--config", str(fed.nodes[dept].config), "--json")
    node_key = json.loads(r.stdout)["extract_key"]
    school_key = tmp_path / "school.key"
    assert cli("extract", "keygen", "--out", str(school_key)).returncode == 0
    school = fed.identity(f"school-{SCHOOL}")
    sealed = tmp_path / "extract.bin"
    r = cli("extract", "request", "--grant", grant, *node_args(fed, school),
            "--key-file", str(school_key), "--out", str(sealed))  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = cli("extract", "open", str(sealed), "--key-file", str(school_key),
            "--node-key", node_key, "--audience", school_id(fed, SCHOOL), "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    opened = r.stdout
    fields = (
        json.loads(opened)["child"]
        if "child" in json.loads(opened)
        else json.loads(opened)["payload"]["child"]
    )
    assert set(fields) == set(POLICY["iep_preparation"])
    assert child.assessment is not None
    for withheld in (*child.assessment.diagnoses, child.child.national_id or "?",
                     child.child.family_name):  # fmt: skip
        assert withheld not in opened
    # The other school cannot use the grant; after withdrawal nobody can.
    other = fed.identity(f"school-{OTHER}")
    r = cli("extract", "request", "--grant", grant, *node_args(fed, other),
            "--key-file", str(school_key), "--out", str(tmp_path / "x.bin"))  # fmt: skip
    assert r.returncode == 7, r.stderr
    r = cli("consent", "withdraw", consent_id, *node_args(fed, staff), "--json")
    assert r.returncode == 0, r.stderr
    r = cli("extract", "request", "--grant", grant, *node_args(fed, school),
            "--key-file", str(school_key), "--out", str(tmp_path / "y.bin"))  # fmt: skip
    assert r.returncode == 7, r.stderr
    # Each extract and denial is exactly one leaf, found by the auditor.
    auditor = fed.identity("auditor")
    r = cli("audit", "search", *node_args(fed, auditor), "--node-key",
            fed.audit_verifier_key(dept), "--action", "extract.disclose", "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    matches = json.loads(r.stdout)["matches"]
    assert [m["outcome"] for m in matches] == ["OK", "PERMISSION_DENIED", "PERMISSION_DENIED"]
    assert len({m["grant"] for m in matches}) == 1
    assert matches[0]["grant"]
    assert [m["actor"] for m in matches] == [school_id(fed, s) for s in (SCHOOL, OTHER, SCHOOL)]


def test_break_glass_needs_a_reason_and_is_in_the_auditors_report(
    world: tuple[LocalFederation, ImportRecord, Path],
) -> None:
    """An officer's emergency read: refused without a proper reason; with one, the record
    comes back and the auditor's report lists the access (the reason itself is not in any
    leaf)."""
    fed, child, _ = world
    dept = fed.departments[0].id
    staff = fed.identity(f"staff-{dept}")
    cid = child.child.child_id
    r = cli("consent", "break-glass", cid, "--reason", "urgent", *node_args(fed, staff))
    assert r.returncode == 6, r.stderr
    reason = "Child taken to hospital; the school nurse needs the supports now"
    r = cli("consent", "break-glass", cid, "--reason", reason, *node_args(fed, staff))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["child"]["child_id"] == cid
    auditor = fed.identity("auditor")
    r = cli("audit", "report", *node_args(fed, auditor), "--node-key",
            fed.audit_verifier_key(dept), "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "breakglass" in r.stdout
    assert "hospital" not in r.stdout
