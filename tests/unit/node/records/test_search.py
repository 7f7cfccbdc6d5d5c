"""Search and the duplicate warning through the Registry, on both stores.

Names are found by prefix and fuzzily across scripts, with the other criteria as filters;
the national id is matched exactly through its keyed hash; pages follow one another; the
index follows corrections and placements; no plaintext name reaches the store; and
registering a likely duplicate is held back unless a reason is given.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from childreg.errors import AlreadyExists
from childreg.history import Correction
from childreg.models import ChildIn, PlacementIn
from childreg.search import SearchQuery
from node.crypto.keys import Keyring
from node.records.registry import Registry
from node.store.base import RecordStore
from tools.dev.people import import_record


@pytest.fixture
def registry(store: RecordStore, keyring: Keyring) -> Registry:
    """A registry over each store."""
    return Registry(store, keyring)


def a_child(child_id: str = "C1", **changes: Any) -> ChildIn:
    """A valid child record."""
    fields: dict[str, Any] = {
        "child_id": child_id,
        "national_id": None,
        "given_name": "Aysel",
        "family_name": "Məmmədova",
        "date_of_birth": dt.date(2015, 3, 14),
        "sex": "female",
        "district": "nasimi",
    }
    return ChildIn(**(fields | changes))


def ids(registry: Registry, **query: Any) -> list[str]:
    """The child ids of the first page of a search."""
    return [h.child_id for h in registry.find_children(SearchQuery(**query)).hits]


def test_a_misspelled_name_in_the_other_script_finds_the_child(registry: Registry) -> None:
    """'Мамедова Айсел' and the prefix 'Mamm' find Aysel Məmmədova; 'Quliyeva' does not."""
    registry.register_child(a_child())
    registry.register_child(a_child("C2", given_name="Nigar", family_name="Quliyeva"))
    assert ids(registry, name="Мамедова Айсел") == ["C1"]
    assert ids(registry, name="Mamm") == ["C1"]
    assert ids(registry, name="Mamedva") == ["C1"]
    assert ids(registry, name="Гулиева") == ["C2"]
    assert ids(registry, name="Süleymanov") == []


def test_criteria_filter_and_the_national_id_is_exact(registry: Registry) -> None:
    """Birth date, district, school and national id narrow the hits."""
    registry.register_child(a_child(national_id="AZ00000001"))
    registry.register_child(
        a_child("C2", date_of_birth=dt.date(2016, 1, 2), district="sabail"),
        not_duplicate_reason="another child",
    )
    registry.record_placement(
        PlacementIn(
            child_id="C2",
            academic_year="2024/25",
            education_form="inclusive_class",
            institution="School  No. 6",
        )
    )
    assert ids(registry, name="Aysel", date_of_birth=dt.date(2015, 3, 14)) == ["C1"]
    assert ids(registry, name="Aysel", district="sabail") == ["C2"]
    assert ids(registry, school="school no. 6") == ["C2"]
    assert ids(registry, national_id="AZ00000001") == ["C1"]
    assert ids(registry, national_id="AZ00000002") == []
    (hit,) = registry.find_children(SearchQuery(school="School No. 6")).hits
    assert hit.school == "School  No. 6"
    assert (hit.given_name, hit.family_name, hit.closed) == ("Aysel", "Məmmədova", False)


def test_pages_follow_one_another(registry: Registry) -> None:
    """Every match appears once across pages; the last page has no next token."""
    registry.import_records(
        import_record(a_child(f"C{i:02d}", date_of_birth=dt.date(2010, 1, 1 + i)), i + 2)
        for i in range(7)
    )
    seen: list[str] = []
    token = None
    while True:
        page = registry.find_children(SearchQuery(name="Aysel", page_size=3, page_token=token))
        seen += [h.child_id for h in page.hits]
        token = page.next_page_token
        if token is None:
            break
    assert sorted(seen) == [f"C{i:02d}" for i in range(7)]


def test_the_index_follows_a_correction(registry: Registry) -> None:
    """After a correction the new name is found and the old one no longer."""
    registry.register_child(a_child())
    registry.correct_child(Correction(child_id="C1", reason="typo", family_name="Kərimova"))
    assert ids(registry, name="Kərimova") == ["C1"]
    assert ids(registry, name="Məmmədova") == []


def test_no_plaintext_name_reaches_the_store(registry: Registry, store: RecordStore) -> None:
    """The child's tokens do not contain its name or any of its prefixes."""
    registry.register_child(a_child())
    tokens = store.child_tokens("C1")
    assert tokens
    for token in tokens:
        assert b"mam" not in token.lower()
        assert b"ays" not in token.lower()
        assert len(token) == 16


def test_a_likely_duplicate_holds_registration_back(registry: Registry) -> None:
    """A swapped-name, swapped-date, Cyrillic re-entry is flagged; a reason registers it."""
    registry.register_child(a_child())
    swapped_date = a_child(
        "C2", given_name="Мамедова", family_name="Айсел", date_of_birth=dt.date(2015, 3, 12)
    )
    result = registry.register_child(swapped_date)
    assert not result.registered
    (candidate,) = result.duplicates
    assert candidate.hit.child_id == "C1"
    assert "given and family names swapped" in candidate.reasons
    assert "close birth date" in candidate.reasons
    assert registry.find_children(SearchQuery(name="Айсел")).hits[0].child_id == "C1"
    assert registry.register_child(swapped_date, not_duplicate_reason="twin").registered
    assert {h.child_id for h in registry.find_children(SearchQuery(name="Aysel")).hits} == {
        "C1",
        "C2",
    }


def test_day_and_month_swapped_is_a_reason(registry: Registry) -> None:
    """A birth date with day and month exchanged is flagged with that reason."""
    registry.register_child(a_child(date_of_birth=dt.date(2015, 3, 4)))
    (candidate,) = registry.likely_duplicates(a_child("C2", date_of_birth=dt.date(2015, 4, 3)))
    assert "birth day and month swapped" in candidate.reasons


def test_a_new_child_is_registered_without_a_reason(registry: Registry) -> None:
    """A child unlike any held registers straight away; a different birth year is not close."""
    registry.register_child(a_child())
    assert registry.register_child(a_child("C2", date_of_birth=dt.date(2016, 3, 14))).registered
    assert registry.register_child(a_child("C3", given_name="Leyla")).registered


def test_a_held_national_id_is_still_refused(registry: Registry) -> None:
    """A child whose national id is held is listed as such and cannot be registered."""
    registry.register_child(a_child(national_id="AZ00000001"))
    other = a_child("C2", given_name="Orxan", family_name="Zeynalov", national_id="AZ00000001")
    (candidate,) = registry.likely_duplicates(other)
    assert candidate.reasons == ("same national id",)
    with pytest.raises(AlreadyExists):
        registry.register_child(other)
