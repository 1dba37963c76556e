"""Chat against the scripted OpenAI-compatible SSE server on 127.0.0.1."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from dishlens.settings import Settings
from llm_client import (
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
    DishContext,
    IncompleteAnswerError,
    make_chat,
)
from llm_client.prompts import estimate_tokens
from tests.support.chat_server import Reply, chunk_json

APPLE_PIE = DishContext("apple_pie", 0.87, alternatives=["bread_pudding", "baklava"])


def ask(settings: Settings, question: str = "What's in it?") -> tuple[list[str], ChatError | None]:
    """Ask once through a fresh Chat: the deltas read, and the error the stream ended with."""
    return collect(make_chat(settings).stream_answer(question, APPLE_PIE, []))


def collect(stream: Iterator[str]) -> tuple[list[str], ChatError | None]:
    """The deltas read before the stream ended, and the error it ended with (if any)."""
    deltas: list[str] = []
    try:
        for delta in stream:
            deltas.append(delta)
    except ChatError as err:
        return deltas, err
    return deltas, None


def test_normal_stream_yields_plain_text_deltas(chat_server, settings_for) -> None:
    chat = make_chat(settings_for(chat_server))
    deltas, error = collect(chat.stream_answer("What is it?", APPLE_PIE, []))
    assert error is None and deltas == ["Apple pie ", "is a baked ", "dessert."]
    assert chat.backend_name == f"custom endpoint (127.0.0.1:{chat_server.url.split(':')[2][:-3]})"


def test_request_carries_dish_facts_history_and_limits(chat_server, settings_for) -> None:
    settings = settings_for(chat_server, llm_max_tokens=321, llm_temperature=0.2, llm_model="m1")
    history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    list(make_chat(settings).stream_answer("Is it vegan?", APPLE_PIE, history))

    (request,) = chat_server.received
    body = request.body
    assert request.path == "/v1/chat/completions"
    assert body["stream"] is True and body["max_tokens"] == 321 and body["temperature"] == 0.2
    assert body["model"] == "m1"
    system, *turns = body["messages"]
    assert system["role"] == "system"
    for fact in [
        "Apple pie",
        "87%",
        "Bread pudding",
        "Baklava",
        "wheat flour",
        "cereals containing gluten",
        "vegan: no",
        "300 kcal",
        "American / British",
    ]:
        assert fact in system["content"]
    assert turns == [*history, {"role": "user", "content": "Is it vegan?"}]


def test_unsure_verdict_asks_the_model_to_say_so(chat_server, settings_for) -> None:
    dish = DishContext("apple_pie", 0.41, status="unsure", alternatives=["baklava"])
    list(make_chat(settings_for(chat_server)).stream_answer("What is it?", dish, []))
    system = chat_server.received[0].body["messages"][0]["content"]
    assert "unsure" in system and "different dish" in system and "cautionary line" in system


def test_long_history_is_trimmed_to_the_budget(chat_server, settings_for) -> None:
    history = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i} " + "x" * 400}
        for i in range(60)
    ]
    settings = settings_for(chat_server, llm_context_tokens=2000)
    list(make_chat(settings).stream_answer("And the calories?", APPLE_PIE, history))

    messages = chat_server.received[0].body["messages"]
    kept = messages[1:-1]
    assert 0 < len(kept) < len(history)
    assert kept == history[-len(kept) :]  # the most recent turns, in order
    assert kept[0]["role"] == "user"
    assert sum(estimate_tokens(m) for m in messages) <= 2000


def test_too_long_question_is_refused_with_offline_answer(chat_server, settings_for) -> None:
    _, error = ask(settings_for(chat_server, llm_context_tokens=256), "Vegan? " + "y" * 5000)
    assert isinstance(error, ChatInputError) and "too long" in str(error)
    assert "vegan" in error.offline_answer and chat_server.received == []


def test_429_is_retried_without_repeating_text(chat_server, settings_for) -> None:
    chat_server.script(Reply(status=429, body={"error": "slow down"}), Reply())
    deltas, error = ask(settings_for(chat_server))
    assert error is None
    assert "".join(deltas) == "Apple pie is a baked dessert."
    assert len(chat_server.received) == 2


def test_503_retry_after_is_honoured(chat_server, settings_for) -> None:
    chat_server.script(Reply(status=503, headers={"Retry-After": "1"}), Reply())
    deltas, error = ask(settings_for(chat_server))
    first, second = chat_server.received
    assert error is None and deltas
    assert 0.95 <= second.at - first.at < 2.0


def test_retries_stop_after_llm_max_retries(chat_server, settings_for) -> None:
    chat_server.script(*[Reply(status=502)] * 5)
    chat = make_chat(settings_for(chat_server, llm_max_retries=2))
    deltas, error = collect(chat.stream_answer("Hi?", APPLE_PIE, []))
    assert deltas == [] and isinstance(error, ChatUnavailableError) and error.status == 502
    assert len(chat_server.received) == 3
    assert error.offline_answer and "apple" in error.offline_answer.lower()


def test_long_retry_after_gives_up_at_once(chat_server, settings_for) -> None:
    chat_server.script(Reply(status=429, headers={"Retry-After": "120"}))
    _, error = ask(settings_for(chat_server))
    assert isinstance(error, ChatRateLimitError) and error.retry_after == 120
    assert len(chat_server.received) == 1


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (401, ChatAuthError),
        (403, ChatAuthError),
        (404, ChatModelNotFoundError),
        (400, ChatRequestError),
        (422, ChatRequestError),
    ],
)
def test_client_errors_are_typed_and_not_retried(chat_server, settings_for, status, error_type):
    chat_server.script(Reply(status=status, body={"error": {"message": "server detail"}}))
    chat = make_chat(settings_for(chat_server, llm_api_key="wrong"))
    deltas, error = collect(chat.stream_answer("What's in it?", APPLE_PIE, []))
    assert deltas == [] and type(error) is error_type and error.status == status
    assert len(chat_server.received) == 1
    assert "wheat flour" in error.offline_answer  # the offline answer stands in
    assert "server detail" not in str(error)
    if status == 401:
        assert "LLM_API_KEY" in str(error) and isinstance(error, PermissionError)


def test_timeout_fires_and_is_retried(chat_server, settings_for) -> None:
    chat_server.script(Reply(hang=True), Reply(hang=True))
    chat = make_chat(settings_for(chat_server, llm_timeout=0.3, llm_max_retries=1))
    start = time.monotonic()
    _, error = collect(chat.stream_answer("Hi?", APPLE_PIE, []))
    assert isinstance(error, ChatTimeoutError) and isinstance(error, TimeoutError)
    assert 0.6 <= time.monotonic() - start < 2.5
    assert len(chat_server.received) == 2


def test_stream_cut_midway_keeps_the_partial_answer(chat_server, settings_for) -> None:
    chat_server.script(Reply(cut_after=2))
    deltas, error = ask(settings_for(chat_server))
    assert deltas == ["Apple pie ", "is a baked "]
    assert isinstance(error, IncompleteAnswerError) and error.reason == "interrupted"
    assert error.partial_text == "Apple pie is a baked "
    assert isinstance(error.__cause__, ChatConnectionError)
    assert len(chat_server.received) == 1  # never retried once text was shown


def test_stream_ending_without_finish_reason_is_incomplete(chat_server, settings_for) -> None:
    chat_server.script(Reply(finish=None, done=False))
    deltas, error = ask(settings_for(chat_server))
    assert "".join(deltas) == "Apple pie is a baked dessert."
    assert isinstance(error, IncompleteAnswerError) and error.partial_text == "".join(deltas)


def test_length_limit_is_reported(chat_server, settings_for) -> None:
    chat_server.script(Reply(finish="length"))
    _, error = ask(settings_for(chat_server))
    assert isinstance(error, IncompleteAnswerError) and error.reason == "length"
    assert "LLM_MAX_TOKENS" in str(error)


@pytest.mark.parametrize(
    "bad", ["{not json", '{"unexpected": true}', "[1, 2]", '{"choices": [{"delta": "text"}]}']
)
def test_malformed_first_chunk_is_a_typed_error(chat_server, settings_for, bad) -> None:
    chat_server.script(Reply(events=[bad, "[DONE]"]))
    deltas, error = ask(settings_for(chat_server))
    assert deltas == [] and isinstance(error, ChatMalformedReplyError)
    assert error.offline_answer and len(chat_server.received) == 1


def test_malformed_chunk_midway_keeps_the_partial_answer(chat_server, settings_for) -> None:
    chat_server.script(Reply(events=[chunk_json("Apple "), "{oops", chunk_json("pie")]))
    deltas, error = ask(settings_for(chat_server))
    assert deltas == ["Apple "]
    assert isinstance(error, IncompleteAnswerError) and error.partial_text == "Apple "
    assert isinstance(error.__cause__, ChatMalformedReplyError)


def test_server_error_event_midway_is_incomplete(chat_server, settings_for) -> None:
    overloaded = '{"error": "busy", "error_type": "overloaded"}'
    chat_server.script(Reply(events=[chunk_json("Apple "), overloaded]))
    _, error = ask(settings_for(chat_server))
    assert isinstance(error, IncompleteAnswerError)
    assert isinstance(error.__cause__, ChatUnavailableError)


def test_empty_answer_is_a_typed_error(chat_server, settings_for) -> None:
    chat_server.script(Reply(text=()))
    _, error = ask(settings_for(chat_server))
    assert isinstance(error, ChatMalformedReplyError)


def test_unreachable_server_is_a_connection_error(settings_for) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    chat = make_chat(settings_for(llm_base_url=f"http://127.0.0.1:{port}/v1", llm_max_retries=1))
    _, error = collect(chat.stream_answer("?", APPLE_PIE, []))
    assert isinstance(error, ChatConnectionError) and isinstance(error, ConnectionError)
    assert f"127.0.0.1:{port}" in str(error)


def test_hub_offline_mode_is_explained(chat_server, settings_for, monkeypatch) -> None:
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    _, error = ask(settings_for(chat_server))
    assert isinstance(error, ChatConfigError) and "HF_HUB_OFFLINE" in str(error)


def test_the_hf_token_never_goes_to_a_custom_endpoint(chat_server, settings_for, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_local_secret")
    ask(settings_for(chat_server, hf_token="hf_local_secret"))
    assert "hf_local_secret" not in str(chat_server.received[0].headers)
    assert chat_server.received[0].headers["authorization"] == "Bearer EMPTY"


def test_api_key_is_sent_as_bearer(chat_server, settings_for) -> None:
    ask(settings_for(chat_server, llm_api_key="sk-123"))
    assert chat_server.received[0].headers["authorization"] == "Bearer sk-123"


def test_reader_may_stop_early(chat_server, settings_for) -> None:
    stream = make_chat(settings_for(chat_server)).stream_answer("?", APPLE_PIE, [])
    assert next(stream) == "Apple pie "
    stream.close()  # e.g. the person navigated away: no error, the response is closed
    assert list(make_chat(settings_for(chat_server)).stream_answer("?", APPLE_PIE, []))
