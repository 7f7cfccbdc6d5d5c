"""The console's listening socket names TCP, so asyncio turns Nagle's algorithm off on each
connection (it does only for sockets whose protocol says TCP): without it every response
waited about 40 ms for the browser's delayed ACK."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from node.console.server import ConsoleServer


async def _nodelay_of_accepted(listening: socket.socket) -> int:
    """TCP_NODELAY of the transport asyncio makes for one accepted connection."""
    seen: list[int] = []

    def accepted(_r: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(accepted, sock=listening)
    host, port = listening.getsockname()[:2]
    _reader, writer = await asyncio.open_connection(host, port)
    for _ in range(200):
        if seen:
            break
        await asyncio.sleep(0.01)
    writer.close()
    server.close()
    return seen[0]


def test_the_console_socket_gets_tcp_nodelay_on_each_connection() -> None:
    """A connection accepted on the console's socket has TCP_NODELAY set by asyncio."""
    console = ConsoleServer(
        lambda *_: None,  # type: ignore[arg-type]  # never served here
        "127.0.0.1", 0, Path("unused.crt"), Path("unused.key"),
    )  # fmt: skip
    listening = console._socket  # the socket uvicorn would serve
    listening.listen()
    try:
        assert asyncio.run(_nodelay_of_accepted(listening)) != 0
    finally:
        listening.close()
