"""A witness's configuration and its signing key file.

Why: any body — an ombudsman, a data-protection authority, another ministry — can run a
witness of the federation's audit logs (``childreg audit witness serve``); this module
validates its configuration (its name, key file, state directory and the nodes it pins,
each log key named after its origin), and makes and loads its Ed25519 note key, refusing a
key file others could read. :mod:`witness.server` builds and starts the witness from them.

Example (TOML, docs/witness.md; relative paths are relative to the file)::

    name = "witness.az-ombudsman"               # the witness's note key name
    signing_key_file = "witness.key"            # from `childreg audit witness keygen` (0600)
    state_dir = "state"                         # witness.db: held checkpoints and evidence
    listen = "0.0.0.0:7444"
    identity_dir = "identity"                   # spiffe://<federation>/witness/<id>
    denylist_file = "denylist.json"
    statistics_authority_key = "authority.pub"  # required of every service; unused here

    [[nodes]]
    origin = "childreg.az.childreg/baku"
    verifier_key = "childreg.az.childreg/baku+1a2b3c4d+AQ..."
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from childreg.audit.checkpoint import parse_childreg_origin
from childreg.audit.note import NoteSigner, NoteVerifier, generate_signer, name_problem
from childreg.config import ServiceSettings, resolve_path
from childreg.errors import AlreadyExists, InvalidInput, KeyProblem
from childreg.secretfile import write_private

#: The witness's database file under its state directory.
DB_FILE = "witness.db"


class WitnessedNode(BaseModel):
    """A node whose log this witness watches: its log's origin and pinned verifier key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    origin: str = Field(max_length=300)
    verifier_key: str = Field(max_length=400)

    @field_validator("origin")
    @classmethod
    def _origin(cls, value: str) -> str:
        try:
            parse_childreg_origin(value)
        except InvalidInput:
            raise ValueError("an origin is childreg.<federation>/<department-id>") from None
        return value

    @model_validator(mode="after")
    def _key_of_origin(self) -> Self:
        try:
            verifier = NoteVerifier.from_key_string(self.verifier_key)
        except InvalidInput as exc:
            raise ValueError(f"verifier_key: {exc}") from None
        if verifier.name != self.origin:
            raise ValueError(
                f"verifier_key is named {verifier.name!r}, not after the origin; "
                "a node's log key carries its origin as its name"
            )
        return self

    def verifier(self) -> NoteVerifier:
        """The node's pinned log key."""
        return NoteVerifier.from_key_string(self.verifier_key)


class WitnessConfig(ServiceSettings):
    """Validated configuration of a stand-alone witness."""

    #: The witness's key name, e.g. "witness.az-ombudsman" (appears in its cosignatures).
    name: str = Field(min_length=1, max_length=200)
    #: The witness's signer key string (PRIVATE+KEY+…), mode 0600.
    signing_key_file: Path
    #: Where witness.db lives (latest checkpoint per node, evidence).
    state_dir: Path
    #: The nodes witnessed, each with its pinned log key; no other origin is accepted.
    nodes: tuple[WitnessedNode, ...] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        problem = name_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("signing_key_file", "state_dir")
    @classmethod
    def _relative_to_file(cls, value: Path, info: ValidationInfo) -> Path:
        return resolve_path(value, info.context)

    @model_validator(mode="after")
    def _unique_origins(self) -> Self:
        origins = [n.origin for n in self.nodes]
        if len(set(origins)) != len(origins):
            raise ValueError("node origins must be unique")
        return self

    @property
    def db_path(self) -> Path:
        """The witness's database file."""
        return self.state_dir / DB_FILE


def trusted_nodes(nodes: Iterable[WitnessedNode]) -> dict[str, NoteVerifier]:
    """origin -> pinned verifier, as :class:`~witness.cosigning.Witness` takes them."""
    return {n.origin: n.verifier() for n in nodes}


def generate_witness_key(path: Path, name: str) -> str:
    """Write a new signer key named ``name`` to ``path`` (0600, never overwritten).

    Returns the verifier key string, the public half that nodes and auditors pin.
    """
    signer, verifier = generate_signer(name)
    try:  # reserve the name: O_EXCL refuses an existing file or symlink, atomically
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        raise AlreadyExists(f"{path} exists already; a witness key is never overwritten") from None
    try:
        write_private(path, (signer + "\n").encode("ascii"))
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return verifier


def load_witness_signer(path: Path, name: str) -> NoteSigner:
    """The witness's signer from its key file; KeyProblem (with a hint) if unusable."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(4097)
            mode = os.fstat(fh.fileno()).st_mode
    except OSError:
        raise KeyProblem(
            f"cannot read the witness key {path}",
            hint="make one with `childreg audit witness keygen --out FILE --name NAME`",
        ) from None
    if stat.S_IMODE(mode) & 0o077:
        raise KeyProblem(
            f"{path} can be read or written by other users",
            hint=f"chmod 600 {path}; if anyone may have copied it, make a new witness key "
            "and give its verifier key to everyone who pins it",
        )
    try:
        signer = NoteSigner.from_key_string(raw.decode("ascii").strip())
    except (UnicodeDecodeError, InvalidInput):
        raise KeyProblem(
            f"{path} is not a witness signer key (PRIVATE+KEY+…)",
            hint="pass the file written by `childreg audit witness keygen`",
        ) from None
    if signer.name != name:
        raise KeyProblem(
            f"the key in {path} is named {signer.name!r}, the configuration says {name!r}",
            hint="set `name` to the key's name, or point signing_key_file at the right key",
        )
    return signer
