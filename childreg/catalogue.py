"""The signed table catalogue: the only tables national statisticians may ask for, and their cost.

A node answers nothing but a catalogue table, and only from a catalogue signed (Ed25519)
by the federation's statistics authority, whose public key the node pins. The catalogue
fixes, before any data are seen, which dimension sets may be tabulated and how much of
the snapshot's privacy budget (ρ, zero-concentrated DP) each table spends; the tables
together never cost more than the snapshot cap. A table is named by its *set* of
dimensions, so asking with the dimensions in another order is the same question.
Geography is not a dimension: every table is published for the nation and for each
region. See docs/catalogue.md.

Files: the authority writes the catalogue as TOML or YAML (loaded like any configuration),
signs its canonical JSON form with ``authority.key`` and ships ``catalogue.signed.json``.
Every error names the field and the problem; none quotes anything about children.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Final, Self

from nacl.signing import SigningKey, VerifyKey
from pydantic import AfterValidator, Field, PlainValidator, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from childreg import codes
from childreg.config import read_mapping
from childreg.dp import zcdp
from childreg.errors import AlreadyExists, InvalidInput, KeyProblem, Violation
from childreg.models import Model, ShortText, violations_of
from childreg.secretfile import write_private
from childreg.signed import SignedKind, canonical_json, open_signed, read_signed, sign_document

#: Identifies the signed-file format (a different layout gets a different name).
SIGNED_FORMAT: Final = "childreg-catalogue/1"
#: Prefixed to the canonical bytes before signing, so the signature means only this.
SIGNING_CONTEXT: Final = b"childreg catalogue v1\n"
#: The largest signed catalogue read (64 tables fit in a few KiB).
MAX_SIGNED_BYTES: Final = 256 * 1024
AUTHORITY_KEY: Final = "authority.key"
AUTHORITY_PUB: Final = "authority.pub"
PUBLIC_PREFIX: Final = "ed25519:"
SECRET_PREFIX: Final = "ed25519-secret:"  # noqa: S105 - a format tag, not a secret

#: Dimensions a catalogue table may have: geography is implicit (nation and every region).
GEOGRAPHY: Final = ("region", "district")
TABLE_DIMENSIONS: Final = tuple(d for d in codes.DIMENSIONS if d not in GEOGRAPHY)
_ID_RE: Final = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_INIT_HINT: Final = "make one with `childreg stats catalogue authority-init --out DIR`"


def _table_dimension(value: str) -> str:
    if value in GEOGRAPHY:
        raise ValueError(
            "region and district are not dimensions: geography is implicit, every table "
            "is published for the nation and for each region"
        )
    if value not in TABLE_DIMENSIONS:
        raise ValueError(f"unknown dimension; expected one of: {', '.join(TABLE_DIMENSIONS)}")
    return value


def _unique(value: tuple[str, ...]) -> tuple[str, ...]:
    if len(set(value)) != len(value):
        raise ValueError("must not repeat a dimension")
    return value


def _rho(value: object) -> Fraction:
    """A positive exact ρ from "1/32", "0.25", an int or a float (by its decimal text)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Fraction):
        raise ValueError("must be a fraction such as 1/32 or a decimal such as 0.25")
    if isinstance(value, str) and len(value) > 64:
        raise ValueError("has too many digits")
    return zcdp.parse_rho(value if isinstance(value, str | Fraction) else str(value))


Rho = Annotated[Fraction, PlainValidator(_rho)]
TableDimension = Annotated[str, AfterValidator(_table_dimension)]


@dataclass(frozen=True)
class TableCost:
    """What one table costs and how precise it is, per department (for display)."""

    cells: int
    rho: Fraction
    sigma_squared: Fraction
    sigma: float
    epsilon: float
    margin95: int


class CatalogueTable(Model):
    """One table statisticians may ask for: its dimensions and the ρ it spends."""

    id: Annotated[str, Field(pattern=_ID_RE.pattern)]
    title: ShortText
    dimensions: Annotated[
        tuple[TableDimension, ...], AfterValidator(_unique), Field(min_length=1, max_length=3)
    ]
    rho: Rho

    @property
    def key(self) -> frozenset[str]:
        """The set of dimensions, which names the table."""
        return frozenset(self.dimensions)

    def cost(self, delta: float) -> TableCost:
        """Cells, σ² (exact), σ, ε at ``delta`` and the 95 % margin of one department's noise."""
        variance = zcdp.sigma_squared(self.rho)
        return TableCost(
            cells=codes.grid_size(self.dimensions),
            rho=self.rho,
            sigma_squared=variance,
            sigma=math.sqrt(variance),
            epsilon=zcdp.epsilon(self.rho, delta),
            margin95=zcdp.margin95(variance),
        )

    def canonical_object(self) -> dict[str, Any]:
        """The JSON object of this table in the signed form."""
        return {
            "id": self.id,
            "title": self.title,
            "dimensions": list(self.dimensions),
            "rho": zcdp.format_rho(self.rho),
        }


class Catalogue(Model):
    """A federation's versioned list of tables and the snapshot's privacy cap."""

    federation: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")]
    version: Annotated[int, Field(strict=True, ge=1, le=10**9)]
    snapshot_rho: Rho
    delta: Annotated[float, Field(gt=0, le=1e-3, allow_inf_nan=False)]
    display_threshold: Annotated[int, Field(strict=True, ge=0, le=1000)]
    tables: Annotated[tuple[CatalogueTable, ...], Field(min_length=1, max_length=64)]

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[InitErrorDetails] = []

        def problem(loc: tuple[str | int, ...], message: str) -> None:
            error = PydanticCustomError("catalogue", message)  # messages hold no braces
            problems.append(InitErrorDetails(type=error, loc=loc, input=None))

        ids: dict[str, int] = {}
        keys: dict[frozenset[str], int] = {}
        for i, table in enumerate(self.tables):
            if table.id in ids:
                problem(("tables", i, "id"), f"repeats the id of tables.{ids[table.id]}")
            ids.setdefault(table.id, i)
            if table.key in keys:
                problem(
                    ("tables", i, "dimensions"),
                    f"has the same set of dimensions as tables.{keys[table.key]} "
                    "(in any order, a set of dimensions names one table)",
                )
            keys.setdefault(table.key, i)
        if self.total_rho > self.snapshot_rho:
            problem(
                ("tables",),
                f"the tables' rho add up to {self.total_rho}, more than snapshot_rho "
                f"{self.snapshot_rho}",
            )
        if problems:  # pydantic merges a ValidationError raised here into its own
            raise ValidationError.from_exception_data(type(self).__name__, problems)
        return self

    @property
    def total_rho(self) -> Fraction:
        """What all tables together spend of a snapshot's budget."""
        return sum((t.rho for t in self.tables), Fraction(0))

    def table(self, table_id: str) -> CatalogueTable:
        """The table with this id; InvalidInput if the catalogue has none."""
        for t in self.tables:
            if t.id == table_id:
                return t
        shown = table_id if _ID_RE.match(table_id) else "that id"
        raise InvalidInput(
            f"no catalogue table has the id {shown}; "
            "`childreg stats catalogue show` lists the tables",
            [Violation("table_id", "not in the catalogue")],
        )

    def table_for(self, dimensions: Sequence[str]) -> CatalogueTable:
        """The table whose set of dimensions is ``dimensions`` (in any order).

        The refusal depends only on the question, never on the data.
        """
        asked = (dimensions,) if isinstance(dimensions, str) else tuple(dimensions)
        wanted = frozenset(asked)
        if len(wanted) != len(asked):
            raise InvalidInput(
                "a table question must not repeat a dimension",
                [Violation("dimensions", "must not repeat a dimension")],
            )
        for t in self.tables:
            if t.key == wanted:
                return t
        shown = sorted(d if d in codes.DIMENSIONS else "(an unknown dimension)" for d in wanted)
        raise InvalidInput(
            f"no catalogue table has the dimensions {', '.join(shown) or '(none)'}; "
            "`childreg stats catalogue show` lists the tables",
            [Violation("dimensions", "not a catalogue table")],
        )

    def snapshot_epsilon(self) -> float:
        """The (ε, δ) equivalent of the snapshot cap."""
        return zcdp.epsilon(self.snapshot_rho, self.delta)

    def canonical_object(self) -> dict[str, Any]:
        """The catalogue as the JSON object that is signed (tables in the author's order)."""
        return {
            "federation": self.federation,
            "version": self.version,
            "snapshot_rho": zcdp.format_rho(self.snapshot_rho),
            "delta": self.delta,
            "display_threshold": self.display_threshold,
            "tables": [t.canonical_object() for t in self.tables],
        }

    def canonical_bytes(self) -> bytes:
        """Sorted-key, compact, UTF-8 JSON: the same catalogue always gives the same bytes."""
        return canonical_json(self.canonical_object())

    def digest(self) -> str:
        """Hex SHA-256 of the canonical bytes: names this exact catalogue."""
        return hashlib.sha256(self.canonical_bytes()).hexdigest()


def parse_catalogue(data: Any, *, what: str = "catalogue") -> Catalogue:
    """Validate a mapping as a catalogue; InvalidInput lists one violation per problem."""
    try:
        return Catalogue.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(f"invalid {what}", violations_of(exc)) from None


def load_catalogue(path: Path) -> Catalogue:
    """Read and validate an authored catalogue (.toml, .yaml or .yml)."""
    return parse_catalogue(read_mapping(path), what=f"catalogue {path}")


# --- statistics-authority keys -----------------------------------------------------------


def public_key_text(key: VerifyKey) -> str:
    """The one-line text form of a public key, as in ``authority.pub``."""
    return PUBLIC_PREFIX + base64.b64encode(bytes(key)).decode("ascii")


def generate_authority_key(directory: Path) -> tuple[Path, Path]:
    """Write a new ``authority.key`` (0600, never overwritten) and ``authority.pub``."""
    directory.mkdir(parents=True, exist_ok=True)
    secret_path, public_path = directory / AUTHORITY_KEY, directory / AUTHORITY_PUB
    try:  # reserve the name: O_EXCL refuses an existing file or symlink, atomically
        os.close(os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        raise AlreadyExists(
            f"{secret_path} exists already; an authority key is never overwritten"
        ) from None
    key = SigningKey.generate()
    try:
        seed = base64.b64encode(bytes(key)).decode("ascii")
        write_private(secret_path, f"{SECRET_PREFIX}{seed}\n".encode("ascii"))
    except BaseException:
        secret_path.unlink(missing_ok=True)
        raise
    public_path.write_text(public_key_text(key.verify_key) + "\n", encoding="ascii")
    return secret_path, public_path


def _read_key_text(path: Path, what: str) -> str:
    try:
        with path.open("rb") as fh:
            raw = fh.read(4097)
    except FileNotFoundError:
        raise KeyProblem(f"no {what} at {path}", hint=_INIT_HINT) from None
    except OSError as exc:
        raise KeyProblem(
            f"cannot read the {what} {path} ({type(exc).__name__})",
            hint="check the path and that you may read the file",
        ) from None
    try:
        return raw.decode("ascii").strip() if len(raw) <= 4096 else ""
    except UnicodeDecodeError:
        return ""


def _decode_key(text: str, prefix: str) -> bytes | None:
    if not text.startswith(prefix):
        return None
    try:
        raw = base64.b64decode(text[len(prefix) :], validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 32 else None


def load_signing_key(path: Path) -> SigningKey:
    """The statistics authority's secret key from ``authority.key`` (KeyProblem if unusable)."""
    text = _read_key_text(path, "statistics-authority secret key")
    mode = path.stat().st_mode
    if stat.S_IMODE(mode) & 0o077:
        raise KeyProblem(
            f"{path} can be read or written by other users",
            hint=f"chmod 600 {path}; if anyone may have copied it, make a new authority key "
            "and pin the new authority.pub on every node",
        )
    seed = _decode_key(text, SECRET_PREFIX)
    if seed is None:
        hint = (
            "that is the public half; sign with authority.key"
            if text.startswith(PUBLIC_PREFIX)
            else f"pass the {AUTHORITY_KEY} written by authority-init"
        )
        raise KeyProblem(f"{path} is not a statistics-authority secret key", hint=hint)
    return SigningKey(seed)


def load_verify_key(source: Path | str) -> VerifyKey:
    """The authority's public key from ``authority.pub`` or its text ``ed25519:<base64>``."""
    if isinstance(source, str) and source.strip().startswith(PUBLIC_PREFIX):
        text, where = source.strip(), "the public key text given"
    else:
        path = Path(source)
        text, where = _read_key_text(path, "statistics-authority public key"), str(path)
    if text.startswith(SECRET_PREFIX):
        raise KeyProblem(
            f"{where} is the authority's SECRET key, not its public key",
            hint="pass authority.pub; authority.key belongs offline with the statistics authority",
        )
    raw = _decode_key(text, PUBLIC_PREFIX)
    if raw is None:
        raise KeyProblem(
            f"{where} is not a statistics-authority public key",
            hint=f"pass the {AUTHORITY_PUB} written by authority-init (one line, ed25519:<base64>)",
        )
    return VerifyKey(raw)


# --- the signed file ---------------------------------------------------------------------


KIND: Final = SignedKind("catalogue", SIGNED_FORMAT, SIGNING_CONTEXT, MAX_SIGNED_BYTES)


def sign_catalogue(catalogue: Catalogue, signing_key: SigningKey) -> bytes:
    """The signed catalogue file; the same catalogue and key always give the same bytes."""
    return sign_document(
        KIND, catalogue.canonical_object(), catalogue.canonical_bytes(), signing_key
    )


def verify_catalogue(
    blob: bytes, authority: VerifyKey, *, federation: str | None = None
) -> Catalogue:
    """Check a signed catalogue against the pinned authority key and return it.

    PermissionDenied when the key, the signature or the federation is wrong; InvalidInput
    when the file is malformed (:func:`childreg.signed.open_signed`).
    """
    return open_signed(KIND, blob, authority, _parse_signed, federation=federation)


def read_signed_catalogue(
    path: Path, authority: VerifyKey, *, federation: str | None = None
) -> Catalogue:
    """Read and verify a signed catalogue file (see :func:`verify_catalogue`)."""
    return read_signed(KIND, path, authority, _parse_signed, federation=federation)


def _parse_signed(content: dict[str, Any]) -> Catalogue:
    return parse_catalogue(content, what="signed catalogue")
