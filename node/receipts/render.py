"""The guardian's receipts: one printable document per kind, from a template, in the
guardian's language, as self-contained HTML and as PDF.

Why: a guardian keeps, on paper, what they agreed to or took back. The document must be in
the guardian's language, name the school and the department as people name them, say how
to reach the department, and give times in the country's local time to the minute; every
value placed in it is escaped (Jinja2 autoescape), since names and references are typed by
people. One mechanism serves every kind of receipt: a kind is a template
``templates/<kind>.html`` extending ``base.html`` (``consent-grant``,
``consent-withdrawal``, ``erasure``; another kind is added the same way), its messages marked for
gettext (``{% trans %}``, ``_()``) and extracted into the catalogs by ``make i18n``.

The PDF is rendered from the same HTML by WeasyPrint, which embeds the fonts it used
(DejaVu Sans from Debian's fonts-dejavu-core, so the Azerbaijani schwa and Cyrillic letters
are drawn, not replaced); the HTML names the same fonts first, so a printout from a browser
looks alike. WeasyPrint is imported only when a PDF is asked for.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Final

from jinja2 import Environment, PackageLoader, StrictUndefined, pass_context
from jinja2.runtime import Context

from childreg import i18n

#: Every kind of receipt a node makes (each is ``templates/<kind>.html``).
KINDS: Final = ("consent-grant", "consent-withdrawal", "erasure")


@pass_context
def _local_time(context: Context, moment: dt.datetime) -> str:
    return i18n.format_datetime(moment, context["language"], context["timezone"])


@pass_context
def _local_date(context: Context, day: dt.date) -> str:
    return i18n.format_date(day, context["language"])


@cache
def _environment(language: str) -> Environment:
    """The template environment of one language (its catalog installed for gettext)."""
    env = Environment(
        loader=PackageLoader("node.receipts", "templates"),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.policies["ext.i18n.trimmed"] = True  # as tools/dev/i18n extracts them
    env.install_gettext_translations(  # type: ignore[attr-defined]  # added by the extension
        i18n.translations(language), newstyle=True
    )
    env.filters["local_time"] = _local_time
    env.filters["local_date"] = _local_date
    return env


@dataclass(frozen=True)
class Receipt:
    """One rendered receipt: its HTML, the same content as JSON data, and its PDF on demand."""

    kind: str
    language: str
    html: str
    data: Mapping[str, Any]
    _pdf: list[bytes] = field(default_factory=list, repr=False, compare=False)

    def json(self) -> str:
        """The receipt's content as JSON (sorted keys, UTF-8 text)."""
        return json.dumps(dict(self.data), ensure_ascii=False, sort_keys=True)

    def pdf(self) -> bytes:
        """The receipt as a PDF, fonts embedded (rendered once, then kept)."""
        if not self._pdf:
            self._pdf.append(html_to_pdf(self.html))
        return self._pdf[0]


def render_html(kind: str, language: str, zone: str, context: Mapping[str, Any]) -> str:
    """The receipt of ``kind`` as one self-contained HTML page in ``language``, times in
    time zone ``zone``; ValueError for an unknown kind, UnknownLanguage for a language
    childreg does not speak."""
    if kind not in KINDS:
        raise ValueError(f"unknown receipt kind {kind!r}; expected one of {', '.join(KINDS)}")
    template = _environment(i18n.check_language(language)).get_template(f"{kind}.html")
    return template.render({**context, "language": language, "timezone": zone})


def render(kind: str, language: str, zone: str, context: Mapping[str, Any]) -> Receipt:
    """A :class:`Receipt` of ``kind``: the HTML from its template, ``context`` as its data
    (dates and times as ISO text)."""
    page = render_html(kind, language, zone, context)
    data = {"receipt": kind, "language": language, "timezone": zone, **_plain(context)}
    return Receipt(kind, language, page, data)


def _plain(value: Any) -> Any:
    if isinstance(value, dt.date):  # dt.datetime too
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def html_to_pdf(page: str) -> bytes:
    """A self-contained HTML page as PDF bytes (WeasyPrint; no external resource fetched)."""
    from weasyprint import HTML, URLFetcher  # noqa: PLC0415 - heavy; only for a PDF

    nothing_fetched = URLFetcher(allowed_protocols=())  # every URL refused
    document: bytes = HTML(string=page, url_fetcher=nothing_fetched).write_pdf()
    return document
