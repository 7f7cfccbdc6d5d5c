"""The bulk import's compiled hot path, and the guard that never lets a stale one run.

A bulk import spends most of its CPU in Python code that converts each streamed record
and builds and seals its row: :mod:`node.convert`, :mod:`node.records` and
:mod:`node.aead`. ``make`` compiles those modules with mypyc (``setup.py``), which turns
the same typed source into C extensions: an import worker's CPU per row fell from about
64 to 56 µs. (:mod:`node.keys` stays interpreted: compiled, its
classes refuse subclasses and badly typed keyring files fail with TypeError instead of
the clear KeyProblem.)
Nothing else changes: the source stays the reference, and without a compiler, with a
plain ``pip install`` or with ``CHILDREG_PURE=1`` the same source runs interpreted.

The compiled files sit beside their sources (an editable install), and Python prefers an
extension module to a source file of the same name, so a source edited after the build
would silently lose to its old compiled form. A finished build therefore records the
SHA-256 of each compiled source and of each first-party file it was compiled against
(:data:`DEPENDS`) in :data:`MANIFEST` (:func:`record_build`: a failed build leaves no
record), and when the ``node`` package is first imported, :func:`guard` loads the group
from source if any of them changed, or the record is missing, or part of the group is
missing (the modules are compiled as one group, so all of them or none run compiled).
``make`` rebuilds whenever one of those files is newer than the build.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Final

#: The ``node`` modules compiled together (names within the package).
COMPILED: Final = ("aead", "convert", "records")
#: The group's shared library (mypyc's ``<group>__mypyc``), beside the modules.
LIBRARY: Final = "native_build__mypyc"
#: First-party files whose types and constants the compiled code was built against
#: (relative to the directory holding the packages): a change to any is a stale build too.
DEPENDS: Final = (
    "childreg/codes.py",
    "childreg/errors.py",
    "childreg/models.py",
    "childreg/v1/records_pb2.pyi",
    "childreg/v1/statistics_pb2.pyi",
    "node/keys.py",
    "node/privacy.py",
    "node/store/base.py",
)
#: The build's record of each compiled source's SHA-256, beside the sources.
MANIFEST: Final = "native-build.json"
#: Set to ``1`` to run every module from source even when a fresh build exists.
PURE_ENV: Final = "CHILDREG_PURE"


@dataclass(frozen=True)
class Group:
    """What is compiled together: module names in the package, the group's library, and
    the files (relative to the package's parent directory) the build depends on."""

    names: tuple[str, ...] = COMPILED
    library: str | None = LIBRARY
    depends: tuple[str, ...] = DEPENDS


NODE: Final = Group()


def source_digest(path: Path) -> str | None:
    """SHA-256 of a file, as the manifest records it (None if it is missing)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def manifest_for(package_dir: Path, group: Group = NODE) -> dict[str, str | None]:
    """What the build records: each compiled module's source digest, by module name, and
    each file it depends on, by path."""
    record = {name: source_digest(package_dir / f"{name}.py") for name in group.names}
    record.update({rel: source_digest(package_dir.parent / rel) for rel in group.depends})
    return record


def write_manifest(package_dir: Path, record: dict[str, str | None]) -> None:
    """Record what a finished build was compiled from."""
    text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    (package_dir / MANIFEST).write_text(text, encoding="utf-8")


def record_build(
    package_dir: Path,
    build: Callable[[], None],
    group: Group = NODE,
    into: Sequence[Path] = (),
) -> None:
    """Run ``build`` (the compiler) and only if it succeeds record what it compiled, beside
    the sources and in each directory of ``into`` (a wheel's build tree): the record of an
    earlier build is removed first, so a failed or interrupted build leaves whatever it
    left behind marked stale. The digests are taken before compiling."""
    record = manifest_for(package_dir, group)
    targets = [package_dir, *into]
    for target in targets:
        (target / MANIFEST).unlink(missing_ok=True)
    build()
    for target in targets:
        write_manifest(target, record)


def has_compiled(package_dir: Path, name: str) -> bool:
    """Whether a compiled form of module ``name`` lies beside its source."""
    return any(
        (package_dir / f"{name}{suffix}").exists()
        for suffix in importlib.machinery.EXTENSION_SUFFIXES
    )


def stale(package_dir: Path, group: Group = NODE) -> bool:
    """Whether compiled modules lie here that must not run: not the whole group (or not its
    library), or built from other sources or dependencies than those now present, or with
    the build's record missing or unreadable."""
    present = [has_compiled(package_dir, name) for name in group.names]
    if not any(present):
        return False
    if not all(present) or (group.library and not has_compiled(package_dir, group.library)):
        return True
    try:
        built = json.loads((package_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True
    return not isinstance(built, dict) or built != manifest_for(package_dir, group)


class SourceFirst:
    """A meta-path finder that loads the given modules from their source files, whatever
    else lies beside them. (Not an ``importlib.abc.MetaPathFinder`` subclass: importing
    that module costs every process that imports ``node`` about 9 ms.)"""

    def __init__(self, sources: dict[str, Path]) -> None:
        self.sources = sources

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        source = self.sources.get(fullname)
        if source is None:
            return None
        return importlib.util.spec_from_file_location(fullname, source)


def guard(package: str, package_dir: Path, group: Group = NODE) -> bool:
    """Make ``package``'s compiled modules load from source if stale or if asked
    (``CHILDREG_PURE=1``); True if it did. Called by the package's ``__init__``."""
    if not any(has_compiled(package_dir, name) for name in group.names):
        return False
    if os.environ.get(PURE_ENV) != "1" and not stale(package_dir, group):
        return False
    sys.meta_path.insert(
        0, SourceFirst({f"{package}.{name}": package_dir / f"{name}.py" for name in group.names})
    )
    return True


def compiled_modules(package: str = "node", names: Sequence[str] = COMPILED) -> list[str]:
    """The modules of the group that run compiled in this process.

    A module already imported is judged by its loader; one not yet imported by what
    Python will load: its compiled file, unless the guard set the group aside. (No import
    here: the statistics noise path, which imports this package, imports nothing
    dynamically — tests/unit/test_dp_noise_path.py.)
    """
    home = sys.modules.get(package)
    if home is None or home.__file__ is None:
        return []
    package_dir = Path(home.__file__).parent
    set_aside = {
        name
        for finder in sys.meta_path
        if isinstance(finder, SourceFirst)
        for name in finder.sources
    }
    out = []
    for name in names:
        fullname = f"{package}.{name}"
        module = sys.modules.get(fullname)
        if module is not None:
            compiled = isinstance(
                getattr(module.__spec__, "loader", None), importlib.machinery.ExtensionFileLoader
            )
        else:
            compiled = fullname not in set_aside and has_compiled(package_dir, name)
        if compiled:
            out.append(fullname)
    return out
