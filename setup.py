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

sys.path.insert(0, str(Path(__file__).resolve().parent))  # PEP 517 builds leave it out

from node import native

extensions = []
if os.environ.get(native.PURE_ENV) != "1":
    try:
        from mypyc.build import mypycify
    except ImportError:  # no mypyc: the same modules run interpreted
        pass
    else:
        package_dir = Path(__file__).resolve().parent / "node"
        native.write_manifest(package_dir)
        extensions = mypycify(
            [f"node/{name}.py" for name in native.COMPILED],
            opt_level="3",
            group_name="node.native_build",
        )

setup(ext_modules=extensions)
