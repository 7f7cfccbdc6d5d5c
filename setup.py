"""Build hook: compile the bulk import's hot modules with mypyc (see node/native.py).

``make`` builds in two steps: the project and its dependencies first, interpreted
(``CHILDREG_PURE=1``), then this hook again without build isolation, so mypyc sees the
same installed packages and configuration as ``mypy --strict``. A plain ``pip install``
has no mypyc in its isolated build environment and installs the interpreted modules.
"""

import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

sys.path.insert(0, str(Path(__file__).resolve().parent))  # PEP 517 builds leave it out

from node import native

PACKAGE_DIR = Path(__file__).resolve().parent / "node"


class BuildNative(build_ext):  # type: ignore[misc]  # setuptools is untyped
    """Compile, then record what was compiled (never before: node/native.py)."""

    def run(self) -> None:
        if not self.extensions:  # nothing compiled: an earlier build's record stays as it is
            super().run()
            return
        wheel_tree = [] if self.inplace else [Path(self.build_lib) / "node"]
        native.record_build(PACKAGE_DIR, super().run, into=wheel_tree)


extensions = []
if os.environ.get(native.PURE_ENV) != "1":
    try:
        from mypyc.build import mypycify
    except ImportError:  # no mypyc: the same modules run interpreted
        pass
    else:
        (PACKAGE_DIR / native.MANIFEST).unlink(missing_ok=True)  # until the build succeeds
        extensions = mypycify(
            [f"node/{name}.py" for name in native.COMPILED],
            opt_level="3",
            group_name=f"node.{native.LIBRARY.removesuffix('__mypyc')}",
        )

setup(ext_modules=extensions, cmdclass={"build_ext": BuildNative})
