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
from tests.support.chat_server import ChatServer, Reply, chunk_json

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
    assert 0.95 <= second.at - first.at < 10.0  # waited as asked; generous upper bound


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


def test_silent_server_gives_the_offline_answer_at_the_stated_time(
    chat_server, settings_for, monkeypatch
) -> None:
    # Before: LLM_TIMEOUT x (LLM_MAX_RETRIES + 1), here 4 x 60 s.
    monkeypatch.setattr("llm_client.backends.OFFLINE_AFTER_S", 1.0)
    chat_server.script(*[Reply(hang=True)] * 4)
    chat = make_chat(settings_for(chat_server, llm_timeout=60.0, llm_max_retries=3))
    start = time.monotonic()
    _, error = collect(chat.stream_answer("Hi?", APPLE_PIE, []))
    waited = time.monotonic() - start
    assert isinstance(error, ChatTimeoutError) and isinstance(error, TimeoutError)
    assert error.offline_answer and "apple" in error.offline_answer.lower()
    assert waited >= 0.9
    assert waited < 30  # generous; far below the 240 s it took
    assert len(chat_server.received) == 1  # a retry could not answer in time


def test_endless_empty_chunks_give_the_offline_answer_at_the_stated_time(
    chat_server, settings_for, monkeypatch
) -> None:
    monkeypatch.setattr("llm_client.backends.OFFLINE_AFTER_S", 1.0)
    chat_server.script(Reply(endless=True, every=0.1, text=("",)))
    deltas, error = ask(settings_for(chat_server, llm_timeout=60.0))
    assert deltas == [] and isinstance(error, ChatTimeoutError) and error.offline_answer


def test_quick_failures_are_retried_within_the_first_text_budget(chat_server, settings_for):
    chat_server.script(Reply(status=503), Reply(status=503), Reply())
    deltas, error = ask(settings_for(chat_server, llm_timeout=60.0, llm_max_retries=3))
    assert error is None and "".join(deltas) == "Apple pie is a baked dessert."
    assert len(chat_server.received) == 3


def test_endless_stream_stops_at_the_length_cap_with_its_text(chat_server, settings_for):
    from llm_client.backends import CHARS_PER_TOKEN

    chat_server.script(Reply(endless=True, text=("tasty ",)))
    deltas, error = ask(settings_for(chat_server, llm_max_tokens=50))
    assert isinstance(error, IncompleteAnswerError) and error.reason == "length"
    assert error.partial_text == "".join(deltas)
    assert len(error.partial_text) == CHARS_PER_TOKEN * 50
    assert "LLM_MAX_TOKENS" in str(error)


def test_a_token_every_few_tenths_forever_hits_the_answer_deadline(chat_server, settings_for):
    chat_server.script(Reply(endless=True, every=0.2, text=("slow ",)))
    deltas, error = ask(settings_for(chat_server, llm_timeout=1.0))
    assert isinstance(error, IncompleteAnswerError) and error.reason == "interrupted"
    assert isinstance(error.__cause__, ChatTimeoutError)
    assert deltas and error.partial_text == "".join(deltas)


@pytest.mark.parametrize("target", ["http://169.254.169.254/latest/meta-data/", "other-port"])
def test_redirects_to_another_host_are_not_followed(chat_server, settings_for, target) -> None:
    other = ChatServer().start()
    try:
        if target == "other-port":
            target = other.url + "/chat/completions"
        chat_server.script(Reply(status=307, headers={"Location": target}))
        deltas, error = ask(settings_for(chat_server))
    finally:
        other.stop()
    assert deltas == [] and isinstance(error, ChatConfigError)
    assert "redirected" in str(error) and error.offline_answer
    assert other.received == []  # and the suite's network guard saw no other connection
    assert len(chat_server.received) == 1


@pytest.mark.parametrize(
    "raw",
    [
        ("application/json", b'{"choices": [{"message": {"content": "Apple pie"}}]}'),
        ("text/html", b"<html><body>Welcome to nginx!</body></html>"),
    ],
)
def test_a_200_reply_that_is_not_a_stream_is_malformed(chat_server, settings_for, raw) -> None:
    chat_server.script(Reply(raw=raw))
    _, error = ask(settings_for(chat_server))
    assert isinstance(error, ChatMalformedReplyError)
    assert "stream ended" not in str(error)
    assert len(chat_server.received) == 1


def test_dishlens_own_type_error_is_not_called_a_malformed_reply(
    chat_server, settings_for, monkeypatch
) -> None:
    def broken(chunk, endpoint):
        raise TypeError("a bug in DishLens")

    monkeypatch.setattr("llm_client.backends.read_chunk", broken)
    with pytest.raises(TypeError, match="a bug in DishLens"):
        ask(settings_for(chat_server))


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
