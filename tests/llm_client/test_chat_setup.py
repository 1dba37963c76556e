"""Backend choice, retry timing, error classes and history trimming."""

from __future__ import annotations

import email.utils
import time

import llm_client
from dishlens.errors import DishLensError
from llm_client import DishContext, make_chat
from llm_client._common import BACKOFF_CAP_S, parse_retry_after, retry_delay
from llm_client.prompts import build_messages, estimate_tokens, trim_history


def test_backend_precedence(settings_for) -> None:
    both = settings_for(llm_base_url="http://localhost:11434/v1", hf_token="hf_x")
    assert make_chat(both).backend_name == "custom endpoint (localhost:11434)"
    assert make_chat(settings_for(hf_token="hf_x")).backend_name == "Llama via Hugging Face"
    assert make_chat(settings_for(hf_token_secret_id="s")).backend_name == "Llama via Hugging Face"
    assert make_chat(settings_for()).backend_name == "offline answers"


def test_make_chat_reads_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("LLM_BASE_URL", "https://llm.example.org/v1")
    assert make_chat().backend_name == "custom endpoint (llm.example.org)"


def test_public_api_is_exported() -> None:
    for name in [
        "make_chat",
        "Chat",
        "DishContext",
        "dish_card",
        "ChatError",
        "IncompleteAnswerError",
    ]:
        assert hasattr(llm_client, name)


def test_every_error_is_a_dishlens_error_and_a_builtin() -> None:
    classes = [
        c
        for c in vars(llm_client.errors).values()
        if isinstance(c, type) and issubclass(c, llm_client.ChatError)
    ]
    assert {c.__name__ for c in classes} <= set(llm_client.__all__)
    for cls in classes:
        assert issubclass(cls, DishLensError)
        builtin_bases = [b for b in cls.__mro__[1:] if b.__module__ == "builtins"]
        assert cls is llm_client.ChatError or builtin_bases[0] is not Exception


def test_backoff_grows_with_jitter_and_a_cap(monkeypatch) -> None:
    monkeypatch.setattr("llm_client._common.BACKOFF_BASE_S", 0.5)
    first = [retry_delay(0, None) for _ in range(200)]
    third = [retry_delay(2, None) for _ in range(200)]
    assert min(first) >= 0.25 and max(first) <= 0.5 and len(set(first)) > 100
    assert min(third) >= 1.0 and max(third) <= 2.0
    assert retry_delay(30, None) <= BACKOFF_CAP_S


def test_retry_after_is_honoured_up_to_a_limit() -> None:
    assert retry_delay(0, 1.0) == 1.0
    assert retry_delay(0, 600.0) is None
    assert parse_retry_after("3") == 3.0 and parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    in_five = email.utils.formatdate(time.time() + 5, usegmt=True)
    assert 3.0 <= parse_retry_after(in_five) <= 5.0


def test_trim_keeps_the_newest_turns_starting_with_a_user_turn() -> None:
    turns = [{"role": r, "content": "x" * 35} for r in ["user", "assistant"] * 5]
    cost = estimate_tokens(turns[0])
    kept = trim_history(turns, 3 * cost)
    assert kept == turns[-2:]  # the third-newest is an assistant turn cut to start with a user
    assert trim_history(turns, 100 * cost) == turns
    assert trim_history(turns, 0) == []


def test_unknown_dish_prompt_admits_it_has_no_facts() -> None:
    messages = build_messages("Hi", DishContext("moon_cheese", 0.5), [], budget_tokens=6000)
    assert "No reference facts" in messages[0]["content"]
    assert "Moon cheese" in messages[0]["content"]
