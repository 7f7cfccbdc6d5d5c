"""`childreg child …`: department staff's daily work on their children's records.

Each command is a few lines over one client function (tools/clients/records.py), which
calls the node's RecordsService as the staff member's identity; each call is one audit
leaf at the node. Values go to the node as typed: the node validates every one (codes
against its own country profile) and a refusal names each bad field (exit 6). On a
terminal, a required value left out is asked for; in a script, its absence is an error
naming the option (exit 2). A registration held back by likely duplicates exits 9.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from childreg.search import DuplicateCandidate, SearchHit
from tools.cli.console import err, out
from tools.cli.options import IdentityOpt, JsonOpt, NodeOpt, ServerNameOpt, TimeoutOpt
from tools.clients import records
from tools.clients.client import EXIT_HELD, EXIT_USAGE, CliError, Endpoint

app = typer.Typer(
    help="Find, register and record children (department staff).", no_args_is_help=True
)

IdArg = Annotated[
    str | None, typer.Argument(metavar="ID", help="The node's child id.", show_default=False)
]
Opt = Annotated[str | None, typer.Option(show_default=False)]
Many = Annotated[list[str] | None, typer.Option(show_default=False)]
ReasonOpt = Annotated[
    str | None,
    typer.Option(
        "--reason",
        help="Why a value already recorded is changed (kept sealed in the child's history).",
        show_default=False,
    ),
]


def on_terminal() -> bool:
    """Whether a person is typing (standard input is a terminal), so may be asked."""
    return sys.stdin.isatty()


def ask(**given: str | None) -> dict[str, str]:
    """The required values ``given`` (option name -> value; ``child_id`` is the ID
    argument), asking on a terminal for each one missing; off a terminal, CliError naming
    every missing one."""
    missing = [_flag(k) for k, v in given.items() if not v]
    if missing and not on_terminal():
        raise CliError(
            "missing " + ", ".join(missing),
            code=EXIT_USAGE,
            hint="give them on the command line (see --help), or run on a terminal to be asked",
        )
    return {k: v or str(typer.prompt(k.replace("_", " "))) for k, v in given.items()}


def _flag(name: str) -> str:
    return "ID" if name == "child_id" else "--" + name.replace("_", "-")


def _hits_table(
    hits: list[SearchHit], reasons: list[str] | None = None, title: str | None = None
) -> Table:
    """Found children, nothing elided (staff pick the right child by these values)."""
    last = "why shown" if reasons is not None else "score"
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    for name in ("child id", "name", "born", "district", "school", "closed", last):
        table.add_column(name, overflow="fold")
    for i, h in enumerate(hits):
        table.add_row(
            h.child_id, f"{h.given_name} {h.family_name}", h.date_of_birth.isoformat(),
            h.district, h.school or "", "closed" if h.closed else "",
            reasons[i] if reasons is not None else f"{h.score:.2f}",
        )  # fmt: skip
    return table


def _candidates(duplicates: tuple[DuplicateCandidate, ...], title: str) -> Table:
    hits = [d.hit for d in duplicates]
    return _hits_table(hits, [", ".join(d.reasons) for d in duplicates], title)


@app.command("find")
def find(
    node: NodeOpt,
    identity: IdentityOpt,
    name: Annotated[str | None, typer.Option(help="Any part of the name, any script.")] = None,
    born: Annotated[str | None, typer.Option(help="Date of birth, YYYY-MM-DD.")] = None,
    district: Opt = None,
    school: Annotated[str | None, typer.Option(help="Institution of the latest placement.")] = None,
    national_id: Annotated[str | None, typer.Option(help="Exact national id.")] = None,
    include_closed: Annotated[bool, typer.Option(help="Closed records too.")] = False,
    page_size: Annotated[int, typer.Option(min=1, max=100)] = 20,
    page_token: Annotated[str | None, typer.Option(help="From the previous page.")] = None,
    server_name: ServerNameOpt = None,
    timeout: TimeoutOpt = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """Find children by name (prefix or fuzzy, Latin or Cyrillic), birth date, district,
    school or national id; best matches first, a page at a time.

    \b
    Example:
      childreg child find --name "Aysel Mammadova" --born 2016-04-02
    """
    query: records.SearchFields = {
        "name": name or "", "date_of_birth": born or "", "district": district or "",
        "school": school or "", "national_id": national_id or "",
        "include_closed": include_closed, "page_size": page_size, "page_token": page_token or "",
    }  # fmt: skip
    if not (name or born or district or school or national_id):
        if not on_terminal():
            raise CliError(
                "give at least one of --name, --born, --district, --school, --national-id",
                code=EXIT_USAGE,
            )
        query["name"] = ask(name=None)["name"]
    page = records.find_children(Endpoint(node, identity, server_name, timeout), query)
    if as_json:
        typer.echo(page.model_dump_json())
        return
    out.print(_hits_table(list(page.hits)))
    if page.next_page_token:
        err.print(f"more: --page-token {page.next_page_token}")


@app.command("show")
def show(
    node: NodeOpt,
    identity: IdentityOpt,
    child_id: IdArg = None,
    server_name: ServerNameOpt = None,
    timeout: TimeoutOpt = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """Print everything the node holds about one child (JSON; the same with --json).

    \b
    Example:
      childreg child show C000123 --json
    """
    cid = ask(child_id=child_id)["child_id"]
    view = records.read_child(Endpoint(node, identity, server_name, timeout), cid)
    typer.echo(view.model_dump_json() if as_json else view.model_dump_json(indent=2))


@app.command("register")
def register(
    node: NodeOpt,
    identity: IdentityOpt,
    child_id: IdArg = None,
    given_name: Opt = None,
    family_name: Opt = None,
    born: Annotated[str | None, typer.Option(help="Date of birth, YYYY-MM-DD.")] = None,
    sex: Opt = None,
    district: Annotated[str | None, typer.Option(help="District code of the profile.")] = None,
    national_id: Opt = None,
    guardian_name: Opt = None,
    guardian_phone: Opt = None,
    not_duplicate: Annotated[
        str | None,
        typer.Option(metavar="REASON", help="Why the child is none of the likely duplicates."),
    ] = None,
    server_name: ServerNameOpt = None,
    timeout: TimeoutOpt = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """Register a new child. If the node finds likely duplicates (same national id, similar
    names in any script, a close birth date), nothing is registered: they are listed and
    the command exits 9; use the existing child, or run again with --not-duplicate REASON.

    \b
    Example:
      childreg child register C000124 --given-name Aysel --family-name Mammadova \\
        --born 2016-04-02 --sex female --district nasimi
    """
    need = ask(
        child_id=child_id, given_name=given_name, family_name=family_name, born=born, sex=sex,
        district=district,
    )  # fmt: skip
    child: records.ChildFields = {
        "child_id": need["child_id"], "given_name": need["given_name"],
        "family_name": need["family_name"], "date_of_birth": need["born"], "sex": need["sex"],
        "district": need["district"], "national_id": national_id or "",
        "guardian_name": guardian_name or "", "guardian_phone": guardian_phone or "",
    }  # fmt: skip
    done = records.register_child(
        Endpoint(node, identity, server_name, timeout), child, not_duplicate_reason=not_duplicate
    )
    if as_json:
        typer.echo(done.model_dump_json())
    elif done.duplicates:
        title = "likely duplicates held already" if not done.registered else "set aside"
        out.print(_candidates(done.duplicates, title))
    if not done.registered:
        n = len(done.duplicates)
        raise CliError(
            f"not registered: {n} likely duplicate{'s' if n != 1 else ''} held already",
            code=EXIT_HELD,
            hint="use the existing child if it is one of them, or run again with "
            "--not-duplicate REASON saying why it is none of them",
        )
    if not as_json:
        err.print(f"registered {need['child_id']}")


@app.command("assess")
def assess(
    node: NodeOpt,
    identity: IdentityOpt,
    child_id: IdArg = None,
    date: Annotated[str | None, typer.Option(help="Assessment date, YYYY-MM-DD.")] = None,
    commission: Opt = None,
    band: Annotated[str | None, typer.Option(help="Impairment band code.")] = None,
    icf: Annotated[list[str] | None, typer.Option(help="ICF-CY code, e.g. d140.2.")] = None,
    diagnosis: Annotated[list[str] | None, typer.Option(help="ICD-10 code, e.g. F84.0.")] = None,
    functioning: Annotated[
        list[str] | None, typer.Option(metavar="DOMAIN=LEVEL", help="A domain's difficulty.")
    ] = None,
    recommended_form: Opt = None,
    support: Many = None,
    accommodation: Many = None,
    next_review: Annotated[str | None, typer.Option(help="YYYY-MM-DD.")] = None,
    server_name: ServerNameOpt = None,
    timeout: TimeoutOpt = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """Record a PMPC assessment of a child (options marked repeatable may be given often).

    \b
    Example:
      childreg child assess C000124 --date 2024-02-01 --commission "Baku PMPC" \\
        --icf d140.2 --functioning learning=some_difficulty --support speech_therapy
    """
    need = ask(child_id=child_id, date=date, commission=commission)
    pairs = [_pair(f) for f in functioning or ()]
    assessment: records.AssessmentFields = {
        "child_id": need["child_id"], "assessment_date": need["date"],
        "commission": need["commission"], "icf_codes": icf or [],
        "diagnoses": diagnosis or [], "supports": support or [],
        "accommodations": accommodation or [], "impairment_band": band or "",
        "recommended_form": recommended_form or "", "next_review": next_review or "",
    }  # fmt: skip
    records.record_assessment(Endpoint(node, identity, server_name, timeout), assessment, pairs)
    done(as_json, "assessment", need["child_id"])


def _pair(text: str) -> tuple[str, str]:
    domain, sep, level = text.partition("=")
    if not sep or not domain or not level:
        raise CliError("--functioning: expected DOMAIN=LEVEL", code=EXIT_USAGE)
    return domain.strip(), level.strip()


@app.command("place")
def place(
    node: NodeOpt,
    identity: IdentityOpt,
    child_id: IdArg = None,
    year: Annotated[str | None, typer.Option(help="Academic year, e.g. 2024/25.")] = None,
    form: Annotated[str | None, typer.Option(help="Form of education code.")] = None,
    institution: Opt = None,
    reason: ReasonOpt = None,
    server_name: ServerNameOpt = None,
    timeout: TimeoutOpt = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """Record where a child is educated in an academic year.

    Changing the placement already recorded for that year is a correction: give --reason
    (the old placement stays in the child's history).

    \b
    Example:
      childreg child place C000124 --year 2024/25 --form inclusive_class --institution "School 6"
    """
    need = ask(child_id=child_id, year=year, form=form)
    placement: records.PlacementFields = {
        "child_id": need["child_id"], "academic_year": need["year"],
        "education_form": need["form"], "institution": institution or "",
    }  # fmt: skip
    if reason:
        placement["reason"] = reason
    records.record_placement(Endpoint(node, identity, server_name, timeout), placement)
    done(as_json, "placement", need["child_id"])


@app.command("care")
def care(
    node: NodeOpt,
    identity: IdentityOpt,
    child_id: IdArg = None,
    setting: Annotated[str | None, typer.Option(help="Care setting code.")] = None,
    since: Annotated[str | None, typer.Option(help="From this date, YYYY-MM-DD.")] = None,
    reason: ReasonOpt = None,
    server_name: ServerNameOpt = None,
    timeout: TimeoutOpt = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """Record a change of a child's care setting from a date (the history is kept).

    \b
    Example:
      childreg child care C000124 --setting family --since 2024-03-01
    """
    need = ask(child_id=child_id, setting=setting, since=since)
    fields: records.CareFields = {
        "child_id": need["child_id"], "care_setting": need["setting"], "since": need["since"]
    }  # fmt: skip
    if reason:
        fields["reason"] = reason
    records.record_care_setting(Endpoint(node, identity, server_name, timeout), fields)
    done(as_json, "care setting", need["child_id"])


def done(as_json: bool, what: str, child_id: str) -> None:
    """Say that ``what`` of ``child_id`` was recorded (one JSON object with --json)."""
    if as_json:
        typer.echo(json.dumps({"recorded": what, "child_id": child_id}))
    else:
        err.print(f"recorded the {what} of {child_id}")
