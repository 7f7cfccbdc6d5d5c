"""A department's node: encrypted storage, records, statistics answers, and its gRPC server.

Never imports ``coordinator``; the two meet only through ``proto/``.
"""

from pathlib import Path as _Path

from node import native as _native

#: Whether the compiled import modules were set aside here (stale build or CHILDREG_PURE=1).
FROM_SOURCE = _native.guard(__name__, _Path(__file__).resolve().parent)
