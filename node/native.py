"""The bulk import's compiled hot path, and the guard that never lets a stale one run.

A bulk import spends most of its CPU in Python code that converts each streamed record
and builds and seals its row: :mod:`node.convert`, :mod:`node.records` and
:mod:`node.aead`. ``make`` compiles those modules with mypyc (``setup.py``), which turns
the same typed source into C extensions: a worker's time per row, measured in one
process, fell from about 64 to 52 µs. (:mod:`node.keys` stays interpreted: compiled, its
classes refuse subclasses and badly typed keyring files fail with TypeError instead of
the clear KeyProblem.)
Nothing else changes: the source stays the reference, and without a compiler, with a
plain ``pip install`` or with ``CHILDREG_PURE=1`` the same source runs interpreted.

The compiled files sit beside their sources (an editable install), and Python prefers an
extension module to a source file of the same name, so a source edited after the build
would silently lose to its old compiled form. The build therefore records each source's
SHA-256 in :data:`MANIFEST`, and when the ``node`` package is first imported,
:func:`guard` loads the group from source if any compiled module's source no longer
matches (the modules are compiled as one group, so all of them or none run compiled).
``make`` rebuilds whenever a source is newer than the build.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Final

#: The ``node`` modules compiled together (names within the package).
COMPILED: Final = ("aead", "convert", "records")
#: The build's record of each compiled source's SHA-256, beside the sources.
MANIFEST: Final = "native-build.json"
#: Set to ``1`` to run every module from source even when a fresh build exists.
PURE_ENV: Final = "CHILDREG_PURE"


def source_digest(path: Path) -> str:
    """SHA-256 of a source file, as the manifest records it."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest_for(package_dir: Path, names: Sequence[str] = COMPILED) -> dict[str, str]:
    """What the build records: each compiled module's source digest, by module name."""
    return {name: source_digest(package_dir / f"{name}.py") for name in names}


def write_manifest(package_dir: Path, names: Sequence[str] = COMPILED) -> None:
    """Record the sources being compiled (the build calls this as it compiles them)."""
    text = json.dumps(manifest_for(package_dir, names), indent=2, sort_keys=True) + "\n"
    (package_dir / MANIFEST).write_text(text, encoding="utf-8")


def has_compiled(package_dir: Path, name: str) -> bool:
    """Whether a compiled form of module ``name`` lies beside its source."""
    return any(
        (package_dir / f"{name}{suffix}").exists()
        for suffix in importlib.machinery.EXTENSION_SUFFIXES
    )


def stale(package_dir: Path, names: Sequence[str] = COMPILED) -> bool:
    """Whether a compiled module lies beside a source it was not built from (or the
    build's record is missing or unreadable)."""
    if not any(has_compiled(package_dir, name) for name in names):
        return False
    try:
        built = json.loads((package_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True
    if not isinstance(built, dict):
        return True
    return any(
        has_compiled(package_dir, name)
        and built.get(name) != source_digest(package_dir / f"{name}.py")
        for name in names
    )


class SourceFirst(importlib.abc.MetaPathFinder):
    """Loads the given modules from their source files, whatever else lies beside them."""

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


def guard(package: str, package_dir: Path, names: Sequence[str] = COMPILED) -> bool:
    """Make ``package``'s compiled modules load from source if stale or if asked
    (``CHILDREG_PURE=1``); True if it did. Called by the package's ``__init__``."""
    if os.environ.get(PURE_ENV) != "1" and not stale(package_dir, names):
        return False
    if not any(has_compiled(package_dir, name) for name in names):
        return False
    sys.meta_path.insert(
        0, SourceFirst({f"{package}.{name}": package_dir / f"{name}.py" for name in names})
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
