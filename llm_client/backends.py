"""Remote chat through ``huggingface_hub.InferenceClient``: Hugging Face or any OpenAI-compatible
server, streamed, with retries before the first token.

Every answer is bounded, whatever the server does:

- Time to the offline answer: the first text must arrive within :data:`OFFLINE_AFTER_S` seconds
  (or ``LLM_TIMEOUT`` if shorter), retries and their pauses included; after that the person
  gets the offline answer. Without this bound a silent server held the spinner for
  ``LLM_TIMEOUT × (LLM_MAX_RETRIES + 1)``, four minutes at the defaults.
- Whole answer: ``LLM_TIMEOUT`` seconds from the request to the last token; a server sending a
  token every second and a half forever ends in ``IncompleteAnswerError`` with the text kept.
- Length: at most :data:`CHARS_PER_TOKEN` × ``LLM_MAX_TOKENS`` characters, whatever the server
  makes of ``max_tokens``; then ``IncompleteAnswerError(reason="length")`` with the text kept.
- Redirects: none are followed to another host (a 307 to a metadata address must not become a
  request there); one is answered with :class:`ChatConfigError`.

The deadlines are checked as chunks arrive and bound each socket read, so a server that drips
one SSE line in pieces, each within the read timeout, is cut off at the next complete line.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable, Generator, Iterator
from typing import Any

from huggingface_hub import constants as hub_constants

from dishlens.settings import Settings
from llm_client._common import Endpoint, calling_library, logger, only_host, retry_delay
from llm_client.errors import (
    ChatConnectionError,
    ChatError,
    ChatMalformedReplyError,
    ChatTimeoutError,
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

# A person watching a spinner gives up after about 10-15 s; then the offline answer stands in.
OFFLINE_AFTER_S = 15.0
# Tokens average about 4 characters of English; twice that leaves room for any language.
CHARS_PER_TOKEN = 8

Chunk = tuple[str, str | None]  # (text delta, finish reason)
_END = object()


class AnswerClock:
    """The two deadlines of one answer: first text, and last token."""

    def __init__(self, answer_seconds: float) -> None:
        now = time.monotonic()
        self._first_text = now + min(OFFLINE_AFTER_S, answer_seconds)
        self._answer = now + answer_seconds

    def first_text_left(self) -> float:
        return max(0.0, self._first_text - time.monotonic())

    def answer_left(self) -> float:
        return max(0.0, self._answer - time.monotonic())


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
        clock = AnswerClock(self._settings.llm_timeout)
        max_chars = CHARS_PER_TOKEN * self._settings.llm_max_tokens
        for attempt in itertools.count():
            chunks = self._chunks(messages, timeout=clock.first_text_left())
            with contextlib.closing(chunks):
                try:
                    first, finish = _first_text(chunks, self.endpoint, clock)
                except ChatError as err:
                    delay = self._delay_before_retry(err, attempt, clock)
                    if delay is None:
                        raise
                else:
                    yield from _rest(first, finish, chunks, clock, max_chars)
                    return
            time.sleep(delay)

    def _delay_before_retry(self, err: ChatError, attempt: int, clock: AnswerClock) -> float | None:
        if not err.retryable or attempt >= self._settings.llm_max_retries:
            return None
        delay = retry_delay(attempt, err.retry_after)
        if delay is not None and delay >= clock.first_text_left():
            return None  # the retry could not answer before the offline answer is due
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

    def _chunks(
        self, messages: list[dict[str, str]], *, timeout: float
    ) -> Generator[Chunk, None, None]:
        """The answer's chunks; each socket read waits at most ``timeout`` seconds.

        Every call into huggingface_hub, httpx2 and boto3 runs inside ``calling_library``, the
        one place their errors become ``ChatError``; DishLens's own code runs outside it.
        """
        from huggingface_hub import InferenceClient

        if timeout <= 0:
            raise _too_slow(self.endpoint)
        settings, endpoint = self._settings, self.endpoint
        with calling_library(endpoint):
            api_key = self._api_key()
            client = InferenceClient(base_url=endpoint.url, api_key=api_key, timeout=timeout)
        # Closing the client closes the streamed response, also when the reader stops early.
        with client:
            with calling_library(endpoint), only_host(endpoint):
                stream = iter(
                    client.chat_completion(
                        messages,
                        model=settings.llm_model,
                        stream=True,
                        max_tokens=settings.llm_max_tokens,
                        temperature=settings.llm_temperature,
                    )
                )
            while True:
                with calling_library(endpoint):
                    chunk = next(stream, _END)
                if chunk is _END:
                    return
                yield read_chunk(chunk, endpoint)


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


def _too_slow(endpoint: Endpoint) -> ChatTimeoutError:
    return ChatTimeoutError(f"The chat model {endpoint.model_at} took too long to answer.")


def _first_text(chunks: Iterator[Chunk], endpoint: Endpoint, clock: AnswerClock) -> Chunk:
    finish = None
    received = 0
    for text, reason in chunks:
        received += 1
        finish = reason or finish
        if text:
            return text, finish
        if clock.first_text_left() <= 0:
            raise _too_slow(endpoint)
    if received == 0:  # e.g. a 200 answer in JSON or HTML: no stream events at all
        raise _malformed(endpoint)
    if finish is None:
        raise ChatConnectionError("The chat model's stream ended before any answer arrived.")
    raise ChatMalformedReplyError("The chat model sent an empty answer.")


def _rest(
    first: str, finish: str | None, chunks: Iterator[Chunk], clock: AnswerClock, max_chars: int
) -> Iterator[str]:
    """The first text and the rest, up to ``max_chars`` characters and ``clock``'s deadline."""
    shown: list[str] = []
    size = 0
    try:
        for text, reason in itertools.chain([(first, finish)], chunks):
            finish = reason or finish
            if text:
                room = max_chars - size
                if room > 0:
                    shown.append(text[:room])
                    size += len(shown[-1])
                    yield shown[-1]
                if len(text) > room:
                    raise IncompleteAnswerError("".join(shown), reason="length")
            if finish is None and clock.answer_left() <= 0:
                raise ChatTimeoutError("The chat model took too long to finish its answer.")
    except IncompleteAnswerError:
        raise
    except ChatError as err:
        raise IncompleteAnswerError("".join(shown)) from err
    if finish is None:
        cause = ChatConnectionError("The stream ended without a finish reason.")
        raise IncompleteAnswerError("".join(shown)) from cause
    if finish == "length":
        raise IncompleteAnswerError("".join(shown), reason="length")
