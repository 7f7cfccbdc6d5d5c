"""Synthetic children with realistic names, for search and duplicate tests and the bench.

tools/dev/synth.py gives Azerbaijani given names but visibly fake family names
(``Synth-0421``); matching across scripts needs real-looking ones, so this adds family
names of Azerbaijan, Kazakhstan and Russia, and a clerk's transliteration of Latin names
into Cyrillic (:func:`to_cyrillic`) and the perturbations a duplicate suffers.
"""

from __future__ import annotations

import datetime as dt
import random  # noqa: TID251 -- reproducible synthetic data, nothing security-relevant
from typing import Final

from childreg.models import ChildIn, ImportRecord, PlacementIn
from tools.dev.synth import FEMALE_NAMES, MALE_NAMES

# ruff: noqa: RUF001

#: Family names (male form; the female form adds "a").
FAMILY: Final = (
    "Məmmədov", "Əliyev", "Hüseynov", "Quliyev", "Həsənov", "İsmayılov", "Abdullayev",
    "Cəfərov", "Rəhimov", "Nəsirov", "Kərimov", "Süleymanov", "Bağırov", "Qasımov",
    "Sadıqov", "Zeynalov", "Mustafayev", "Nəbiyev", "Axundov", "Şükürov", "Ахметов",
    "Жумабаев", "Нұрланов", "Сейтқалиев", "Оспанов", "Бекмұратов", "Иванов", "Смирнов",
    "Кузнецов", "Попов", "Соколов", "Лебедев", "Orazbayev", "Tokayev", "Sultanov",
    "Yusupov", "Ibragimov", "Rasulov", "Valiyev", "Novruzov",
)  # fmt: skip
_KAZAKH_GIVEN: Final = (
    ("Нурсултан", "male"), ("Ерлан", "male"), ("Айдос", "male"), ("Дәурен", "male"),
    ("Айгерім", "female"), ("Әсел", "female"), ("Жансая", "female"), ("Гүлнұр", "female"),
)  # fmt: skip
GIVEN: Final = (
    tuple((n, "male") for n in MALE_NAMES)
    + tuple((n, "female") for n in FEMALE_NAMES)
    + _KAZAKH_GIVEN
)

_TO_CYRILLIC: Final = {
    "a": "а", "b": "б", "c": "дж", "ç": "ч", "d": "д", "e": "е", "ə": "а", "f": "ф",
    "g": "г", "ğ": "г", "h": "г", "x": "х", "ı": "ы", "i": "и", "İ": "и", "j": "ж",
    "k": "к", "q": "г", "l": "л", "m": "м", "n": "н", "o": "о", "ö": "ё", "p": "п",
    "r": "р", "s": "с", "ş": "ш", "t": "т", "u": "у", "ü": "ю", "v": "в", "y": "й",
    "z": "з",
}  # fmt: skip
_TO_LATIN: Final = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ж": "zh", "з": "z",
    "и": "i", "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p",
    "р": "r", "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch",
    "ш": "sh", "ы": "y", "э": "e", "ю": "yu", "я": "ya", "ә": "a", "ғ": "g", "қ": "q",
    "ң": "ng", "ө": "o", "ұ": "u", "ү": "u", "һ": "h", "і": "i", "ь": "", "ъ": "",
}  # fmt: skip


def _case(text: str) -> str:
    return text[:1].upper() + text[1:]


def to_cyrillic(name: str) -> str:
    """A clerk's Russian-style Cyrillic for a Latin name (Cyrillic stays)."""
    if any("а" <= ch.lower() <= "я" or ch.lower() in "әғқңөұүһі" for ch in name):
        return name
    low = name.replace("İ", "i").lower()
    out = "".join(_TO_CYRILLIC.get(ch, ch) for ch in low)
    return _case(out.replace("йа", "я").replace("йе", "е").replace("ийев", "иев"))


def to_latin(name: str) -> str:
    """A passport-style Latin spelling of a Cyrillic name (Latin stays)."""
    out = "".join(_TO_LATIN.get(ch, ch) for ch in name.lower())
    return _case(out)


def other_script(name: str) -> str:
    """The name written in the other script."""
    cyrillic = to_cyrillic(name)
    return to_latin(name) if cyrillic == name else cyrillic


def typo(name: str, rng: random.Random) -> str:
    """One keyboard slip (a letter replaced, dropped, doubled or two exchanged), not first."""
    if len(name) < 4:
        return name + name[-1]
    i = rng.randrange(1, len(name) - 1)
    kind = rng.randrange(4)
    if kind == 0:
        pool = "аеиоу" if "а" <= name[i].lower() <= "я" else "aeiou"
        return name[:i] + rng.choice([c for c in pool if c != name[i]]) + name[i + 1 :]
    if kind == 1:
        return name[:i] + name[i + 1 :]
    if kind == 2:
        return name[:i] + name[i] + name[i:]
    return name[:i] + name[i + 1] + name[i] + name[i + 2 :]


def random_child(
    rng: random.Random, child_id: str, *, national_id: str | None, district: str = "nasimi"
) -> ChildIn:
    """A child with a random name of the lists and a birth date in 2008-2020."""
    given, sex = rng.choice(GIVEN)
    family = rng.choice(FAMILY)
    if sex == "female":
        family += "а" if family[-1].lower() in "вн" and "а" <= family[-1] <= "я" else "a"
    born = dt.date(2008, 1, 1) + dt.timedelta(days=rng.randrange(13 * 365))
    return ChildIn(
        child_id=child_id,
        national_id=national_id,
        given_name=given,
        family_name=family,
        date_of_birth=born,
        sex=sex,
        district=district,
    )


def import_record(child: ChildIn, line: int, school: str | None = None) -> ImportRecord:
    """The child as an import row placed in 2024/25 (in ``school`` when given)."""
    return ImportRecord(
        line=line,
        child=child,
        placement=PlacementIn(
            child_id=child.child_id,
            academic_year="2024/25",
            education_form="inclusive_class",
            institution=school,
        ),
    )
