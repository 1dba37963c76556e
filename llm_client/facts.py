"""Dish facts: one card per Food-101 label, bundled as ``dish_cards.json`` beside this module.

Values are typical approximations (recipes and portions vary); the offline answerer and the
system prompt both say so.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable, Mapping
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
SPICE_LEVELS = ("none", "mild", "medium", "hot")
# Portion sizes people pick, as a share of the card's typical serving.
PORTIONS = {"small": 0.7, "regular": 1.0, "large": 1.5}
MAX_PORTION_G = 2000
_TEXT_FIELDS = ("display_name", "description", "cuisine", "preparation", "portion")
_LIST_FIELDS = ("ingredients", "served_with", "drinks")


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


def serving_sentence(serving: dict[str, float]) -> str:
    """``"about 125 g: roughly 300 kcal, 3 g protein, 43 g carbohydrate and 14 g fat"``."""
    return (
        f"about {serving['grams']:g} g: roughly {serving['kcal']:g} kcal, "
        f"{serving['protein_g']:g} g protein, {serving['carbohydrate_g']:g} g carbohydrate and "
        f"{serving['fat_g']:g} g fat"
    )


def fact_sheet(card: dict[str, Any], *, portion_g: float | None = None) -> list[str]:
    """The card as Markdown lines for people, with calories and macros for ``portion_g``
    (default: the typical serving)."""
    grams = card["serving"]["grams"] if portion_g is None else portion_g
    serving = serving_sentence(scaled_serving(card["serving"], grams))
    diet = card["diet"]
    flags = [name.replace("_", "-") for name in DIET_FLAGS if diet[name]]
    allergens = ", ".join(card["allergens"]) or "none of the 14 common allergens"
    spice = {"none": "not spicy", "mild": "mild", "medium": "medium", "hot": "hot"}
    return [
        f"{card['description']} *{card['cuisine']}.*",
        f"**Typical ingredients:** {', '.join(card['ingredients'])}",
        f"**Common allergens:** {allergens}",
        f"**Diet:** {', '.join(flags) or 'not vegetarian, vegan or gluten-free'}",
        f"**Your portion:** {serving} (a typical portion is {card['portion']})",
        f"**Spice:** {spice[card['spice_level']]} · **Served with:** "
        f"{', '.join(card['served_with'])} · **Drinks:** {', '.join(card['drinks'])}",
    ]


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
    problems += [
        f"{label}: {key} must be a non-empty list of text"
        for key in _LIST_FIELDS
        if not _is_text_list(card.get(key))
    ]
    if card.get("spice_level") not in SPICE_LEVELS:
        problems.append(f"{label}: spice_level must be one of {', '.join(SPICE_LEVELS)}")
    allergens = card.get("allergens")
    if not isinstance(allergens, list) or len(set(map(str, allergens))) != len(allergens):
        problems.append(f"{label}: allergens must be a list without repeats")
    else:
        problems += [
            f"{label}: {name!r} is not one of the EU's 14 allergens"
            for name in allergens
            if name not in EU_ALLERGENS
        ]
    problems += _mapping_problems(
        label, "diet", card.get("diet"), dict.fromkeys(DIET_FLAGS, _is_bool)
    )
    problems += _mapping_problems(
        label, "serving", card.get("serving"), dict.fromkeys(SERVING_FIELDS, _is_amount)
    )
    problems += _mapping_problems(label, "storage", card.get("storage"), _STORAGE_CHECKS)
    if not problems:  # the substitutions a card needs follow from its allergens and diet
        needed = dict.fromkeys(needed_substitutions(card), _is_text)
        problems += _mapping_problems(label, "substitutions", card.get("substitutions"), needed)
    return problems


def needed_substitutions(card: dict[str, Any]) -> tuple[str, ...]:
    """The keys of ``card["substitutions"]``: one per allergen in the card, plus ``vegetarian``
    and ``vegan`` when the typical recipe is not."""
    flags = tuple(flag for flag in ("vegetarian", "vegan") if not card["diet"][flag])
    return (*card["allergens"], *flags)


def portion_grams(card: dict[str, Any], portion: str | float | None) -> float:
    """Grams of a portion: ``"small"``, ``"regular"`` or ``"large"`` (shares of the card's
    typical serving), a number of grams, or ``None`` for the typical serving.

    Raises:
        ValueError: an unknown portion name, or grams outside 1 to :data:`MAX_PORTION_G`.
    """
    typical = float(card["serving"]["grams"])
    if portion is None:
        return typical
    if isinstance(portion, str):
        if portion not in PORTIONS:
            raise ValueError(
                f"Unknown portion {portion!r}; expected one of: {', '.join(PORTIONS)}."
            )
        return round(typical * PORTIONS[portion])
    if not 1 <= portion <= MAX_PORTION_G:
        raise ValueError(f"A portion must be between 1 and {MAX_PORTION_G} g.")
    return float(portion)


def scaled_serving(serving: dict[str, float], grams: float | None) -> dict[str, float]:
    """``serving`` (a card's typical serving) scaled to ``grams``, rounded to whole numbers;
    the typical serving itself when ``grams`` is ``None``."""
    factor = 1.0 if grams is None else grams / serving["grams"]
    return {key: float(round(serving[key] * factor)) for key in SERVING_FIELDS}


def _mapping_problems(
    label: str, name: str, value: Any, checks: Mapping[str, Callable[[Any], bool]]
) -> list[str]:
    """Problems of a mapping that must have exactly the keys of ``checks``, each value passing
    its check."""
    if not isinstance(value, dict) or set(value) != set(checks):
        return [f"{label}: {name} must have exactly the keys {', '.join(checks)}"]
    return [
        f"{label}: {name}.{key} has an invalid value"
        for key in checks
        if not checks[key](value[key])
    ]


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _is_text_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(map(_is_text, value))


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_amount(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


_STORAGE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "fridge_days": _is_count,
    "freezer_months": _is_count,
    "tips": _is_text,
}
