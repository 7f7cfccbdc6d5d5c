"""Revocation: a deny-list of certificate serials, signed by the federation CA.

Python gRPC has no CRL support, so servers check every caller's serial against this list
(see ``childreg.authz``). The list is a JSON document signed with the CA's key (ECDSA
P-256, SHA-256) over its canonical form; servers verify it against the federation root
they already trust and reload it when the file changes — no restart. A list that does
not verify, or is older than the one in force, is ignored (the previous one stays).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from childreg.errors import InvalidInput, KeyProblem, Violation
from childreg.secretfile import write_private

log = structlog.get_logger("childreg.revocation")

DENYLIST_FILE = "denylist.json"
RELOAD_SECONDS = 1.0


@dataclass(frozen=True)
class DenyList:
    """Revoked serials of one federation, with a version that only goes up."""

    federation: str
    version: int
    serials: frozenset[int]

    def body(self) -> bytes:
        """The canonical bytes that are signed."""
        data = {
            "federation": self.federation,
            "version": self.version,
            "serials": sorted(format(s, "x") for s in self.serials),
        }
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def sign(deny: DenyList, key: ec.EllipticCurvePrivateKey) -> bytes:
    """The deny-list as a signed JSON document."""
    signature = key.sign(deny.body(), ec.ECDSA(hashes.SHA256()))
    doc = json.loads(deny.body()) | {"signature": base64.b64encode(signature).decode()}
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def verify(document: bytes, ca_cert: x509.Certificate) -> DenyList:
    """Parse and check a signed deny-list; InvalidInput if malformed or not signed by the CA."""
    try:
        doc: dict[str, Any] = json.loads(document)
        deny = DenyList(
            federation=str(doc["federation"]),
            version=int(doc["version"]),
            serials=frozenset(int(s, 16) for s in doc["serials"]),
        )
        signature = base64.b64decode(doc["signature"], validate=True)
        public = ca_cert.public_key()
        if not isinstance(public, ec.EllipticCurvePublicKey):
            raise TypeError("CA key is not EC")
        public.verify(signature, deny.body(), ec.ECDSA(hashes.SHA256()))
    except (ValueError, KeyError, TypeError, InvalidSignature) as exc:
        raise InvalidInput(
            "the deny-list is malformed or not signed by the federation CA",
            [Violation("denylist", type(exc).__name__)],
        ) from None
    return deny


def write(path: Path, deny: DenyList, key: ec.EllipticCurvePrivateKey) -> None:
    """Sign and atomically write a deny-list."""
    write_private(path, sign(deny, key))


class RevocationCheck:
    """Answers "is this serial revoked?", reloading the signed file when it changes."""

    def __init__(
        self,
        path: Path | None,
        ca_cert: x509.Certificate,
        federation: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._path = path
        self._ca = ca_cert
        self._federation = federation
        self._clock = clock
        self._lock = threading.Lock()
        self._current = DenyList(federation, 0, frozenset())
        self._seen: tuple[int, int] | None = None  # (mtime_ns, size) last loaded
        self._checked = float("-inf")
        if path is not None:
            try:
                self._current = verify(path.read_bytes(), ca_cert)
            except (OSError, InvalidInput):
                raise KeyProblem(
                    f"the deny-list {path} is missing or does not verify",
                    hint="copy denylist.json from the federation CA (childreg pki init/revoke)",
                ) from None
            if self._current.federation != federation:
                raise KeyProblem(f"the deny-list {path} belongs to another federation")
            st = path.stat()
            self._seen = (st.st_mtime_ns, st.st_size)

    @property
    def current(self) -> DenyList:
        """The deny-list in force."""
        return self._current

    def is_revoked(self, serial: int) -> bool:
        """True if ``serial`` is on the deny-list in force (reloaded at most once a second)."""
        self._refresh()
        return serial in self._current.serials

    def _refresh(self, *, force: bool = False) -> None:
        if self._path is None:
            return
        now = self._clock()
        with self._lock:
            if not force and now - self._checked < RELOAD_SECONDS:
                return
            self._checked = now
            try:
                st = self._path.stat()
            except FileNotFoundError:  # keep what is in force; revocations never lapse
                log.warning("denylist.missing", path=str(self._path))
                return
            stamp = (st.st_mtime_ns, st.st_size)
            if stamp == self._seen:
                return
            self._seen = stamp
            try:
                deny = verify(self._path.read_bytes(), self._ca)
            except (InvalidInput, OSError):
                log.error("denylist.rejected", path=str(self._path))
                return
            if deny.federation != self._federation or deny.version < self._current.version:
                log.error("denylist.rejected", path=str(self._path), version=deny.version)
                return
            self._current = deny
            log.info("denylist.loaded", version=deny.version, revoked=len(deny.serials))


def record_issued(ca_dir: Path, serial: int, spiffe_id: str, not_after: dt.datetime) -> None:
    """Append an issued certificate to the CA's register (issued.jsonl)."""
    line = {
        "serial": format(serial, "x"),
        "spiffe_id": spiffe_id,
        "not_after": not_after.isoformat(),
        "issued_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    with (ca_dir / "issued.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(line, sort_keys=True) + "\n")


def issued(ca_dir: Path) -> Iterable[dict[str, str]]:
    """Every certificate the CA has issued, oldest first."""
    path = ca_dir / "issued.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
