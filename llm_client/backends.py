"""Remote chat through ``huggingface_hub.InferenceClient``: Hugging Face or any OpenAI-compatible
server, streamed, with retries before the first token."""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable, Generator, Iterator
from typing import Any

from huggingface_hub import constants as hub_constants

from dishlens.settings import Settings
from llm_client._common import Endpoint, logger, retry_delay, translate
from llm_client.errors import (
    ChatConnectionError,
    ChatError,
    ChatMalformedReplyError,
    IncompleteAnswerError,
)
from llm_client.hf_token import TokenSource

# The Hugging Face router's OpenAI-compatible route, which picks a provider for the model id
# sent in the body: the URL InferenceClient(model=<repo id>) uses too. A module constant so
# tests can point it at a loopback server.
HF_ROUTER_URL = "https://router.huggingface.co/v1"
# Sent when LLM_API_KEY is unset. Without a key InferenceClient falls back to the locally saved
# Hugging Face token, which must never go to a third-party server; servers that need no key
# ignore this one (vLLM documents "EMPTY" for exactly this).
NO_API_KEY = "EMPTY"

# Unless telemetry is off, huggingface_hub's first request in a process also fetches a list of
# "agent harnesses" from huggingface.co to decorate its User-Agent. DishLens runs inside a VPC
# and may talk only to the chat endpoint it was given, so that call is switched off here.
hub_constants.HF_HUB_DISABLE_TELEMETRY = True

Chunk = tuple[str, str | None]  # (text delta, finish reason)


class RemoteBackend:
    """Streams chat completions from one endpoint.

    Args:
        endpoint: where requests go.
        settings: model name, max_tokens, temperature, timeout and retries.
        api_key: gives the token or API key for each request.
    """

    def __init__(self, endpoint: Endpoint, settings: Settings, api_key: Callable[[], str]) -> None:
        self.endpoint = endpoint
        self._settings = settings
        self._api_key = api_key

    @property
    def name(self) -> str:
        if not self.endpoint.hugging_face:
            return f"custom endpoint ({self.endpoint.host})"
        model = self._settings.llm_model
        family = "Llama" if "llama" in model.lower() else model.rsplit("/", 1)[-1]
        return f"{family} via Hugging Face"

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        """Text deltas of the answer to ``messages``.

        Raises:
            ChatError: before the first delta, once retries are spent or for an error that
                retrying cannot fix.
            IncompleteAnswerError: after the first delta; ``partial_text`` holds what was yielded.
        """
        for attempt in itertools.count():
            chunks = self._chunks(messages)
            with contextlib.closing(chunks):
                try:
                    first, finish = _first_text(chunks)
                except ChatError as err:
                    delay = self._delay_before_retry(err, attempt)
                    if delay is None:
                        raise
                else:
                    yield from _rest(first, finish, chunks)
                    return
            time.sleep(delay)

    def _delay_before_retry(self, err: ChatError, attempt: int) -> float | None:
        if not err.retryable or attempt >= self._settings.llm_max_retries:
            return None
        delay = retry_delay(attempt, err.retry_after)
        if delay is not None:
            logger.warning(
                "Chat request to %s failed (%s); retry %d of %d in %.2f s",
                self.endpoint.host,
                type(err).__name__,
                attempt + 1,
                self._settings.llm_max_retries,
                delay,
            )
        return delay

    def _chunks(self, messages: list[dict[str, str]]) -> Generator[Chunk, None, None]:
        # The choke point: every call into huggingface_hub, httpx2 and boto3 happens in here.
        from huggingface_hub import InferenceClient

        settings = self._settings
        try:
            client = InferenceClient(
                base_url=self.endpoint.url, api_key=self._api_key(), timeout=settings.llm_timeout
            )
            # Closing the client closes the streamed response, also when the reader stops early.
            with client:
                stream = client.chat_completion(
                    messages,
                    model=settings.llm_model,
                    stream=True,
                    max_tokens=settings.llm_max_tokens,
                    temperature=settings.llm_temperature,
                )
                for chunk in stream:
                    yield read_chunk(chunk, self.endpoint)
        except Exception as err:
            raise translate(err, self.endpoint) from err


def make_backend(settings: Settings) -> RemoteBackend | None:
    """The remote backend the settings choose: LLM_BASE_URL, else Hugging Face, else None."""
    if settings.llm_base_url:
        api_key = settings.llm_api_key or NO_API_KEY
        return RemoteBackend(Endpoint(settings.llm_base_url), settings, lambda: api_key)
    tokens = TokenSource(settings)
    if tokens.configured:
        endpoint = Endpoint(
            HF_ROUTER_URL, hugging_face=True, token_secret_id=settings.hf_token_secret_id
        )
        return RemoteBackend(endpoint, settings, tokens.get)
    return None


def read_chunk(chunk: Any, endpoint: Endpoint) -> Chunk:
    """``(text, finish_reason)`` of one streamed chunk; ``("", None)`` for chunks without text.

    Raises:
        ChatMalformedReplyError: the chunk is not shaped like a chat-completion chunk.
    """
    choices = getattr(chunk, "choices", None)
    if not isinstance(choices, list):
        raise _malformed(endpoint)
    if not choices:
        return "", None
    if not hasattr(choices[0], "delta"):
        raise _malformed(endpoint)
    delta = choices[0].delta
    text = getattr(delta, "content", None)
    if (delta is not None and not hasattr(delta, "content")) or not isinstance(text, str | None):
        raise _malformed(endpoint)
    return text or "", getattr(choices[0], "finish_reason", None)


def _malformed(endpoint: Endpoint) -> ChatMalformedReplyError:
    return ChatMalformedReplyError(
        f"The reply from {endpoint.host} is not a chat-completion stream DishLens can read."
    )


def _first_text(chunks: Iterator[Chunk]) -> Chunk:
    finish = None
    for text, reason in chunks:
        finish = reason or finish
        if text:
            return text, finish
    if finish is None:
        raise ChatConnectionError("The chat model's stream ended before any answer arrived.")
    raise ChatMalformedReplyError("The chat model sent an empty answer.")


def _rest(first: str, finish: str | None, chunks: Iterator[Chunk]) -> Iterator[str]:
    shown = [first]
    yield first
    try:
        for text, reason in chunks:
            finish = reason or finish
            if text:
                shown.append(text)
                yield text
    except ChatError as err:
        raise IncompleteAnswerError("".join(shown)) from err
    if finish is None:
        cause = ChatConnectionError("The stream ended without a finish reason.")
        raise IncompleteAnswerError("".join(shown)) from cause
    if finish == "length":
        raise IncompleteAnswerError("".join(shown), reason="length")
