"""The bundled dish cards: schema, consistency, and a card for every label a model can name."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from llm_client import DishFactsError, dish_card
from llm_client.facts import CARDS_PATH, EU_ALLERGENS, card_problems, load_cards

REPO = Path(__file__).resolve().parents[2]
FOOD101_CLASSES = REPO.parent / "shared" / "data" / "food101-classes.txt"
ANIMAL_ALLERGENS = {"milk", "eggs", "fish", "crustaceans", "molluscs"}
CARDS = json.loads(CARDS_PATH.read_text(encoding="utf-8"))


def test_every_card_follows_the_schema() -> None:
    problems = [p for label, card in CARDS.items() for p in card_problems(label, card)]
    assert problems == []
    assert load_cards() == CARDS


def test_there_is_one_card_per_food101_label() -> None:
    if not FOOD101_CLASSES.is_file():
        pytest.skip(f"{FOOD101_CLASSES} is absent")
    labels = FOOD101_CLASSES.read_text().split()
    assert len(labels) == 101
    assert sorted(CARDS) == sorted(labels)


@pytest.mark.parametrize("labels_file", sorted(REPO.glob("models/*/labels.json")), ids=str)
def test_every_label_of_a_shipped_model_has_a_card(labels_file: Path) -> None:
    labels = json.loads(labels_file.read_text())
    missing = [label for label in labels if dish_card(label) is None]
    assert labels and missing == []


def test_a_model_ships_with_the_repo() -> None:
    assert list(REPO.glob("models/*/labels.json")), "no models/*/labels.json to check cards against"


@pytest.mark.parametrize("label", sorted(CARDS))
def test_card_values_are_consistent(label: str) -> None:
    card = CARDS[label]
    diet, allergens, serving = card["diet"], set(card["allergens"]), card["serving"]
    assert allergens <= set(EU_ALLERGENS)
    assert not diet["vegan"] or diet["vegetarian"]
    assert not diet["vegan"] or not allergens & ANIMAL_ALLERGENS
    assert not diet["vegetarian"] or not allergens & {"fish", "crustaceans", "molluscs"}
    assert diet["gluten_free"] == ("cereals containing gluten" not in allergens)
    # Atwater factors: the energy should roughly match the macros (fibre and rounding aside).
    atwater = 4 * serving["protein_g"] + 4 * serving["carbohydrate_g"] + 9 * serving["fat_g"]
    assert abs(atwater - serving["kcal"]) <= max(50, 0.25 * serving["kcal"])
    assert 0 < serving["kcal"] <= 2000 and 20 <= serving["grams"] <= 1000
    sentences = len(re.findall(r"[.!?](?:\s|$)", card["preparation"]))
    assert 2 <= sentences <= 4


def test_dish_card_normalizes_labels_and_returns_a_copy() -> None:
    card = dish_card("Apple pie")
    assert card is not None and card == dish_card("apple_pie") == dish_card(" apple-pie ")
    card["ingredients"].append("changed")
    assert "changed" not in dish_card("apple_pie")["ingredients"]
    assert dish_card("not_a_dish") is None


def test_a_broken_facts_file_raises_a_typed_error(tmp_path: Path) -> None:
    broken = tmp_path / "cards.json"
    broken.write_text(json.dumps({"apple_pie": {**CARDS["apple_pie"], "allergens": ["gluten"]}}))
    with pytest.raises(DishFactsError, match="not one of the EU's 14 allergens"):
        load_cards(broken)
    with pytest.raises(DishFactsError, match="could not be read"):
        load_cards(tmp_path / "absent.json")


@pytest.mark.parametrize("labels_file", sorted(REPO.glob("models/*/labels.json")), ids=str)
def test_shipped_display_names_match_the_cards(labels_file: Path) -> None:
    # The app's heading comes from labels.json, the facts panel from the card: same words.
    labels = json.loads(labels_file.read_text())
    assert {label: dish_card(label)["display_name"] for label in labels} == labels
