"""`make check`: every test states the behaviour it checks in a one-sentence docstring.

A test whose name is its only explanation cannot be reviewed: a reader cannot tell
whether it asserts what it claims (docs/design/architecture.md, "Tests assert
behaviour"). This check walks the test files and names every test function without a
docstring, or whose docstring's first paragraph is not one sentence.

    python -m tools.dev.test_docstrings tests
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from pathlib import Path

#: A first paragraph that ends with exactly one full stop (or ! or ?), none inside it
#: except in abbreviations, numbers and dotted names ("e.g.", "0.2", "node.rpc").
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


def tests_in(path: Path) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    """The test functions and methods of one file (``test*`` names, at any depth)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test"
        ):
            yield node


def problem(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    """What is wrong with a test's docstring, or None when it is one sentence."""
    doc = ast.get_docstring(fn)
    if not doc or not doc.strip():
        return "has no docstring"
    first = " ".join(doc.strip().split("\n\n")[0].split())
    ends = [m for m in _SENTENCE_END.finditer(first) if not _abbreviation(first, m.start())]
    if not ends or ends[-1].end() != len(first.rstrip()):
        return "docstring's first paragraph does not end a sentence"
    return None


def _abbreviation(text: str, at: int) -> bool:
    word = text[: at + 1].rsplit(maxsplit=1)[-1].lower()
    return word in {"e.g.", "i.e.", "etc.", "vs.", "cf.", "no.", "approx."}


def offenders(root: Path) -> list[str]:
    """Every test under ``root`` with a missing or malformed docstring, as file:line: name."""
    found = []
    for path in [root] if root.is_file() else sorted(root.rglob("test_*.py")):
        for fn in tests_in(path):
            issue = problem(fn)
            if issue is not None:
                found.append(f"{path}:{fn.lineno}: {fn.name} {issue}")
    return found


def main(argv: list[str]) -> int:
    """Print the offenders under each given folder; exit 1 if there are any."""
    roots = [Path(a) for a in argv] or [Path("tests")]
    found = [line for root in roots for line in offenders(root)]
    for line in found:
        print(line)
    if found:
        print(
            f"{len(found)} test(s) need a one-sentence docstring stating the behaviour they "
            "check (CONTRIBUTING.md, 'Tests').",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
