"""The ``[console]`` settings and the HTTPS server: what a configuration may say, and that
the server serves the certificate it is given on a port the OS chose."""

from __future__ import annotations

import ssl
import urllib.request
from pathlib import Path

import pytest
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from node.console.server import ConsoleServer
from node.console.settings import ConsoleSettings
from tests.conftest import IssueFn
from tests.unit.node.console.conftest import Harness


def test_the_defaults_listen_on_loopback_with_an_os_chosen_port() -> None:
    """An empty section binds 127.0.0.1 on port 0 with the documented limits."""
    settings = ConsoleSettings()
    assert (settings.host, settings.port) == ("127.0.0.1", 0)
    assert (settings.lockout_failures, settings.lockout_minutes) == (5, 15.0)
    assert (settings.idle_minutes, settings.absolute_hours) == (15.0, 8.0)


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"cert_file": "tls.crt"}, "cert_file"),
        ({"language": "fr"}, "language"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"lockout_failures": 0}, "lockout_failures"),
        ({"listen": "no port"}, "listen"),
    ],
)
def test_a_bad_setting_is_refused(values: dict[str, object], field: str) -> None:
    """A certificate without its key, an unknown language or zone, a zero lockout or a
    listen address without a port is refused, naming the setting."""
    with pytest.raises(ValidationError) as refused:
        ConsoleSettings.model_validate(values)
    text = str(refused.value)
    assert field in text or "cert_file and key_file" in text


def test_the_server_serves_its_certificate_on_the_chosen_port(
    issue: IssueFn, tmp_path: Path
) -> None:
    """A certificate given to the server is what a client verifying against its CA sees."""
    identity = issue("node", "console-test")

    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hello")

    server = ConsoleServer(
        Starlette(routes=[Route("/", hello)]), "127.0.0.1", 0, identity.cert, identity.key
    )
    server.start()
    try:
        assert server.port > 0
        assert server.address == f"https://127.0.0.1:{server.port}"
        context = ssl.create_default_context(cafile=str(identity.ca))
        with urllib.request.urlopen(server.address + "/", context=context) as answer:
            assert answer.read() == b"hello"
    finally:
        server.stop()


def test_the_language_form_only_sends_back_to_a_console_path(harness: Harness) -> None:
    """After a language change the person goes back to a console path, never another site."""
    for back, expected in (("/search", "/search"), ("//evil.example", "/"),
                           ("/\\evil.example", "/"), ("https://evil.example", "/")):  # fmt: skip
        answer = harness.client.post(
            "/language",
            data={"csrf": harness.csrf(), "language": "ru", "back": back},
            follow_redirects=False,
        )
        assert answer.headers["location"] == expected
    assert "Вход" in harness.client.get("/sign-in").text
