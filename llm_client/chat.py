"""``Chat``: the one object the app talks to, whichever backend the settings choose."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dishlens.settings import Settings, get_settings
from llm_client.backends import RemoteBackend, make_backend
from llm_client.context import DishContext, check_history, check_question
from llm_client.errors import ChatError, DishFactsError, IncompleteAnswerError
from llm_client.offline import offline_answer
from llm_client.prompts import build_messages

OFFLINE_NAME = "offline answers"


def make_chat(settings: Settings | None = None) -> Chat:
    """The chat the settings ask for; does no network I/O (a token secret is read on first use).

    Backend precedence: LLM_BASE_URL (any OpenAI-compatible server), else a Hugging Face token
    (HF_TOKEN, or the AWS Secrets Manager secret HF_TOKEN_SECRET_ID) for Llama through Hugging
    Face, else offline answers from the dish facts.

    Args:
        settings: DishLens settings; ``None`` reads them from the environment.

    Returns:
        A :class:`Chat`, safe to share between sessions and threads.

    Raises:
        SettingsError: ``settings`` is None and an environment variable is invalid.
    """
    settings = get_settings() if settings is None else settings
    return Chat(make_backend(settings), settings)


class Chat:
    """Answers questions about the dish in a photo.

    The contract for the app (``st.write_stream(chat.stream_answer(...))``):

    - Text arrives as plain deltas. Offline chat never fails for a known or unknown dish.
    - :class:`~llm_client.errors.IncompleteAnswerError`: the answer stopped after some text was
      yielded (the stream broke, it ran past LLM_TIMEOUT, or it hit LLM_MAX_TOKENS or the
      client's own length cap: ``reason == "length"``); ``err.partial_text`` is exactly the
      text already shown. Keep it in the history and show ``str(err)`` as a warning.
    - Any other :class:`~llm_client.errors.ChatError`: nothing was yielded (retries, where they
      help, are already spent); it comes at most ``OFFLINE_AFTER_S`` (15 s, see
      :mod:`llm_client.backends`) after the question, however the server behaves. Show
      ``str(err)`` and then ``err.offline_answer``, the answer from the dish facts; it is
      ``None`` only for a blank question or malformed history
      (:class:`~llm_client.errors.ChatInputError`) or unreadable facts.
      :meth:`offline_answer` gives the same text on demand.

    For example::

        try:
            answer = st.write_stream(chat.stream_answer(question, dish, history))
        except IncompleteAnswerError as err:
            answer = err.partial_text
            st.warning(str(err))
        except ChatError as err:
            st.warning(str(err))
            answer = err.offline_answer or ""
            st.markdown(answer)
    """

    def __init__(self, backend: RemoteBackend | None, settings: Settings) -> None:
        self._backend = backend
        self._settings = settings

    @property
    def backend_name(self) -> str:
        """Human words for the backend: ``"Llama via Hugging Face"``,
        ``"custom endpoint (<host>)"`` or ``"offline answers"``."""
        return self._backend.name if self._backend is not None else OFFLINE_NAME

    @property
    def is_offline(self) -> bool:
        """True when answers come from the dish facts only."""
        return self._backend is None

    def stream_answer(
        self, question: str, dish: DishContext, history: list[dict[str, Any]]
    ) -> Iterator[str]:
        """Stream the answer to ``question`` about ``dish``.

        Args:
            question: the person's new question (not part of ``history``).
            dish: the classifier's verdict on the photo.
            history: earlier turns about this photo, ``{"role": "user"|"assistant",
                "content": text}``, oldest first; trimmed to LLM_CONTEXT_TOKENS as needed.

        Returns:
            An iterator of text deltas (nothing happens until it is iterated).

        Raises:
            ChatInputError: the question is blank or too long, or ``history`` is malformed.
            IncompleteAnswerError: the answer stopped part-way; see ``partial_text``.
            ChatError: the remote model failed before any text; see ``offline_answer``.
        """
        question = check_question(question)
        turns = check_history(history)
        if self._backend is None:
            yield offline_answer(question, dish, turns)
            return
        try:
            messages = build_messages(
                question, dish, turns, budget_tokens=self._settings.llm_context_tokens
            )
            yield from self._backend.stream(messages)
        except IncompleteAnswerError:
            raise
        except ChatError as err:
            err.offline_answer = self._fallback(question, dish, turns)
            raise

    def offline_answer(
        self, question: str, dish: DishContext, history: list[dict[str, Any]] | None = None
    ) -> str:
        """The answer built from the dish facts alone (what offline mode says).

        Raises:
            ChatInputError: the question is blank, or ``history`` is malformed.
            DishFactsError: the bundled facts file is missing or invalid.
        """
        return offline_answer(check_question(question), dish, check_history(history))

    def _fallback(
        self, question: str, dish: DishContext, history: list[dict[str, str]]
    ) -> str | None:
        try:
            return offline_answer(question, dish, history)
        except DishFactsError:
            return None
