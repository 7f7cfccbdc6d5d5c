"""Name skeletons: spellings of one name in Latin and Cyrillic meet; other names do not."""

from __future__ import annotations

# ruff: noqa: RUF001
import pytest

from node.records import names

SAME = [
    ("Мамедов", "Mammadov", "Məmmədov", "Mamedov"),
    ("Әлиева", "Aliyeva", "Əliyeva", "Алиева", "Alieva"),
    ("Нурсултан", "Nursultan", "Нұрсұлтан", "NURSULTAN"),
    ("Qasımov", "Гасымов", "Kasimov"),
    ("Xədicə", "Хадиджа", "Khadija"),
    ("Ахметова", "Akhmetova", "Ahmetova"),
    ("Cəfərov", "Джафаров", "Jafarov", "Ҹәфәров"),
    ("Айгерім", "Aigerim", "Aygerim", "Aıgerim"),
    ("Hüseyn", "Гусейн", "Гюсейн", "Huseyn"),
    ("Gülnar", "Гюльнар", "Гульнар"),
    ("Ömər", "Ёмар", "Omar"),
    ("Mehriban", "Мехрибан", "Мегрибан"),
]


@pytest.mark.parametrize("spellings", SAME)
def test_spellings_of_one_name_share_a_phonetic_key(spellings: tuple[str, ...]) -> None:
    """Every spelling of a name has the same phonetic key and a close skeleton."""
    first = names.skeleton(spellings[0])
    keys = {names.phonetic(names.skeleton(s)) for s in spellings}
    assert len(keys) == 1
    assert all(names.similarity(first, names.skeleton(s)) >= 0.9 for s in spellings)


def test_different_names_are_not_close() -> None:
    """Unrelated names have different keys and a low similarity."""
    a, b = names.skeleton("Мамедов"), names.skeleton("Сулейманов")
    assert names.phonetic(a) != names.phonetic(b)
    assert names.similarity(a, b) < 0.8


def test_skeletons_are_plain_ascii_letters() -> None:
    """A skeleton holds only a-z, without marks, spaces, digits or hyphens."""
    assert names.skeleton("Ərəbova-Qızı 2") == "arabovakizi"
    assert names.skeleton("١٢٣") == ""
    assert names.words("Leyla  Məmmədova-Quliyeva") == ["leila", "mamadova", "kulieva"]


def test_swapped_names_are_as_alike_as_straight_ones() -> None:
    """name_similarity takes the better of the two orders of given and family name."""
    given, family = names.skeleton("Aysel"), names.skeleton("Məmmədova")
    assert names.name_similarity(given, family, family, given) == 1.0
