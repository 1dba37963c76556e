"""The bundled dish cards: schema, consistency, and a card for every label a model can name."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from llm_client import DishContext, DishFactsError, dish_card
from llm_client.facts import (
    CARDS_PATH,
    EU_ALLERGENS,
    PORTIONS,
    card_problems,
    load_cards,
    needed_substitutions,
    portion_grams,
    scaled_serving,
)
from llm_client.prompts import system_message

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


ALCOHOL = re.compile(r"wine|beer|lager|ale|cider|sake|port|sherry|champagne|prosecco|sangria|"
                     r"margarita|pisco|mimosa|marsala|sauternes|moscato|chablis|muscadet|"
                     r"riesling|chardonnay|sauvignon|pinot|merlot|malbec|zinfandel|chianti|"
                     r"soave|frascati|albariño|assyrtiko|valpolicella|beaujolais|vermentino|"
                     r"burgundy|rosé|vin santo|sangiovese|grigio")  # fmt: skip


@pytest.mark.parametrize("label", sorted(CARDS))
def test_new_fields_are_typical_and_usable(label: str) -> None:
    card = CARDS[label]
    storage = card["storage"]
    assert 0 <= storage["fridge_days"] <= 7 and 0 <= storage["freezer_months"] <= 6
    assert (
        storage["fridge_days"]
        or storage["freezer_months"]
        or "the day it is made" in storage["tips"]
    )
    # Every dish gets at least one drink suggestion without alcohol.
    assert any(not ALCOHOL.search(drink.lower()) for drink in card["drinks"]), card["drinks"]
    assert 1 <= len(card["served_with"]) <= 5 and len(card["portion"]) <= 60
    assert set(card["substitutions"]) == set(needed_substitutions(card))
    # A vegan dish has no diet swap.
    assert "vegan" not in card["substitutions"] or not card["diet"]["vegan"]


def test_raw_dishes_are_eaten_the_same_day() -> None:
    raw = ("sashimi", "oysters", "ceviche", "beef_tartare", "tuna_tartare")
    assert all(CARDS[label]["storage"]["fridge_days"] == 0 for label in raw)
    assert all(CARDS[label]["storage"]["freezer_months"] == 0 for label in raw)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda card: card["substitutions"].pop("milk"), "substitutions must have exactly"),
        (lambda card: card["substitutions"].update(milk=""), "substitutions.milk has an invalid"),
        (lambda card: card.update(spice_level="very"), "spice_level must be one of"),
        (lambda card: card.update(drinks=[]), "drinks must be a non-empty list"),
        (lambda card: card.update(served_with=["rice", 3]), "served_with must be a non-empty"),
        (lambda card: card["storage"].update(fridge_days=-1), "storage.fridge_days has an invalid"),
        (lambda card: card["storage"].update(tips=True), "storage.tips has an invalid"),
        (lambda card: card.pop("portion"), "portion must be non-empty text"),
    ],
)
def test_card_problems_name_each_broken_new_field(change, message: str) -> None:
    card = copy.deepcopy(CARDS["apple_pie"])
    change(card)
    assert any(message in problem for problem in card_problems("apple_pie", card))


def test_portion_grams_and_scaled_serving() -> None:
    card = CARDS["pizza"]
    assert portion_grams(card, None) == card["serving"]["grams"]
    assert portion_grams(card, "large") == round(card["serving"]["grams"] * PORTIONS["large"])
    assert portion_grams(card, 350) == 350
    with pytest.raises(ValueError, match="small, regular, large"):
        portion_grams(card, "huge")
    with pytest.raises(ValueError, match="between 1 and"):
        portion_grams(card, 0)
    doubled = scaled_serving(card["serving"], 2 * card["serving"]["grams"])
    assert doubled == {key: round(2 * value) for key, value in card["serving"].items()}


def test_the_prompt_carries_the_new_facts_and_the_persons_portion() -> None:
    card = CARDS["ramen"]
    typical = system_message(DishContext("ramen", 0.9))
    assert "The person's portion" not in typical
    assert card["storage"]["tips"] in typical and card["drinks"][0] in typical
    assert (
        card["substitutions"]["vegan"] in typical
        and f"Spice level: {card['spice_level']}" in typical
    )
    grams = card["serving"]["grams"] // 2
    halved = system_message(DishContext("ramen", 0.9, portion_g=grams))
    kcal = round(card["serving"]["kcal"] / 2)
    assert f"The person's portion: about {grams:g} g: roughly {kcal:g} kcal" in halved


def test_a_dish_the_person_picked_is_stated_without_doubt() -> None:
    picked = system_message(
        DishContext("ramen", 1.0, status="unsure", alternatives=["pho"], confirmed=True)
    )
    assert "Dish: Ramen, confirmed by the person" in picked
    assert "The classifier is unsure" not in picked
