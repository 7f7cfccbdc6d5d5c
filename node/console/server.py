"""Serving the console: uvicorn over HTTPS in a thread of the node process.

Why in the node process: the console is a front door of the node, using the node's own
store, keyring and audited services; it holds no key of its own. It listens on its own
port (``[console] listen``; port 0 lets the OS choose, and :attr:`ConsoleServer.address`
says which), with the node's certificate or the one the department configured. Access
logs are off: a path never holds personal data, but nothing is gained by logging them.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from childreg.errors import Unavailable
from childreg.pki import IdentityFiles
from node.audit.service import Audited
from node.config import NodeConfig
from node.consent.desk import ConsentDesk
from node.console.accounts import Accounts
from node.console.app import Console, Health, Templates, build_app
from node.console.sessions import Sessions
from node.crypto.keys import Keyring
from node.records.registry import Registry
from node.statistics.desk import StatisticsDesk
from node.store.base import RecordStore

STARTUP_SECONDS = 30.0


class ConsoleServer:
    """The console's HTTPS server, running in a daemon thread."""

    def __init__(self, app: ASGIApp, host: str, port: int, cert_file: Path, key_file: Path) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # IPPROTO_TCP named, so asyncio sets TCP_NODELAY on each accepted connection (it does
        # only for sockets whose proto says TCP); else each response waits ~40 ms for an ACK.
        self._socket = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.port: int = self._socket.getsockname()[1]
        self.host = host
        config = uvicorn.Config(
            app,
            ssl_certfile=str(cert_file),
            ssl_keyfile=str(key_file),
            log_config=None,
            access_log=False,
            lifespan="off",
            server_header=False,
            proxy_headers=False,
            http="h11",
            ws="none",
            loop="asyncio",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="console", daemon=True)

    @property
    def address(self) -> str:
        """``https://host:port`` of the console."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._socket]))

    def start(self) -> None:
        """Start serving; returns once the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + STARTUP_SECONDS
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise Unavailable("the web console did not start; see the node's log")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop serving (requests in flight finish) and wait for the thread."""
        self._server.should_exit = True
        self._thread.join(10)
        self._socket.close()


def start_console(
    config: NodeConfig,
    *,
    store: RecordStore,
    keyring: Keyring,
    registry: Registry,
    consents: ConsentDesk,
    audited: Audited,
    desk: StatisticsDesk,
    witnessed: Callable[[], float | None],
) -> ConsoleServer:
    """Build the console from the node's own domain objects and start serving it."""
    settings = config.console
    if settings is None:
        raise ValueError("the node's configuration has no [console] section")
    accounts = Accounts(
        store,
        audited,
        config.department_id,
        issuer=f"childreg {config.department_id}",
        lockout_failures=settings.lockout_failures,
        lockout_minutes=settings.lockout_minutes,
    )
    console = Console(
        settings=settings,
        department=config.department_id,
        department_name=config.name,
        store=store,
        keyring=keyring,
        registry=registry,
        consents=consents,
        audited=audited,
        accounts=accounts,
        sessions=Sessions(settings.idle_minutes * 60, settings.absolute_hours * 3600),
        desk=desk,
        max_snapshot_rho=config.max_snapshot_rho,
        health=Health(witnessed),
        templates=Templates(),
    )
    identity = IdentityFiles(config.identity_dir)
    cert = settings.cert_file or identity.cert
    key = settings.key_file or identity.key
    server = ConsoleServer(build_app(console), settings.host, settings.port, cert, key)
    server.start()
    return server
