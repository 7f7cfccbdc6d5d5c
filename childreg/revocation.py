"""Revocation: a deny-list of certificate serials, signed by the federation CA.

Python gRPC has no CRL support, so servers check every caller's serial against this list
(see ``childreg.authz``). The list is a JSON document signed with the CA's key (ECDSA
P-256, SHA-256) over its canonical form; servers verify it against the federation root
they already trust, from their own file (reloaded when it changes) or as fetched from
the federation's publisher (``childreg.denylist_sync``), and install it without restart.

The rules every server applies to a candidate list (:func:`judge`), whatever its source:

- it must verify under the CA and name this federation;
- a higher version replaces the one in force only if it still revokes every serial the
  one in force revokes (revocations never lapse);
- the same version is accepted only byte-for-byte the same body; other content under the
  same version is refused (two lists signed with one version mean a restored CA);
- a lower version is refused.

The newest list accepted is kept, as the CA signed it, in a state file in the server's
data or state directory (written atomically), so a restarted server still refuses an
older list than one it has seen.
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
from typing import Any, Literal

import structlog
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from childreg.errors import InvalidInput, KeyProblem, Violation
from childreg.secretfile import write_private

log = structlog.get_logger("childreg.revocation")

DENYLIST_FILE = "denylist.json"
#: The newest list a server has accepted, kept in its data or state directory.
STATE_FILE = "denylist.accepted.json"
RELOAD_SECONDS = 1.0

#: What a server does with a candidate list (see :func:`judge`).
Verdict = Literal["newer", "same", "older", "conflict", "drops", "foreign", "invalid"]
ACCEPTED: frozenset[str] = frozenset({"newer", "same"})


@dataclass(frozen=True)
class DenyList:
    """Revoked serials of one federation, with a version that only goes up and the time
    (Unix seconds, UTC) the CA signed it; lists signed before that field existed have none."""

    federation: str
    version: int
    serials: frozenset[int]
    issued_at: int | None = None

    def body(self) -> bytes:
        """The canonical bytes that are signed."""
        data: dict[str, Any] = {
            "federation": self.federation,
            "version": self.version,
            "serials": sorted(format(s, "x") for s in self.serials),
        }
        if self.issued_at is not None:
            data["issued_at"] = self.issued_at
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def judge(current: DenyList | None, candidate: DenyList) -> Verdict:
    """What to do with ``candidate`` (already verified) given the list in force."""
    if current is not None and candidate.federation != current.federation:
        return "foreign"
    if current is None:
        return "newer"
    if candidate.version < current.version:
        return "older"
    if candidate.version == current.version:
        return "same" if candidate.body() == current.body() else "conflict"
    if not candidate.serials >= current.serials:
        return "drops"
    return "newer"


def sign(deny: DenyList, key: ec.EllipticCurvePrivateKey) -> bytes:
    """The deny-list as a signed JSON document."""
    signature = key.sign(deny.body(), ec.ECDSA(hashes.SHA256()))
    doc = json.loads(deny.body()) | {"signature": base64.b64encode(signature).decode()}
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def verify(document: bytes, ca_cert: x509.Certificate) -> DenyList:
    """Parse and check a signed deny-list; InvalidInput if malformed or not signed by the CA."""
    try:
        doc: dict[str, Any] = json.loads(document)
        issued_at = doc.get("issued_at")
        if issued_at is not None and (type(issued_at) is not int or issued_at < 0):
            raise ValueError("issued_at")
        deny = DenyList(
            federation=str(doc["federation"]),
            version=int(doc["version"]),
            serials=frozenset(int(s, 16) for s in doc["serials"]),
            issued_at=issued_at,
        )
        signature = base64.b64decode(doc["signature"], validate=True)
        public = ca_cert.public_key()
        if not isinstance(public, ec.EllipticCurvePublicKey):
            raise TypeError("CA key is not EC")
        public.verify(signature, deny.body(), ec.ECDSA(hashes.SHA256()))
    except (ValueError, KeyError, TypeError, AttributeError, InvalidSignature) as exc:
        raise InvalidInput(
            "the deny-list is malformed or not signed by the federation CA",
            [Violation("denylist", type(exc).__name__)],
        ) from None
    return deny


def write(path: Path, deny: DenyList, key: ec.EllipticCurvePrivateKey) -> None:
    """Sign and atomically write a deny-list."""
    write_private(path, sign(deny, key))


class RevocationCheck:
    """Answers "is this serial revoked?" from the newest acceptable list it has been given:
    its own file (reloaded when it changes), lists offered by a fetcher, and the list it
    remembered in ``state_file`` before a restart."""

    def __init__(
        self,
        path: Path | None,
        ca_cert: x509.Certificate,
        federation: str,
        clock: Callable[[], float] = time.monotonic,
        *,
        state_file: Path | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._path = path
        self._ca = ca_cert
        self._federation = federation
        self._clock = clock
        self._wall = wall
        self._state = state_file
        self._lock = threading.Lock()
        self._current = DenyList(federation, 0, frozenset())
        self._document = b""
        self._seen: tuple[int, int] | None = None  # (mtime_ns, size) last loaded
        self._checked = float("-inf")
        self._remembered = False
        if state_file is not None and state_file.exists():
            self._remember(state_file)
        if path is not None:
            try:
                document = path.read_bytes()
                local = verify(document, ca_cert)
                st = path.stat()
            except (OSError, InvalidInput):
                raise KeyProblem(
                    f"the deny-list {path} is missing or does not verify",
                    hint="copy denylist.json from the federation CA (childreg pki init/revoke)",
                ) from None
            if local.federation != federation:
                raise KeyProblem(f"the deny-list {path} belongs to another federation")
            self._seen = (st.st_mtime_ns, st.st_size)
            if self._remembered:
                self.offer(document, source="file")
            else:
                self._install(local, document)

    def _remember(self, state_file: Path) -> None:
        """Start from the newest list accepted before a restart (KeyProblem if it is bad)."""
        try:
            document = state_file.read_bytes()
            deny = verify(document, self._ca)
        except (OSError, InvalidInput):
            raise KeyProblem(
                f"the remembered deny-list {state_file} cannot be read or does not verify",
                hint="it is written only by this server; restore it from a backup of the "
                "directory, or remove it only if the CA's newest list is put in denylist_file",
            ) from None
        if deny.federation != self._federation:
            raise KeyProblem(f"the remembered deny-list {state_file} belongs to another federation")
        self._current, self._document, self._remembered = deny, document, True

    @property
    def current(self) -> DenyList:
        """The deny-list in force."""
        return self._current

    @property
    def document(self) -> bytes:
        """The signed document of the list in force, byte for byte (what a publisher serves)."""
        with self._lock:
            return self._document

    def age_seconds(self) -> float | None:
        """Seconds since the CA signed the list in force; None if the list carries no time."""
        issued = self._current.issued_at
        return None if issued is None else max(0.0, self._wall() - issued)

    def is_revoked(self, serial: int) -> bool:
        """True if ``serial`` is on the list in force (its file re-read at most once a second)."""
        self._refresh()
        return serial in self._current.serials

    def offer(self, document: bytes, *, source: str) -> Verdict:
        """Judge a signed list from ``source`` ("file", "publisher"); install it if newer."""
        try:
            candidate = verify(document, self._ca)
        except InvalidInput:
            log.error("denylist.refused", source=source, reason="invalid")
            return "invalid"
        with self._lock:
            verdict: Verdict = (
                "foreign" if candidate.federation != self._federation
                else judge(self._current, candidate)
            )  # fmt: skip
            if verdict == "newer":
                self._install(candidate, document)
            elif verdict != "same":
                log.error(
                    "denylist.refused",
                    source=source,
                    reason=verdict,
                    version=candidate.version,
                    in_force=self._current.version,
                )
        return verdict

    def _install(self, deny: DenyList, document: bytes) -> None:
        """Make ``deny`` the list in force and remember it (the state file first)."""
        if self._state is not None:
            write_private(self._state, document)
        self._current, self._document = deny, document
        log.info("denylist.loaded", version=deny.version, revoked=len(deny.serials))

    def refresh(self) -> None:
        """Re-read the local file now if it changed (a fetcher's tick calls this too)."""
        self._refresh(force=True)

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
                document = self._path.read_bytes()
            except OSError:
                log.error("denylist.refused", source="file", reason="unreadable")
                return
        self.offer(document, source="file")


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
