"""Regenerate the checked-in protobuf/gRPC stubs, or check that they are fresh.

python -m tools.dev.protogen --out .      # write childreg/v1/*_pb2*.py(i)
python -m tools.dev.protogen --check      # exit 1 if regenerating would change anything
"""

from __future__ import annotations

import argparse
import filecmp
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTO_ROOT = ROOT / "proto"
PACKAGE_DIR = Path("childreg") / "v1"


def generate(out: Path) -> list[Path]:
    """Run protoc (from grpcio-tools) with the mypy-protobuf plugins into ``out``."""
    from grpc_tools import protoc  # dev dependency, imported only here

    protos = sorted((PROTO_ROOT / PACKAGE_DIR).glob("*.proto"))
    if not protos:  # a check over nothing would call any stubs fresh
        raise SystemExit(f"no .proto files under {PROTO_ROOT / PACKAGE_DIR}")
    (out / PACKAGE_DIR).mkdir(parents=True, exist_ok=True)
    bindir = Path(sys.executable).parent
    args = [
        "protoc",
        f"--plugin=protoc-gen-mypy={bindir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bindir / 'protoc-gen-mypy_grpc'}",
        f"-I{PROTO_ROOT}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *(str(p.relative_to(PROTO_ROOT)) for p in protos),
    ]
    cwd = os.getcwd()
    os.chdir(PROTO_ROOT)
    try:
        code = protoc.main(args)
    finally:
        os.chdir(cwd)
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")
    return sorted(p for p in (out / PACKAGE_DIR).iterdir() if p.name != "__init__.py")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the stubs under this root")
    parser.add_argument("--check", action="store_true", help="fail if the stubs are stale")
    ns = parser.parse_args(argv)
    if ns.check:
        with tempfile.TemporaryDirectory() as tmp:
            fresh = generate(Path(tmp))
            stale = [
                p.name
                for p in fresh
                if not (ROOT / PACKAGE_DIR / p.name).exists()
                or not filecmp.cmp(p, ROOT / PACKAGE_DIR / p.name, shallow=False)
            ]
            extra = {p.name for p in (ROOT / PACKAGE_DIR).glob("*_pb2*")} - {p.name for p in fresh}
        if stale or extra:
            print(
                "generated protobuf code is stale: "
                + ", ".join(sorted(stale + list(extra)))
                + "\nrun `make proto` and commit the result",
                file=sys.stderr,
            )
            return 1
        print("protobuf stubs are fresh")
        return 0
    generate((ns.out or ROOT).resolve())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
