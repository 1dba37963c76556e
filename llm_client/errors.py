"""Errors of the chat client; ``str()`` of each is a sentence a user can read and act on.

Every error that :meth:`llm_client.Chat.stream_answer` raises is a :class:`ChatError`. Foreign
errors (huggingface_hub, httpx2, botocore) are translated into these classes in one place,
:func:`llm_client._common.translate`, and chained as ``__cause__``.
"""

from __future__ import annotations

from dishlens.errors import DishLensError

HF_AUTH_MESSAGE = (
    "The Hugging Face token was refused, or it has no access to the gated Llama model. "
    "Check HF_TOKEN and accept the model's licence on its Hub page."
)


class ChatError(DishLensError):
    """Base class for chat errors.

    Attributes:
        status: the HTTP status the model server answered with, if any.
        retry_after: seconds the server asked us to wait before trying again, if it said.
        detail: the server's own error message, for logs (not shown to users).
        offline_answer: the offline answer to the same question, set by ``Chat.stream_answer``
            so the app can show it instead of a dead end; ``None`` when there is none.
    """

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        detail: str | None = None,
    ) -> None:
        self.status = status
        self.retry_after = retry_after
        self.detail = detail
        self.offline_answer: str | None = None
        super().__init__(message)


# ---------------------------------------------------------------------------------------------
# SET-UP AND INPUT ERRORS


class ChatConfigError(ChatError, ValueError):
    """The chat backend is set up in a way that cannot work (secret missing, offline mode...)."""


class ChatInputError(ChatError, ValueError):
    """The question or the history handed to ``stream_answer`` cannot be sent."""


class DishFactsError(ChatError, ValueError):
    """The bundled dish facts file is missing or does not follow its schema."""


# ---------------------------------------------------------------------------------------------
# MODEL SERVER ERRORS


class ChatAuthError(ChatError, PermissionError):
    """The server refused the token or API key (HTTP 401/403)."""


class ChatModelNotFoundError(ChatError, LookupError):
    """The server does not know the model that LLM_MODEL names (HTTP 404)."""


class ChatRequestError(ChatError, ValueError):
    """The server rejected the request itself (HTTP 400/413/422), e.g. a too-long conversation."""


class ChatRateLimitError(ChatError, OSError):
    """Too many requests (HTTP 429)."""

    retryable = True


class ChatUnavailableError(ChatError, OSError):
    """The model is loading, overloaded or down (HTTP 500/502/503/504)."""

    retryable = True


class ChatConnectionError(ChatError, ConnectionError):
    """The model server could not be reached, or dropped the connection."""

    retryable = True


class ChatTimeoutError(ChatError, TimeoutError):
    """The model server did not answer within LLM_TIMEOUT seconds."""

    retryable = True


class ChatMalformedReplyError(ChatError, ValueError):
    """The server's reply is not a chat-completion stream DishLens can read."""


# ---------------------------------------------------------------------------------------------
# PARTIAL ANSWERS


class IncompleteAnswerError(ChatError, EOFError):
    """The answer stopped part-way; the text already streamed is in ``partial_text``.

    ``reason`` is ``"interrupted"`` (the stream broke; ``__cause__`` says how) or ``"length"``
    (the model reached LLM_MAX_TOKENS).
    """

    def __init__(self, partial_text: str, *, reason: str = "interrupted") -> None:
        self.partial_text = partial_text
        self.reason = reason
        if reason == "length":
            message = "The answer reached the length limit (LLM_MAX_TOKENS) and was cut short."
        else:
            message = "The answer was interrupted part-way; what arrived is shown above."
        super().__init__(message)
