"""A gRPC health service over mutual TLS with no childreg code on its path: bench (f)'s floor.

Why: a school's extract is one gRPC call, so its latency can never be below what
gRPC-Python itself costs for a call on loopback with mutual TLS on this machine. This
server uses only grpcio, grpc-health-checking and the node's own certificate: no
interceptor, authorization, rate limit or log line. ``childreg bench`` (f) calls it in
step with the extracts, so the report separates what the transport costs from what the
node adds. It listens on 127.0.0.1 with a port the OS chooses, prints the port, and stops
when its standard input closes.

    python -m tools.dev.bare_grpc IDENTITY_DIR
"""

from __future__ import annotations

import select
import subprocess
import sys
from concurrent import futures
from pathlib import Path
from types import TracebackType
from typing import Final

import grpc
from grpc_health.v1 import health, health_pb2_grpc

from childreg.pki import IdentityFiles
from childreg.rpc import TlsMaterial, server_credentials


def serve(identity_dir: Path) -> None:
    """Serve the health service with the identity in ``identity_dir`` until stdin closes."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    tls = TlsMaterial.from_dir(IdentityFiles(identity_dir))
    port = server.add_secure_port("127.0.0.1:0", server_credentials(tls))
    server.start()
    try:
        print(port, flush=True)
        sys.stdin.read()  # until the bench closes our stdin (or dies)
    except KeyboardInterrupt:  # Ctrl-C on the bench reaches us too: stop quietly
        pass
    finally:
        server.stop(grace=None)


#: How long the server may take to print its port.
START_SECONDS: Final = 30.0


class BareServer:
    """The server above in its own process: ``with BareServer(dir) as port: ...``."""

    def __init__(self, identity_dir: Path) -> None:
        self._argv = [sys.executable, "-m", "tools.dev.bare_grpc", str(identity_dir)]
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> int:
        self._proc = subprocess.Popen(
            self._argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._proc.stdout is not None
        ready, _, _ = select.select([self._proc.stdout], [], [], START_SECONDS)
        line = self._proc.stdout.readline() if ready else ""
        if not line.strip().isdigit():
            self.__exit__(None, None, None)
            raise RuntimeError("the bare gRPC server did not start (see its error above)")
        return int(line)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a server that hangs
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tools.dev.bare_grpc IDENTITY_DIR")
    serve(Path(sys.argv[1]))
