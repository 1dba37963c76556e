"""Dish facts: one card per Food-101 label, bundled as ``dish_cards.json`` beside this module.

Values are typical approximations (recipes and portions vary); the offline answerer and the
system prompt both say so.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dishlens.labels import readable_label
from llm_client.errors import DishFactsError

CARDS_PATH = Path(__file__).resolve().parent / "dish_cards.json"

# The 14 allergens of Regulation (EU) No 1169/2011, Annex II, by the names the cards use.
EU_ALLERGENS = (
    "cereals containing gluten",
    "crustaceans",
    "eggs",
    "fish",
    "peanuts",
    "soybeans",
    "milk",
    "nuts",
    "celery",
    "mustard",
    "sesame",
    "sulphites",
    "lupin",
    "molluscs",
)
DIET_FLAGS = ("vegetarian", "vegan", "gluten_free")
SERVING_FIELDS = ("grams", "kcal", "protein_g", "carbohydrate_g", "fat_g")
_TEXT_FIELDS = ("display_name", "description", "cuisine", "preparation")


def dish_card(label: str) -> dict[str, Any] | None:
    """The facts card of one dish.

    Args:
        label: a Food-101 label such as ``"apple_pie"``; ``"Apple pie"`` works too.

    Returns:
        A copy of the card (safe to change), or ``None`` when no card has that label.

    Raises:
        DishFactsError: the bundled facts file is missing or invalid.
    """
    card = load_cards().get(normalize_label(label))
    return copy.deepcopy(card) if card is not None else None


def normalize_label(label: str) -> str:
    """``"Apple pie"`` or ``"apple-pie"`` -> ``"apple_pie"``."""
    return "_".join(label.strip().lower().replace("-", " ").split())


def display_name(label: str) -> str:
    """The card's display name, or a readable form of ``label`` when there is no card."""
    card = load_cards().get(normalize_label(label))
    if card is not None:
        return card["display_name"]
    return readable_label(label)


@functools.cache
def load_cards(path: Path | None = None) -> Mapping[str, dict[str, Any]]:
    """Every card in ``path`` (default :data:`CARDS_PATH`), read and validated once per process
    (shared: do not modify).

    Raises:
        DishFactsError: the file is missing, is not JSON, or a card breaks the schema.
    """
    path = CARDS_PATH if path is None else path
    try:
        cards = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DishFactsError(f"The dish facts file {path.name} could not be read.") from err
    if not isinstance(cards, dict):
        raise DishFactsError(f"The dish facts file {path.name} is not a JSON object.")
    problems = [problem for label, card in cards.items() for problem in card_problems(label, card)]
    if problems:
        raise DishFactsError(f"The dish facts file {path.name} is invalid: {problems[0]}")
    return cards


def card_problems(label: str, card: Any) -> list[str]:
    """Every way ``card`` breaks the schema; an empty list when it is valid."""
    if not isinstance(card, dict):
        return [f"{label}: the card is not an object"]
    problems = [
        f"{label}: {key} must be non-empty text"
        for key in _TEXT_FIELDS
        if not _is_text(card.get(key))
    ]
    ingredients = card.get("ingredients")
    if not isinstance(ingredients, list) or not ingredients or not all(map(_is_text, ingredients)):
        problems.append(f"{label}: ingredients must be a non-empty list of text")
    allergens = card.get("allergens")
    if not isinstance(allergens, list) or len(set(map(str, allergens))) != len(allergens):
        problems.append(f"{label}: allergens must be a list without repeats")
    else:
        problems += [
            f"{label}: {name!r} is not one of the EU's 14 allergens"
            for name in allergens
            if name not in EU_ALLERGENS
        ]
    problems += _mapping_problems(label, "diet", card.get("diet"), DIET_FLAGS, _is_bool)
    problems += _mapping_problems(label, "serving", card.get("serving"), SERVING_FIELDS, _is_amount)
    return problems


def _mapping_problems(label: str, name: str, value: Any, keys: tuple[str, ...], check) -> list[str]:
    if not isinstance(value, dict) or set(value) != set(keys):
        return [f"{label}: {name} must have exactly the keys {', '.join(keys)}"]
    return [f"{label}: {name}.{key} has an invalid value" for key in keys if not check(value[key])]


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_amount(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
