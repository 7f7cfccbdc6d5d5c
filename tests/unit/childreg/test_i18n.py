"""People's languages: catalogs, dates and times (childreg/i18n.py, tools/dev/i18n.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from childreg import i18n
from tools.dev import i18n as catalogs


def test_every_complete_language_has_a_catalog_that_the_check_accepts() -> None:
    """The shipped catalogs are current with the code and complete for ru and az."""
    assert catalogs.problems() == []
    for language in i18n.COMPLETE:
        if language != i18n.SOURCE_LANGUAGE:
            assert i18n.catalog_path(language).exists()


def test_english_is_the_source_language() -> None:
    """An English reader gets the message itself."""
    assert i18n.gettext("en", "Search") == "Search"


def test_an_unknown_language_is_refused_naming_the_choices() -> None:
    """Asking for a language with no catalog names the languages there are."""
    with pytest.raises(i18n.UnknownLanguage, match="available: en, ru, az, kk"):
        i18n.translations("fr")


def test_dates_come_out_in_each_languages_own_form() -> None:
    """One day is written the way readers of each language write it."""
    day = dt.date(2024, 9, 15)
    assert i18n.format_date(day, "en") == "September 15, 2024"
    assert i18n.format_date(day, "az") == "15 sentyabr 2024"
    assert "\u0441\u0435\u043d\u0442\u044f\u0431\u0440\u044f" in i18n.format_date(day, "ru")
    assert i18n.format_date(day, "ru", "short") == "15.09.2024"


def test_a_moment_is_shown_in_the_profiles_time_zone_to_the_minute() -> None:
    """A UTC moment is shown in local time, without seconds or microseconds."""
    moment = dt.datetime(2024, 9, 15, 10, 3, 5, 123456, tzinfo=dt.UTC)
    assert i18n.format_datetime(moment, "az", "Asia/Baku") == "15 sentyabr 2024, 14:03"
    assert i18n.format_datetime(moment, "en") == "September 15, 2024, 10:03\u202fAM"


def test_a_naive_moment_is_refused() -> None:
    """A moment without a time zone cannot be placed in local time, so it is refused."""
    with pytest.raises(ValueError, match="timezone-aware"):
        i18n.format_datetime(dt.datetime(2024, 9, 15, 10, 3), "en")


def test_the_check_reports_an_untranslated_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message in the code with no Russian translation fails the check, naming it."""
    package = tmp_path / "childreg"
    package.mkdir()
    (package / "m.py").write_text('from childreg.i18n import N_\nX = N_("Register a child")\n')
    monkeypatch.setattr(catalogs, "ROOT", tmp_path)
    monkeypatch.setattr(catalogs, "PACKAGES", ("childreg",))
    monkeypatch.setattr(catalogs, "TEMPLATE", tmp_path / "childreg.pot")
    monkeypatch.setattr(catalogs, "catalog_path", lambda lang: tmp_path / lang / "c.po")
    assert catalogs.update() == 0
    found = catalogs.problems()
    assert "ru: untranslated: 'Register a child'" in found
    assert "az: untranslated: 'Register a child'" in found
    assert not any(line.startswith("kk: untranslated") for line in found)


def test_update_leaves_a_catalog_alone_when_only_babels_version_would_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A catalog whose messages are current is not rewritten for its Generated-By line."""
    package = tmp_path / "childreg"
    package.mkdir()
    (package / "m.py").write_text('from childreg.i18n import N_\nX = N_("Register a child")\n')
    monkeypatch.setattr(catalogs, "ROOT", tmp_path)
    monkeypatch.setattr(catalogs, "PACKAGES", ("childreg",))
    monkeypatch.setattr(catalogs, "TEMPLATE", tmp_path / "childreg.pot")
    monkeypatch.setattr(catalogs, "catalog_path", lambda lang: tmp_path / lang / "c.po")
    catalogs.update()
    ru = tmp_path / "ru" / "c.po"
    older = ru.read_text().replace('"Generated-By: Babel ', '"Generated-By: Babel 0.0-was-')
    ru.write_text(older)
    catalogs.update()
    assert ru.read_text() == older
    (package / "m.py").write_text('from childreg.i18n import N_\nX = N_("Close a record")\n')
    catalogs.update()
    assert "Close a record" in ru.read_text()
