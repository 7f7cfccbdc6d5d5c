"""Keep the translation catalogs in step with the code: extract, update, check.

Why: a message added to the code or a template and missing from the Russian or
Azerbaijani catalog would show in English to a person who works in Russian, and nobody
would notice until a commission did. ``update`` extracts every message (``_``, ``N_``,
``gettext(language, message)``, ``ngettext(language, singular, plural, n)`` in Python;
``_``/``gettext``/``{% trans %}`` in Jinja2 templates) into ``childreg/locale/childreg.pot``
and merges it into each language's ``.po`` file; ``check`` (run by ``make check``) fails
while the template is out of date, a complete language (:data:`childreg.i18n.COMPLETE`)
has an untranslated or fuzzy message, or a translation's placeholders differ from its
message's.

Usage: ``python -m tools.dev.i18n update`` after changing messages, then translate what it
reports; ``python -m tools.dev.i18n check``.
"""

from __future__ import annotations

import datetime as dt
import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from babel.messages.catalog import Catalog
from babel.messages.extract import extract
from babel.messages.pofile import read_po, write_po

from childreg.i18n import COMPLETE, DOMAIN, LANGUAGES, LOCALE_DIR, SOURCE_LANGUAGE, catalog_path

ROOT: Final = Path(__file__).resolve().parents[2]
#: The packages whose code people read messages of.
PACKAGES: Final = ("childreg", "node", "coordinator", "witness", "tools")
SKIP_PARTS: Final = frozenset({"v1", "__pycache__", "dev"})
TEMPLATE: Final = LOCALE_DIR / f"{DOMAIN}.pot"
PYTHON_KEYWORDS: Final = {"_": None, "N_": None, "gettext": (2,), "ngettext": (2, 3)}
#: A fixed creation date, so regenerating an unchanged template changes no byte.
EPOCH: Final = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
JINJA_OPTIONS: Final = {"extensions": "jinja2.ext.i18n", "trimmed": "true"}


def _sources() -> Iterator[tuple[str, Path]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*")):
            if SKIP_PARTS.intersection(path.relative_to(ROOT).parts):
                continue
            if path.suffix == ".py":
                yield "python", path
            elif path.suffix == ".html" and "templates" in path.parts:
                yield "jinja2.ext:babel_extract", path


def extracted() -> Catalog:
    """Every message in the code and templates, as a catalog template."""
    catalog = Catalog(project="childreg", domain=DOMAIN, fuzzy=False, creation_date=EPOCH)
    for method, path in _sources():
        keywords = (
            PYTHON_KEYWORDS
            if method == "python"
            else {"_": None, "gettext": None, "ngettext": (1, 2)}
        )
        options = JINJA_OPTIONS if method != "python" else {}
        with path.open("rb") as source:
            for line, message, comments, context in extract(
                method, source, keywords=keywords, options=options, strip_comment_tags=True
            ):
                where = str(path.relative_to(ROOT))
                catalog.add(message, None, [(where, line)], auto_comments=comments, context=context)
    return catalog


def _read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as source:
        return read_po(source, locale=locale, domain=DOMAIN)


def _unversioned(po: bytes) -> bytes:
    """A catalog's text without the ``Generated-By`` line, which names Babel's version."""
    return b"".join(line for line in po.splitlines(True) if not line.startswith(b'"Generated-By:'))


def _write(path: Path, catalog: Catalog) -> None:
    """Write ``catalog`` unless the file says the same already (a Babel of another version
    would otherwise rewrite every catalog for its ``Generated-By`` line alone)."""
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=100, omit_header=False, sort_output=True)
    data = buffer.getvalue()
    if path.exists() and _unversioned(path.read_bytes()) == _unversioned(data):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _ids(catalog: Catalog) -> set[object]:
    return {message.id for message in catalog if message.id}


def update() -> int:
    """Extract into the template and merge it into every catalog; say what needs translating."""
    template = extracted()
    _write(TEMPLATE, template)
    for language in LANGUAGES:
        if language == SOURCE_LANGUAGE:
            continue
        path = catalog_path(language)
        catalog = (
            _read(path, language)
            if path.exists()
            else Catalog(
                locale=language, domain=DOMAIN, project="childreg", creation_date=EPOCH, fuzzy=False
            )
        )
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        _write(path, catalog)
        missing = [m for m in catalog if m.id and (not m.string or m.fuzzy)]
        print(f"{language}: {len(missing)} message(s) to translate in {path.relative_to(ROOT)}")
    return 0


def problems() -> list[str]:
    """What is wrong with the catalogs (nothing when they are current and complete)."""
    found: list[str] = []
    wanted = _ids(extracted())
    if not TEMPLATE.exists() or _ids(_read(TEMPLATE)) != wanted:
        found.append("the catalog template is out of date: run `python -m tools.dev.i18n update`")
    for language in LANGUAGES:
        if language == SOURCE_LANGUAGE:
            continue
        path = catalog_path(language)
        if not path.exists():
            found.append(f"{language}: no catalog; run `python -m tools.dev.i18n update`")
            continue
        catalog = _read(path, language)
        if lacking := wanted - _ids(catalog):
            found.append(
                f"{language}: catalog lacks {len(lacking)} message(s); "
                "run `python -m tools.dev.i18n update`"
            )
        for message, errors in catalog.check():
            for error in errors:
                found.append(f"{language}: {message.id!r}: {error}")
        if language in COMPLETE:
            for message in catalog:
                if message.id and (
                    not message.string
                    or message.fuzzy
                    or (isinstance(message.string, tuple) and not all(message.string))
                ):
                    found.append(f"{language}: untranslated: {message.id!r}")
    return found


def main(argv: list[str]) -> int:
    """``update`` or ``check``."""
    if argv[:1] == ["update"]:
        return update()
    if argv[:1] == ["check"]:
        found = problems()
        for line in found:
            print(line, file=sys.stderr)
        if not found:
            print("i18n: catalogs current and complete for " + ", ".join(COMPLETE))
        return 1 if found else 0
    print("usage: python -m tools.dev.i18n update|check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
