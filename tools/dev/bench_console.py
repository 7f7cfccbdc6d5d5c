"""`childreg bench`, the web console: what the browser's door costs over the gRPC door.

(l) On a real node (`childreg node serve` with a ``[console]`` section) holding
    ``children`` children imported through its gRPC BulkImport, a signed-in person's
    console requests — the search page (POST /search, a full name with a typo or in the
    other script), the child's page (GET /child/<handle>) and registration (POST
    /register) — each p95 ÷ the p95 of the matching gRPC call made with the staff
    identity in the same run (FindChildren, GetChild, RegisterChild), interleaved one for
    one. Both doors keep their connection open (HTTPS keep-alive; one gRPC channel), so the
    ratio is the console's own work: session, CSRF, form parsing, the page's other reads
    (the child's page also reads its history, consents and who accessed it) and the
    template. Goal: each ratio ≤ 3.
"""

# Reproducible synthetic data and query choice, nothing security-relevant:
# ruff: noqa: S311

from __future__ import annotations

import http.client
import json
import random  # noqa: TID251 -- reproducible synthetic data, nothing security-relevant
import re
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import pyotp

from childreg import csvformat
from childreg.pki import IdentityFiles
from childreg.v1 import records_pb2 as pb
from childreg.v1 import records_pb2_grpc as pb_grpc
from node.rpc.convert import child_to_proto
from tools.clients import importer
from tools.dev import synth
from tools.dev.bench_extract import percentile
from tools.dev.federation import LocalFederation, Say
from tools.dev.people import import_record, other_script, random_child, typo

GOAL_RATIO: Final = 3.0
ROOT: Final = Path(__file__).resolve().parents[2]
#: Limits lifted: it measures latency, not policy.
SETTINGS: Final = {
    "rate_per_second": 100_000, "rate_burst": 1_000_000,
    "console": {"listen": "127.0.0.1:0", "idle_minutes": 600, "absolute_hours": 12},
}  # fmt: skip


class Browser:
    """A signed-in person's HTTPS connection to the console, kept alive, with its cookie."""

    def __init__(self, address: str, ca: Path) -> None:
        parsed = urllib.parse.urlsplit(address)
        context = ssl.create_default_context(cafile=str(ca))
        context.check_hostname = False  # the node's certificate names its SPIFFE id
        self._connection = http.client.HTTPSConnection(
            parsed.hostname or "127.0.0.1", parsed.port, context=context, timeout=120
        )
        self._connection.connect()
        # A browser sends each request at once; without this, Nagle's algorithm holds a
        # POST's body back for the server's delayed ACK (about 40 ms a request).
        self._connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._cookie = ""
        self.csrf = ""

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> str:
        """One request; the answer's text (the cookie kept, redirects not followed)."""
        body = urllib.parse.urlencode(form or {}) if form is not None else None
        headers = {"Cookie": self._cookie} if self._cookie else {}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self._connection.request(method, path, body=body, headers=headers)
        answer = self._connection.getresponse()
        text = answer.read().decode("utf-8")
        cookie = answer.getheader("set-cookie")
        if cookie:
            self._cookie = cookie.split(";", 1)[0]
        found = re.search(r'name="csrf" value="([^"]+)"', text)
        if found:
            self.csrf = found.group(1)
        if answer.status >= 400:
            raise RuntimeError(f"console answered {answer.status} to {method} {path}")
        return text

    def post(self, path: str, form: dict[str, str]) -> str:
        """POST ``form`` with the session's CSRF token."""
        return self.request("POST", path, {"csrf": self.csrf, **form})

    def sign_in(self, login: str, password: str, secret: str) -> None:
        """Password, then the TOTP code."""
        self.request("GET", "/sign-in")
        self.post("/sign-in", {"login": login, "password": password})
        self.request("GET", "/sign-in/code")  # the renewed session's token
        self.post("/sign-in/code", {"code": pyotp.TOTP(secret).now()})
        self.request("GET", "/search")

    def close(self) -> None:
        """Close the connection."""
        self._connection.close()


def _user(fed: LocalFederation, dept: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "tools.cli.main", "node", "user", "add", "bench",
         "--config", str(fed.nodes[dept].config), "--role", "staff", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    made: dict[str, Any] = json.loads(done.stdout)
    return made


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def measure_console(root: Path, children: int, requests: int, say: Say) -> dict[str, Any]:
    """(l): console p95 ÷ gRPC p95 for search, the child's page and registration."""
    plan = synth.plan_departments(1)[0]
    district = plan.districts[0]
    rng = random.Random(17)
    held = [random_child(rng, f"W{i:07d}", national_id=None, district=district)
            for i in range(children)]  # fmt: skip
    data = root / "console-bench.csv"
    csvformat.write_rows(data, (csvformat.record_to_row(import_record(c, i + 2))
                                for i, c in enumerate(held)))  # fmt: skip
    with LocalFederation(root / "console-fed", [plan], node_settings=SETTINGS) as fed:
        fed.setup()
        fed.start_nodes()
        endpoint = fed.staff_endpoint(plan.id)
        say(f"(l) importing {children:,} children into a node with a console")
        importer.import_file(endpoint, data)
        account = _user(fed, plan.id)
        node = fed.nodes[plan.id]
        address = str(json.loads(node.ready_file.read_text())["console"])
        browser = Browser(address, IdentityFiles(fed.identity(f"node-{plan.id}")).ca)
        browser.sign_in("bench", account["password"], account["totp_secret"])
        times: dict[str, list[float]] = {k: [] for k in (
            "console_search", "grpc_search", "console_child", "grpc_child",
            "console_register", "grpc_register")}  # fmt: skip
        say(f"(l) {requests} of each console page and gRPC call, interleaved")
        try:
            with endpoint.channel() as channel:
                stub = pb_grpc.RecordsServiceStub(channel)
                for i in range(requests):
                    _round(i, rng, held=held, district=district, browser=browser, stub=stub,
                           times=times)  # fmt: skip
        finally:
            browser.close()
    out: dict[str, Any] = {"children": children, "requests": requests}
    for page in ("search", "child", "register"):
        web = percentile(times[f"console_{page}"], 0.95) * 1000
        rpc = percentile(times[f"grpc_{page}"], 0.95) * 1000
        out[f"{page}_console_p95_ms"] = round(web, 2)
        out[f"{page}_grpc_p95_ms"] = round(rpc, 2)
        out[f"{page}_ratio"] = round(web / rpc, 2)
    out["goal_max_ratio"] = GOAL_RATIO
    out["meets_goal"] = all(
        out[f"{p}_ratio"] <= GOAL_RATIO for p in ("search", "child", "register")
    )
    return out


def _round(
    i: int,
    rng: random.Random,
    *,
    held: list[Any],
    district: str,
    browser: Browser,
    stub: pb_grpc.RecordsServiceStub,
    times: dict[str, list[float]],
) -> None:
    """One of each, console then gRPC (the order alternating)."""
    child = rng.choice(held)
    name = f"{child.given_name} {child.family_name}"
    name = typo(name, rng) if rng.random() < 0.5 else other_script(name)
    found: list[str] = []

    def web_search() -> None:
        page = browser.post("/search", {"name": name})
        found[:] = re.findall(r'href="/child/([0-9a-f]{32})"', page)

    steps: list[tuple[str, Callable[[], object]]] = [
        ("console_search", web_search),
        ("grpc_search", lambda: stub.FindChildren(pb.SearchRequest(name=name), timeout=120)),
    ]
    for key, fn in steps if i % 2 == 0 else steps[::-1]:
        times[key].append(_timed(fn))
    handle = found[0] if found else None
    if handle is not None:
        times["console_child"].append(_timed(lambda: browser.request("GET", f"/child/{handle}")))
    times["grpc_child"].append(
        _timed(lambda: stub.GetChild(pb.ChildRef(child_id=child.child_id), timeout=120))
    )
    web_new = random_child(rng, f"N{i:06d}W", national_id=None, district=district)
    rpc_new = random_child(rng, f"N{i:06d}G", national_id=None, district=district)
    form = {k: str(v) for k, v in web_new.model_dump(mode="json").items() if v is not None}
    times["console_register"].append(_timed(lambda: browser.post("/register", form)))
    request = pb.RegisterChildRequest(child=child_to_proto(rpc_new))
    times["grpc_register"].append(_timed(lambda: stub.RegisterChild(request, timeout=120)))
