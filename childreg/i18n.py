"""People's languages: gettext catalogs, and dates and times in each language's own form.

Why: guardians read their receipts, and commission and school staff will read the web
console (not built yet), in the language they work in (Russian, Azerbaijani and English at
least; Kazakh welcome), so every string a person reads goes through gettext. The catalogs
are Babel ``.po`` files kept in the package
(``childreg/locale/<language>/LC_MESSAGES/childreg.po``); English is the source language and
needs none. A catalog is compiled in memory the first time a language is asked
for, so there is no build step and no compiled ``.mo`` file to keep in step with its source.
``python -m tools.dev.i18n update`` extracts the messages from the code and templates and
merges them into every catalog; ``python -m tools.dev.i18n check`` (part of ``make check``)
fails while the catalogs are out of date or a complete language has an untranslated message.

Dates and times are formatted by Babel from CLDR data, so "15 sentyabr 2024" and
"September 15, 2024" come out right without country code here; the time zone a person sees
is the one their federation's country profile names.
"""

from __future__ import annotations

import datetime as dt
import gettext as _gettext
import io
from functools import cache
from pathlib import Path
from typing import Final, Literal
from zoneinfo import ZoneInfo

from babel.dates import format_date as _format_date
from babel.dates import format_time as _format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

#: The gettext domain of every childreg message.
DOMAIN: Final = "childreg"
#: Where the catalogs are (package data).
LOCALE_DIR: Final = Path(__file__).parent / "locale"
#: The source language: its messages are the msgids themselves.
SOURCE_LANGUAGE: Final = "en"
#: Languages that must be complete (``make check`` fails on an untranslated message).
COMPLETE: Final = ("en", "ru", "az")
#: Every language a person can pick; those beyond COMPLETE may be partly translated
#: (an untranslated message shows in English).
LANGUAGES: Final = ("en", "ru", "az", "kk")
#: Each language's name in itself, for a language picker.
NATIVE_NAMES: Final = {"en": "English", "ru": "Русский", "az": "Azərbaycan", "kk": "Қазақ"}

DateStyle = Literal["short", "medium", "long"]


class UnknownLanguage(ValueError):
    """A language childreg has no catalog for."""


def check_language(language: str) -> str:
    """``language`` if childreg speaks it; :class:`UnknownLanguage` naming the choices if not."""
    if language not in LANGUAGES:
        raise UnknownLanguage(f"unknown language {language!r}; available: {', '.join(LANGUAGES)}")
    return language


def catalog_path(language: str) -> Path:
    """The ``.po`` file of one language."""
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def _compiled(language: str) -> _gettext.NullTranslations:
    # functools.cache is safe across threads: two first calls at once may both compile the
    # catalog, and either result is the same, so no lock is needed on this per-message path.
    path = catalog_path(language)
    if language == SOURCE_LANGUAGE or not path.exists():
        return _gettext.NullTranslations()
    with path.open("rb") as source:
        catalog = read_po(source, locale=language, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


def translations(language: str) -> _gettext.NullTranslations:
    """The compiled catalog of ``language`` (cached; English is the identity)."""
    return _compiled(check_language(language))


def gettext(language: str, message: str) -> str:
    """``message`` in ``language`` (the English message where no translation exists)."""
    return translations(language).gettext(message)


def ngettext(language: str, singular: str, plural: str, n: int) -> str:
    """The singular or plural form of a message in ``language`` for ``n``."""
    return translations(language).ngettext(singular, plural, n)


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "translate later"
    """Mark a message for extraction without translating it now (it is translated where
    it is shown, in the reader's language)."""
    return message


def format_date(day: dt.date, language: str, style: DateStyle = "long") -> str:
    """A date as a reader of ``language`` writes it (``15 sentyabr 2024``)."""
    return _format_date(day, format=style, locale=check_language(language))


def format_datetime(
    moment: dt.datetime, language: str, zone: str = "UTC", style: DateStyle = "long"
) -> str:
    """A moment in time zone ``zone``, to the minute, as a reader of ``language`` writes it.

    ``moment`` must be timezone-aware (every time childreg keeps is UTC).
    """
    if moment.tzinfo is None:
        raise ValueError("format_datetime needs a timezone-aware moment")
    local = moment.astimezone(ZoneInfo(zone))
    language = check_language(language)
    day = _format_date(local.date(), format=style, locale=language)
    return f"{day}, {_format_time(local, format='short', locale=language)}"


def language_names() -> dict[str, str]:
    """Each language childreg speaks, with its name in itself."""
    return {language: NATIVE_NAMES[language] for language in LANGUAGES}
