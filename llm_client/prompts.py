"""The messages sent to the model: a system message grounded in the dish card, then history."""

from __future__ import annotations

from typing import Any

from llm_client.context import DishContext
from llm_client.errors import ChatInputError
from llm_client.facts import dish_card, display_name, scaled_serving, serving_sentence

# Without a tokenizer for every possible model, estimate: ~4 characters a token for English,
# rounded down to 3.5 to stay on the safe side, plus a few tokens of chat-template framing.
_CHARS_PER_TOKEN = 3.5
_TOKENS_PER_MESSAGE = 4

_RULES = """\
How to answer:
- Prefer the reference facts above to your own memory; say that amounts are typical \
approximations and that recipes vary.
- Keep answers short and practical: a few sentences or a short list.
- On allergy, intolerance, diet-for-health or other medical questions, end with one \
cautionary line: check the actual ingredients with whoever made the dish, and ask a doctor \
or dietitian for medical advice.
- If a question has nothing to do with food, answer briefly and offer to help with the dish."""


def build_messages(
    question: str, dish: DishContext, history: list[dict[str, str]], *, budget_tokens: int
) -> list[dict[str, str]]:
    """System message, the most recent history that fits ``budget_tokens``, then the question.

    Raises:
        ChatInputError: the system message and the question alone exceed the budget.
    """
    system = {"role": "system", "content": system_message(dish)}
    current = {"role": "user", "content": question}
    left = budget_tokens - estimate_tokens(system) - estimate_tokens(current)
    if left < 0:
        raise ChatInputError("That question is too long for the chat model; please shorten it.")
    return [system, *trim_history(history, left), current]


def trim_history(history: list[dict[str, str]], budget_tokens: int) -> list[dict[str, str]]:
    """The most recent turns whose estimated size fits ``budget_tokens``, oldest first.

    The kept part starts with a user turn, as some chat templates require.
    """
    kept: list[dict[str, str]] = []
    for turn in reversed(history):
        budget_tokens -= estimate_tokens(turn)
        if budget_tokens < 0:
            break
        kept.append(turn)
    kept.reverse()
    while kept and kept[0]["role"] != "user":
        kept.pop(0)
    return kept


def estimate_tokens(message: dict[str, str]) -> int:
    """A cautious estimate of the tokens ``message`` takes in the prompt."""
    return int(len(message["content"]) / _CHARS_PER_TOKEN) + _TOKENS_PER_MESSAGE


def system_message(dish: DishContext) -> str:
    """The instructions and reference facts for a conversation about ``dish``."""
    return "\n\n".join(
        [
            "You are DishLens, a friendly food assistant. The person photographed a dish and an "
            "image classifier named it; they are now asking about it.",
            _verdict(dish),
            _facts(dish.label, dish.portion_g),
            _RULES,
        ]
    )


def _verdict(dish: DishContext) -> str:
    name = display_name(dish.label)
    lines = [f"Predicted dish: {name} (confidence {dish.probability:.0%})."]
    if dish.alternatives:
        others = ", ".join(display_name(label) for label in dish.alternatives)
        lines.append(f"Runner-up dishes: {others}.")
    if dish.confirmed:
        lines[0] = f"Dish: {name}, confirmed by the person (the classifier's top guess may differ)."
    elif dish.status == "unsure":
        lines.append(
            f"The classifier is unsure. Say early in your answer that the photo may show a "
            f"different dish than {name}, naming the runner-ups when it helps."
        )
    elif dish.status == "not_food":
        lines.append(
            "The classifier thinks the photo may not show food at all. Say so, and answer "
            f"about {name} only if the person asks about it."
        )
    return "\n".join(lines)


def _facts(label: str, portion_g: float | None) -> str:
    card = dish_card(label)
    if card is None:
        return (
            "No reference facts are available for this dish: answer from general knowledge and "
            "say that you are less certain."
        )
    return "\n".join(
        [
            f"Reference facts for {card['display_name']} (typical values):",
            *(f"- {line}" for line in fact_lines(card, portion_g=portion_g)),
        ]
    )


def fact_lines(card: dict[str, Any], *, portion_g: float | None = None) -> list[str]:
    """The card as short lines of text, one fact per line; with ``portion_g``, a line with the
    calories and macros of the person's portion follows the typical serving."""
    diet = card["diet"]
    flags = ", ".join(
        f"{name}: {'yes' if diet[key] else 'no'}"
        for key, name in (
            ("vegetarian", "vegetarian"),
            ("vegan", "vegan"),
            ("gluten_free", "gluten-free"),
        )
    )
    allergens = ", ".join(card["allergens"]) or "none of the EU's 14 in a typical recipe"
    storage = card["storage"]
    swaps = "; ".join(f"{key}: {text}" for key, text in card["substitutions"].items())
    lines = [
        f"Description: {card['description']}",
        f"Cuisine / origin: {card['cuisine']}",
        f"Typical ingredients: {', '.join(card['ingredients'])}",
        f"Common allergens (EU 14): {allergens}",
        f"Diet: {flags}",
        f"Typical portion: {card['portion']} ({serving_sentence(card['serving'])})",
    ]
    if portion_g is not None:
        portion = serving_sentence(scaled_serving(card["serving"], portion_g))
        lines.append(f"The person's portion: {portion} (use these figures for their portion)")
    return [
        *lines,
        f"Spice level: {card['spice_level']}",
        f"Served with: {', '.join(card['served_with'])}",
        f"Drinks that go with it: {', '.join(card['drinks'])}",
        f"Keeps: {storage['fridge_days']} days in the fridge, {storage['freezer_months']} months "
        f"frozen (0 = not recommended); {storage['tips']}",
        f"Substitutions: {swaps or 'none needed'}",
        f"Preparation: {card['preparation']}",
    ]
