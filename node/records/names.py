"""Names folded to one ASCII skeleton, so spellings in Latin and Cyrillic meet.

Why: staff type a child's name as they heard it or as one document spells it — Azerbaijani
Latin ("Məmmədov"), Azerbaijani or Russian Cyrillic ("Мамедов"), a passport's Latin
("Mammadov", "Mamedov"), Kazakh Cyrillic ("Нұрсұлтан") or Kazakh Latin ("Nursultan",
2018's "Nursultan"/2021's "Nūrsūltan"). Search and the duplicate warning compare
*skeletons*: NFKC and casefold, then a table of Cyrillic (Russian, Kazakh, Azerbaijani)
letters to Latin and of Azerbaijani and Kazakh Latin letters to ASCII, then a few folds of
sounds that the scripts write differently (x/kh/h/g, c/j/dzh/zh, q/k, y/i, yu/ü), then repeated
letters collapsed. A skeleton is for matching only, never shown. On top of it,
:func:`phonetic` is jellyfish's Metaphone (vowels after the first letter and voicing
differences fade), and :func:`similarity` is rapidfuzz's Jaro-Winkler.
"""

# The tables below are of look-alike letters on purpose (Cyrillic beside Latin).
# ruff: noqa: RUF001, RUF003

from __future__ import annotations

import re
import unicodedata
from typing import Final

import jellyfish
from rapidfuzz.distance import JaroWinkler

#: Cyrillic letters (Russian, Kazakh, Azerbaijani Cyrillic) to Latin, lower case.
CYRILLIC: Final[dict[str, str]] = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "yo", "ж": "j",
    "з": "z", "и": "i", "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o",
    "п": "p", "р": "r", "с": "s", "т": "t", "у": "u", "ф": "f", "х": "h", "ц": "ts",
    "ч": "ch", "ш": "sh", "щ": "sh", "ъ": "", "ы": "i", "ь": "", "э": "e", "ю": "yu",
    "я": "ya",
    # Kazakh
    "ә": "a", "ғ": "g", "қ": "k", "ң": "n", "ө": "o", "ұ": "u", "ү": "u", "һ": "h",
    "і": "i",
    # Azerbaijani Cyrillic (ә ғ ө ү һ as above)
    "ҹ": "j", "ј": "y", "ҝ": "g",
}  # fmt: skip

#: Azerbaijani and Kazakh (2018 and 2021) Latin letters that decomposition does not fold
#: right; the rest (á ó ú ý ä ö ü ū ñ ń ǵ …) lose their marks by NFKD.
LATIN: Final[dict[str, str]] = {
    "ə": "a", "ä": "a", "ğ": "g", "ǵ": "g", "ı": "i", "ç": "ch", "ş": "sh", "c": "j",
    "x": "h", "q": "k", "w": "v",
}  # fmt: skip

_TABLE: Final = str.maketrans(CYRILLIC | LATIN)
# Sounds written differently across the scripts and transliterations, folded to one.
_FOLDS: Final = (
    (re.compile(r"dzh|dj|zh"), "j"),
    # Azerbaijani and Kazakh h, x and Russian х, г all meet: Hüseyn / Гусейн, Mehriban /
    # Мегрибан, Axmetova / Ахметова / Akhmetova.
    (re.compile(r"kh|h"), "g"),
    (re.compile(r"y"), "i"),
    # ü and ö as Russian writes them (Гюлнар, Сюлейманов, Ёмар): the soft i goes.
    (re.compile(r"i([uo])"), r"\1"),
)
_NOT_LETTER: Final = re.compile(r"[^a-z]+")
_REPEATS: Final = re.compile(r"(.)\1+")
_WORD: Final = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")


def skeleton(name: str) -> str:
    """The ASCII matching skeleton of one name (empty if it holds no letters)."""
    text = unicodedata.normalize("NFKC", name).casefold().translate(_TABLE)
    text = "".join(
        ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch)
    )
    text = _NOT_LETTER.sub("", text.translate(_TABLE))
    for pattern, replacement in _FOLDS:
        text = pattern.sub(replacement, text)
    return _REPEATS.sub(r"\1", text)


def words(name: str) -> list[str]:
    """The skeletons of the words of ``name`` (a query may hold given and family name)."""
    found = [skeleton(w) for w in _WORD.findall(unicodedata.normalize("NFKC", name))]
    return [w for w in found if w]


def phonetic(skel: str) -> str:
    """A phonetic key of a skeleton (Metaphone), or the skeleton when Metaphone is empty."""
    return jellyfish.metaphone(skel) or skel


def similarity(a: str, b: str) -> float:
    """Jaro-Winkler similarity of two skeletons, 0..1."""
    return float(JaroWinkler.normalized_similarity(a, b))


def name_similarity(given: str, family: str, other_given: str, other_family: str) -> float:
    """How alike two (given, family) name pairs are, as the better of the two orders.

    Each argument is a skeleton. The swapped order catches a given and family name
    entered the wrong way round.
    """
    straight = (similarity(given, other_given) + similarity(family, other_family)) / 2
    swapped = (similarity(given, other_family) + similarity(family, other_given)) / 2
    return max(straight, swapped)
