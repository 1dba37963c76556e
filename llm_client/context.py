"""What the chat knows about the photo and the conversation so far."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llm_client.errors import ChatInputError
from llm_client.facts import MAX_PORTION_G

STATUSES = ("confident", "unsure", "not_food")
ROLES = ("user", "assistant")


@dataclass(frozen=True)
class DishContext:
    """The classifier's verdict on the photo the person is asking about.

    Args:
        label: the predicted Food-101 label, e.g. ``"apple_pie"``.
        probability: the classifier's probability for ``label``, 0 to 1.
        status: ``"confident"``, ``"unsure"`` or ``"not_food"`` (the classifier's status).
        alternatives: runner-up labels, most likely first.
        portion_g: the person's portion in grams; ``None`` means the typical serving. Calories
            and macros in answers are scaled to it.
        confirmed: the person picked ``label`` themselves, so answers need no doubt about it.

    Raises:
        ChatInputError: ``status`` is not one of the three, ``probability`` is outside 0-1, or
            ``portion_g`` is outside 1 to 2000 g.
    """

    label: str
    probability: float
    status: str = "confident"
    alternatives: Sequence[str] = ()
    portion_g: float | None = None
    confirmed: bool = False

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ChatInputError(
                f"Unknown dish status {self.status!r}; expected one of: {', '.join(STATUSES)}."
            )
        if not 0.0 <= self.probability <= 1.0:
            raise ChatInputError(f"The probability {self.probability!r} is not between 0 and 1.")
        if self.portion_g is not None and not 1 <= self.portion_g <= MAX_PORTION_G:
            raise ChatInputError(f"A portion must be between 1 and {MAX_PORTION_G} g.")
        object.__setattr__(self, "alternatives", tuple(self.alternatives))


def check_question(question: Any) -> str:
    """The question, stripped.

    Raises:
        ChatInputError: it is not text, or it is blank.
    """
    if not isinstance(question, str) or not question.strip():
        raise ChatInputError("Type a question about the dish first.")
    return question.strip()


def check_history(history: Any) -> list[dict[str, str]]:
    """Prior turns as ``{"role", "content"}`` dicts, copied with only those two keys.

    Raises:
        ChatInputError: an entry is not a dict with a ``user``/``assistant`` role and text content.
    """
    if history is None:
        return []
    checked = []
    for turn in history:
        ok = isinstance(turn, dict) and turn.get("role") in ROLES
        if not ok or not isinstance(turn.get("content"), str):
            raise ChatInputError(
                "The chat history must be a list of {'role': 'user' or 'assistant', "
                "'content': text} entries."
            )
        checked.append({"role": turn["role"], "content": turn["content"]})
    return checked
