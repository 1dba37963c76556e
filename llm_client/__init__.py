"""Chat about the dish in a photo: Llama through Hugging Face, any OpenAI-compatible server, or
offline answers from the bundled dish facts.

    chat = make_chat()
    dish = DishContext("apple_pie", 0.91, alternatives=["bread_pudding"])
    for delta in chat.stream_answer("Is it vegan?", dish, history=[]):
        ...

See :class:`Chat` for what ``stream_answer`` yields and raises.
"""

from llm_client.chat import Chat, make_chat
from llm_client.context import DishContext
from llm_client.errors import (
    ChatAuthError,
    ChatConfigError,
    ChatConnectionError,
    ChatError,
    ChatInputError,
    ChatMalformedReplyError,
    ChatModelNotFoundError,
    ChatRateLimitError,
    ChatRequestError,
    ChatTimeoutError,
    ChatUnavailableError,
    DishFactsError,
    IncompleteAnswerError,
)
from llm_client.facts import dish_card

__all__ = [
    "Chat",
    "ChatAuthError",
    "ChatConfigError",
    "ChatConnectionError",
    "ChatError",
    "ChatInputError",
    "ChatMalformedReplyError",
    "ChatModelNotFoundError",
    "ChatRateLimitError",
    "ChatRequestError",
    "ChatTimeoutError",
    "ChatUnavailableError",
    "DishContext",
    "DishFactsError",
    "IncompleteAnswerError",
    "dish_card",
    "make_chat",
]
