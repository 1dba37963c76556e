"""Answers from the dish card alone: no model, no network, well under a millisecond."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from llm_client.context import DishContext
from llm_client.facts import dish_card, display_name
from llm_client.prompts import serving_sentence

CONNECT_HINT = (
    "set HF_TOKEN (Llama through Hugging Face) or LLM_BASE_URL (an OpenAI-compatible server "
    "such as vLLM, TGI, Ollama or llama.cpp)."
)
APPROXIMATE = "These are typical approximations; recipes and portions vary."
ALLERGY_CAUTION = (
    "If you have an allergy or intolerance, check the actual ingredients with whoever made it."
)

# Diet and allergen questions name what they ask about; each maps to a card allergen or flag.
_ALLERGEN_WORDS = {
    "cereals containing gluten": r"gluten|wheat|coeliacs?|celiacs?",
    "crustaceans": r"crustaceans?|shellfish|shrimps?|prawns?|crabs?|lobsters?",
    "eggs": r"eggs?",
    "fish": r"fish",
    "peanuts": r"peanuts?",
    "soybeans": r"soy|soya|soybeans?",
    "milk": r"milk|dairy|lactose",
    "nuts": r"nuts?|tree nuts?|almonds?|walnuts?|hazelnuts?|cashews?|pistachios?|pecans?",
    "celery": r"celery",
    "mustard": r"mustard",
    "sesame": r"sesame",
    "sulphites": r"sulph?ites?|sulfites?",
    "lupin": r"lupin",
    "molluscs": r"molluscs?|mollusks?|clams?|mussels?|oysters?|squid|octopus",
}
_INTENTS = {
    "vegan": r"vegan",
    "vegetarian": r"vegetarian|veggie|meat ?free|any meat|contain meat",
    "allergens": r"allerg\w*|intoleran\w*|safe (for|to eat)|"
    + "|".join(f"(?:{words})(?: ?free)?" for words in _ALLERGEN_WORDS.values()),
    "nutrition": r"calor\w*|kcal|energy|nutrition\w*|protein|carb\w*|fats?|fatty|macros?|"
    r"healthy|diet|sugar|how much (does it|do they) weigh|portion|serving",
    "ingredients": r"ingredients?|what'?s in|what is in|made (of|from|with)|inside|"
    r"what (does|do) (it|they|this) contain",
    "preparation": r"how (do|can|would|should) (i|you|we) (make|cook|prepare|bake)|recipe|"
    r"how (is|are) (it|they|this) (made|cooked|prepared)|prepar\w*|make (it|them|this)",
    "cuisine": r"cuisine|origin\w*|where .*from|comes? from|country|history|national|traditional",
    "what": r"what (is|are) (it|this|that|they)|what'?s (this|that)|describe|tell me about|"
    r"what (dish|food)",
}
_PATTERNS = {name: re.compile(rf"\b(?:{words})\b") for name, words in _INTENTS.items()}
_ALLERGEN_PATTERNS = {
    name: re.compile(rf"\b(?:{words})\b") for name, words in _ALLERGEN_WORDS.items()
}


def offline_answer(question: str, dish: DishContext) -> str:
    """An answer to ``question`` built from the dish card, or an honest sentence saying why not.

    Args:
        question: what the person asked.
        dish: the classifier's verdict on the photo.

    Returns:
        Markdown text: one paragraph per recognised intent (ingredients, allergens, diet,
        nutrition, cuisine, preparation, what it is), prefixed with a caution when the
        classifier was unsure; otherwise what offline mode can answer and how to connect a model.

    Raises:
        DishFactsError: the bundled facts file is missing or invalid.
    """
    card = dish_card(dish.label)
    if card is None:
        return (
            f"I have no offline facts about {display_name(dish.label)}, so I can't answer that "
            f"without a language model. To connect one, {CONNECT_HINT}"
        )
    text = _normalize(question)
    intents = detect_intents(text)
    if not intents:
        return _unknown_question(card)
    parts = [_ANSWERS[intent](card, text) for intent in intents]
    return "\n\n".join([p for p in [_caveat(dish, card)] if p] + parts)


def detect_intents(text: str) -> list[str]:
    """The intents ``text`` (already normalized) asks about, in a fixed order; may be empty."""
    found = [name for name, pattern in _PATTERNS.items() if pattern.search(text)]
    if "vegan" in found or "vegetarian" in found:
        found = [name for name in found if name != "allergens" or _named_allergens(text)]
    return found if found == ["what"] else [name for name in found if name != "what"]


def _normalize(question: str) -> str:
    return " ".join(question.lower().replace("-", " ").replace("’", "'").split())


def _named_allergens(text: str) -> list[str]:
    return [name for name, pattern in _ALLERGEN_PATTERNS.items() if pattern.search(text)]


def _caveat(dish: DishContext, card: dict[str, Any]) -> str:
    name = card["display_name"]
    if dish.status == "not_food":
        return f"*The photo may not show food at all; here is what I know about {name}.*"
    if dish.status != "unsure":
        return ""
    others = [display_name(label) for label in dish.alternatives[:2]]
    maybe = f" (it might be {' or '.join(others)})" if others else ""
    return f"*I'm not sure the photo shows {name}{maybe}; here is what I know about it.*"


def _unknown_question(card: dict[str, Any]) -> str:
    return (
        f"Offline, I can tell you what {card['display_name']} is, its typical ingredients, "
        "allergens and diet (vegetarian, vegan, gluten-free), calories and nutrition per serving, "
        f"its cuisine and origin, and how it is made. To ask anything else, {CONNECT_HINT}"
    )


def _what(card: dict[str, Any], _text: str) -> str:
    return f"**{card['display_name']}**: {card['description']} Cuisine: {card['cuisine']}."


def _ingredients(card: dict[str, Any], _text: str) -> str:
    return (
        f"Typical ingredients of {card['display_name']}: {', '.join(card['ingredients'])}. "
        "Recipes vary."
    )


def _cuisine(card: dict[str, Any], _text: str) -> str:
    return f"{card['display_name']} comes from {card['cuisine']} cuisine. {card['description']}"


def _preparation(card: dict[str, Any], _text: str) -> str:
    return f"How {card['display_name']} is made: {card['preparation']}"


def _nutrition(card: dict[str, Any], _text: str) -> str:
    serving = serving_sentence(card["serving"])
    return f"A typical serving of {card['display_name']} is {serving}. {APPROXIMATE}"


def _allergens(card: dict[str, Any], text: str) -> str:
    asked = _named_allergens(text)
    if not asked:
        listed = ", ".join(card["allergens"]) or "none of the EU's 14 major allergens"
        body = f"Common allergens in {recipes_for(card['display_name'])}: {listed}."
    else:
        body = " ".join(_allergen_sentence(card, name) for name in asked)
    return f"{body} {APPROXIMATE} {ALLERGY_CAUTION}"


def recipes_for(name: str, *, starts_sentence: bool = False) -> str:
    """The subject of a sentence about a dish: plural, so that the verb after it agrees with
    "Nachos" as well as with "Apple pie"."""
    return f"{'Typical' if starts_sentence else 'typical'} recipes for {name}"


def _allergen_sentence(card: dict[str, Any], allergen: str) -> str:
    recipes = recipes_for(card["display_name"], starts_sentence=True)
    if allergen == "cereals containing gluten":
        if card["diet"]["gluten_free"]:
            return f"{recipes} are gluten-free."
        return f"{recipes} are not gluten-free: they contain cereals containing gluten."
    if allergen in card["allergens"]:
        return f"{recipes} contain {allergen}."
    return f"{recipes} have no {allergen} among their usual ingredients."


def _and(items: list[str]) -> str:
    return " and ".join(filter(None, [", ".join(items[:-1]), items[-1]]))


def _diet(flag: str, label: str) -> Callable[[dict[str, Any], str], str]:
    animal = ("milk", "eggs", "fish", "crustaceans", "molluscs")

    def answer(card: dict[str, Any], _text: str) -> str:
        recipes = recipes_for(card["display_name"])
        if card["diet"][flag]:
            return f"Yes, {recipes} are {label}. {ALLERGY_CAUTION}"
        found = [a for a in card["allergens"] if a in animal]
        why = f" They contain {_and(found)}." if found and flag == "vegan" else ""
        meat = " They contain meat or fish." if flag == "vegetarian" else ""
        return f"No, {recipes} are not {label}.{why or meat} Recipes vary."

    return answer


_ANSWERS: dict[str, Callable[[dict[str, Any], str], str]] = {
    "vegan": _diet("vegan", "vegan"),
    "vegetarian": _diet("vegetarian", "vegetarian"),
    "allergens": _allergens,
    "nutrition": _nutrition,
    "ingredients": _ingredients,
    "preparation": _preparation,
    "cuisine": _cuisine,
    "what": _what,
}
