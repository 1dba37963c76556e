"""Answers from the dish card alone: no model, no network, well under a millisecond.

A question is matched to topics (intents) by keywords; the answer has one paragraph per topic.
Follow-ups use the conversation: a question that names no allergen or diet ("Can I make it
without that?") takes them from the latest earlier question that did.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from llm_client.context import DishContext
from llm_client.facts import (
    dish_card,
    display_name,
    portion_grams,
    scaled_serving,
    serving_sentence,
)

APPROXIMATE = "These are typical approximations; recipes and portions vary."
ALLERGY_CAUTION = (
    "If you have an allergy or intolerance, check the actual ingredients with whoever made it."
)
# What offline answers cover, as (key, button text, question): the app offers them as buttons
# after a question that offline answers cannot match.
TOPICS = (
    ("ingredients", ":material/grocery: Ingredients", "What are the ingredients?"),
    ("allergens", ":material/warning: Allergens", "Which allergens does it contain?"),
    ("calories", ":material/nutrition: Calories", "How many calories are in a portion?"),
    ("recipe", ":material/skillet: How to make it", "How do I make it at home?"),
    ("substitutions", ":material/swap_horiz: Make it vegan", "How can I make it vegan?"),
    ("storage", ":material/kitchen: Keeping & reheating", "How long does it keep in the fridge?"),
    ("drinks", ":material/local_bar: Drinks", "What drink goes with it?"),
    ("served_with", ":material/restaurant: Served with", "What is it served with?"),
    ("spice", ":material/local_fire_department: How spicy", "Is it spicy?"),
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
_DIET_WORDS = {
    "vegan": r"vegan",
    "vegetarian": r"vegetarian|veggie|meat ?free|without meat|any meat|contain meat",
}
_INTENTS = {
    "substitutions": r"without|substitut\w*|swap\w*|replac\w*|instead|alternatives?|leave out|"
    r"omit|skip|(make|cook|prepare|do) (it|them|this|one) (\w+ )?(free|friendly|vegan|"
    r"vegetarian|veggie)|(vegan|vegetarian|free|friendly) version",
    **_DIET_WORDS,
    "allergens": r"allerg\w*|intoleran\w*|safe (for|to eat)|"
    + "|".join(f"(?:{words})(?: ?free)?" for words in _ALLERGEN_WORDS.values()),
    "storage": r"fridge|refrigerat\w*|freez\w*|leftovers?|reheat\w*|(warm|heat) (it|them|this) up|"
    r"store|storing|storage|keep (it|them)|(does|do|will|would) (it|they) keep|how long .*"
    r"(keep|last)|go(es)? off|shelf life",
    "drinks": r"drinks?|wines?|beers?|pair\w*|cocktails?|beverages?|sake|juice",
    "served_with": r"served? with|serving suggestions?|sides?|side dish\w*|goes? with|"
    r"eat (it|them|this) with|accompan\w*",
    "spice": r"spic\w*|chill?i\w*|how hot|too hot|is it hot|are they hot|heat level|mild|"
    r"burn\w*",
    "nutrition": r"calor\w*|kcal|energy|nutrition\w*|protein|carb\w*|fats?|fatty|macros?|"
    r"healthy|diet|sugar|how much (does it|do they) weigh|portions?|servings?|how big|grams?",
    "ingredients": r"ingredients?|what'?s in|what is in|made (of|from|with)|inside|"
    r"what (does|do) (it|they|this) contain",
    "preparation": r"how (do|can|would|should) (i|you|we) (make|cook|prepare|bake)|recipe|"
    r"how (is|are) (it|they|this) (made|cooked|prepared)|prepar\w*|make (it|them|this)",
    "cuisine": r"cuisine|origin\w*|where .*from|comes? from|country|history|national|traditional",
    "what": r"what (is|are) (it|this|that|they)|what'?s (this|that)|describe|tell me about|"
    r"what (dish|food)",
}
_PATTERNS = {name: re.compile(rf"\b(?:{words})\b") for name, words in _INTENTS.items()}
_TOPIC_PATTERNS = {
    name: re.compile(rf"\b(?:{words})\b")
    for name, words in {**_ALLERGEN_WORDS, **_DIET_WORDS}.items()
}
_GRAMS = re.compile(r"\b(\d{1,4}(?:\.\d+)?) ?(?:g|grams?)\b")
_PORTION_WORDS = re.compile(r"\b(small|regular|large|big)\b")
_HEAT = re.compile(r"chill?i|jalape|cayenne|hot sauce|gochujang|wasabi|cajun")
_SPICE_WORDS = {
    "none": "not spicy",
    "mild": "mildly spicy at most",
    "medium": "medium-hot",
    "hot": "hot",
}


def offline_answer(question: str, dish: DishContext, history: Sequence[dict[str, str]] = ()) -> str:
    """An answer to ``question`` built from the dish card, or a short sentence saying what
    offline answers cover.

    Args:
        question: what the person asked.
        dish: the classifier's verdict on the photo (and the person's portion, if any).
        history: earlier turns, ``{"role", "content"}``, oldest first; follow-ups that name no
            allergen or diet take them from the latest earlier question that did.

    Returns:
        Markdown text: one paragraph per recognised topic, prefixed with a caution when the
        classifier was unsure; for an unrecognised question, what offline answers cover.

    Raises:
        DishFactsError: the bundled facts file is missing or invalid.
    """
    card = dish_card(dish.label)
    if card is None:
        return (
            f"I have no offline facts about {display_name(dish.label)}, so I can't answer that "
            "here. Try another dish from the list."
        )
    text = normalize(question)
    intents = detect_intents(text)
    if not intents:
        return unknown_question(card)
    request = _Request(card, text, dish, _topics(text) or _earlier_topics(history))
    parts = [_ANSWERS[intent](request) for intent in intents]
    return "\n\n".join([p for p in [_caveat(dish, card)] if p] + parts)


def understands(question: str) -> bool:
    """Whether offline answers recognise a topic in ``question``."""
    return bool(detect_intents(normalize(question)))


def unknown_question(card: dict[str, Any]) -> str:
    """The short reply to a question offline answers do not cover."""
    return (
        f"I can't answer that one offline. About {card['display_name']} I can tell you: "
        "ingredients, allergens and how to make it without them, calories for your portion, "
        "how to make it, keeping and reheating, drinks, what it is served with, and how spicy "
        "it is. Pick a topic below or ask again."
    )


def normalize(question: str) -> str:
    """Lower case, single spaces, hyphens as spaces, curly apostrophes straight."""
    return " ".join(question.lower().replace("-", " ").replace("’", "'").split())


def detect_intents(text: str) -> list[str]:
    """The intents ``text`` (already :func:`normalize`-d) asks about, in a fixed order."""
    found = [name for name, pattern in _PATTERNS.items() if pattern.search(text)]
    if "substitutions" in found:  # "make it without gluten": one answer, not a recipe too
        dropped = ("vegan", "vegetarian", "allergens", "preparation")
        found = [name for name in found if name not in dropped]
    if "vegan" in found or "vegetarian" in found:
        found = [name for name in found if name != "allergens" or _named_allergens(text)]
    if "drinks" in found:  # "what wine goes with it" asks about drinks only
        found = [name for name in found if name != "served_with"]
    return found if found == ["what"] else [name for name in found if name != "what"]


class _Request:
    """What one answer needs: the card, the question, the verdict and the asked-about topics."""

    def __init__(self, card: dict[str, Any], text: str, dish: DishContext, topics: list[str]):
        self.card, self.text, self.dish, self.topics = card, text, dish, topics
        self.name = card["display_name"]


def _topics(text: str) -> list[str]:
    return [name for name, pattern in _TOPIC_PATTERNS.items() if pattern.search(text)]


def _named_allergens(text: str) -> list[str]:
    return [name for name in _topics(text) if name in _ALLERGEN_WORDS]


def _earlier_topics(history: Sequence[dict[str, str]]) -> list[str]:
    for turn in reversed(history):
        if turn.get("role") == "user" and (topics := _topics(normalize(turn["content"]))):
            return topics
    return []


def _caveat(dish: DishContext, card: dict[str, Any]) -> str:
    name = card["display_name"]
    if dish.confirmed:
        return ""
    if dish.status == "not_food":
        return f"*The photo may not show food at all; here is what I know about {name}.*"
    if dish.status != "unsure":
        return ""
    others = [display_name(label) for label in dish.alternatives[:2]]
    maybe = f" (it might be {' or '.join(others)})" if others else ""
    return f"*I'm not sure the photo shows {name}{maybe}; here is what I know about it.*"


def recipes_for(name: str, *, starts_sentence: bool = False) -> str:
    """The subject of a sentence about a dish: plural, so that the verb after it agrees with
    "Nachos" as well as with "Apple pie"."""
    return f"{'Typical' if starts_sentence else 'typical'} recipes for {name}"


def _and(items: Sequence[str], word: str = "and") -> str:
    return f" {word} ".join(filter(None, [", ".join(items[:-1]), items[-1]]))


def _asked_grams(r: _Request) -> float | None:
    """The portion the question names ("in 300 g", "a large portion"), else the person's."""
    if (grams := _GRAMS.search(r.text)) and 1 <= float(grams.group(1)) <= 2000:
        return float(grams.group(1))
    if size := _PORTION_WORDS.search(r.text):
        return portion_grams(r.card, "large" if size.group(1) == "big" else size.group(1))
    return r.dish.portion_g


def _nutrition(r: _Request) -> str:
    serving = r.card["serving"]
    typical = f"A typical portion of {r.name} is {r.card['portion']}, {serving_sentence(serving)}."
    grams = _asked_grams(r)
    if grams is None or round(grams) == round(serving["grams"]):
        return f"{typical} {APPROXIMATE}"
    scaled = serving_sentence(scaled_serving(serving, grams))
    return f"For a portion of {scaled}. ({typical}) {APPROXIMATE}"


def _allergens(r: _Request) -> str:
    asked = _named_allergens(r.text)
    if not asked:
        listed = ", ".join(r.card["allergens"]) or "none of the EU's 14 major allergens"
        body = f"Common allergens in {recipes_for(r.name)}: {listed}."
    else:
        body = " ".join(_allergen_sentence(r.card, name) for name in asked)
    return f"{body} {APPROXIMATE} {ALLERGY_CAUTION}"


def _allergen_sentence(card: dict[str, Any], allergen: str) -> str:
    recipes = recipes_for(card["display_name"], starts_sentence=True)
    if allergen == "cereals containing gluten":
        if card["diet"]["gluten_free"]:
            return f"{recipes} are gluten-free."
        return f"{recipes} are not gluten-free: they contain cereals containing gluten."
    if allergen in card["allergens"]:
        return f"{recipes} contain {allergen}."
    return f"{recipes} have no {allergen} among their usual ingredients."


def _diet(flag: str) -> Callable[[_Request], str]:
    animal = ("milk", "eggs", "fish", "crustaceans", "molluscs")

    def answer(r: _Request) -> str:
        recipes = recipes_for(r.name)
        if r.card["diet"][flag]:
            return f"Yes, {recipes} are {flag}. {ALLERGY_CAUTION}"
        found = [a for a in r.card["allergens"] if a in animal]
        why = f" They contain {_and(found)}." if found and flag == "vegan" else ""
        meat = " They contain meat or fish." if flag == "vegetarian" else ""
        swap = r.card["substitutions"][flag]
        return f"No, {recipes} are not {flag}.{why or meat} To make it {flag}: {swap}"

    return answer


def _substitutions(r: _Request) -> str:
    """How to make the dish without what the person named (now or in an earlier question)."""
    subs = r.card["substitutions"]
    if not r.topics:
        if not subs:
            return (
                f"{recipes_for(r.name, starts_sentence=True)} are vegan and have none of the EU's "
                "14 major allergens, so there is nothing to swap."
            )
        lines = [f"- **{_swap_title(key)}**: {text}" for key, text in subs.items()]
        return "\n".join([f"Common swaps for {r.name}:", *lines, "", ALLERGY_CAUTION])
    return " ".join([*(_swap_sentence(r, topic) for topic in r.topics), ALLERGY_CAUTION])


def _swap_title(key: str) -> str:
    return key.capitalize() if key in _DIET_WORDS else f"Without {short_allergen(key)}"


def short_allergen(allergen: str) -> str:
    """``"cereals containing gluten"`` -> ``"gluten"``; other allergens as they are."""
    return "gluten" if allergen == "cereals containing gluten" else allergen


def _swap_sentence(r: _Request, topic: str) -> str:
    recipes = recipes_for(r.name, starts_sentence=True)
    if topic in _DIET_WORDS:
        if r.card["diet"][topic]:
            return f"{recipes} are already {topic}."
        return f"To make {r.name} {topic}: {r.card['substitutions'][topic]}"
    if topic not in r.card["allergens"]:
        return f"{recipes} have no {short_allergen(topic)} among their usual ingredients."
    return f"To make {r.name} without {short_allergen(topic)}: {r.card['substitutions'][topic]}"


def _storage(r: _Request) -> str:
    storage = r.card["storage"]
    days, months = storage["fridge_days"], storage["freezer_months"]
    if days:
        keeps = f"Leftover {r.name} keeps for about {days} day{'s' * (days > 1)} in the fridge"
        keeps += ", covered."
    elif months:
        keeps = f"{r.name} is kept frozen (up to about {months} months)."
    else:
        keeps = f"{r.name} is best eaten the day it is made."
    freezes = (
        f" It freezes for up to about {months} month{'s' * (months > 1)}."
        if months and days
        else " It does not freeze well."
        if not months
        else ""
    )
    return f"{keeps}{freezes} {storage['tips']} When in doubt, throw it out."


def _spice(r: _Request) -> str:
    level = r.card["spice_level"]
    heat = [i for i in r.card["ingredients"] if re.search(_HEAT, i)]
    source = f" The heat comes from {_and(heat)}." if heat and level != "none" else ""
    return f"{recipes_for(r.name, starts_sentence=True)} are {_SPICE_WORDS[level]}.{source}"


# Answers that only fill in card fields (lists joined as English).
_TEMPLATES = {
    "what": "**{display_name}**: {description} Cuisine: {cuisine}.",
    "ingredients": "Typical ingredients of {display_name}: {ingredients}. Recipes vary.",
    "cuisine": "{display_name} comes from {cuisine} cuisine. {description}",
    "preparation": "How {display_name} is made: {preparation}",
    "drinks": "Drinks that go well with {display_name}: {drinks}.",
    "served_with": "{display_name} is usually served with {served_with}.",
}


def _template(template: str) -> Callable[[_Request], str]:
    def answer(r: _Request) -> str:
        lists = {
            "ingredients": ", ".join(r.card["ingredients"]),
            "drinks": _and(r.card["drinks"], "or"),
            "served_with": _and(r.card["served_with"]),
        }
        return template.format_map({**r.card, **lists})

    return answer


_ANSWERS: dict[str, Callable[[_Request], str]] = {
    "substitutions": _substitutions,
    "vegan": _diet("vegan"),
    "vegetarian": _diet("vegetarian"),
    "allergens": _allergens,
    "storage": _storage,
    "drinks": _template(_TEMPLATES["drinks"]),
    "served_with": _template(_TEMPLATES["served_with"]),
    "spice": _spice,
    "nutrition": _nutrition,
    "ingredients": _template(_TEMPLATES["ingredients"]),
    "preparation": _template(_TEMPLATES["preparation"]),
    "cuisine": _template(_TEMPLATES["cuisine"]),
    "what": _template(_TEMPLATES["what"]),
}
