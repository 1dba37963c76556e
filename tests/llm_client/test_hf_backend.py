"""The Hugging Face backend (pointed at the loopback server) and its token from Secrets Manager."""

from __future__ import annotations

import json
import uuid

import pytest

from llm_client import ChatAuthError, ChatConfigError, DishContext, hf_token, make_chat
from llm_client import errors as chat_errors
from tests.support.chat_server import Reply

DISH = DishContext("sushi", 0.93)


@pytest.fixture
def hf_router(chat_server, monkeypatch):
    """The loopback server stands in for https://router.huggingface.co/v1."""
    monkeypatch.setattr("llm_client.backends.HF_ROUTER_URL", chat_server.url)
    return chat_server


def test_hf_token_chats_with_llama_through_the_router(hf_router, settings_for) -> None:
    chat = make_chat(settings_for(hf_token="hf_test_token"))
    assert chat.backend_name == "Llama via Hugging Face"
    assert (
        "".join(chat.stream_answer("Is it raw fish?", DISH, [])) == "Apple pie is a baked dessert."
    )
    (request,) = hf_router.received
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer hf_test_token"
    assert request.body["model"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert request.body["max_tokens"] == 512 and request.body["temperature"] == 0.3


def test_refused_hf_token_names_the_token_and_the_licence(hf_router, settings_for) -> None:
    hf_router.script(Reply(status=403, body={"error": "gated"}))
    chat = make_chat(settings_for(hf_token="hf_no_access"))
    with pytest.raises(ChatAuthError) as caught:
        list(chat.stream_answer("What's in it?", DISH, []))
    assert str(caught.value) == chat_errors.HF_AUTH_MESSAGE
    assert "rice" in caught.value.offline_answer


def test_other_models_are_named_by_their_repo(settings_for) -> None:
    chat = make_chat(settings_for(hf_token="hf_x", llm_model="Qwen/Qwen2.5-7B-Instruct"))
    assert chat.backend_name == "Qwen2.5-7B-Instruct via Hugging Face"


@pytest.mark.parametrize("stored", ["hf_from_secret", '{"HF_TOKEN": "hf_from_secret"}'])
def test_token_comes_from_secrets_manager(hf_router, settings_for, secrets_manager, stored):
    name = f"dishlens/hf-token-{uuid.uuid4().hex[:8]}"
    secrets_manager.create_secret(Name=name, SecretString=stored)
    chat = make_chat(settings_for(hf_token_secret_id=name))
    assert chat.backend_name == "Llama via Hugging Face"
    assert hf_router.received == []  # making the chat did no I/O

    list(chat.stream_answer("?", DISH, []))
    list(chat.stream_answer("?", DISH, []))
    assert [r.headers["authorization"] for r in hf_router.received] == ["Bearer hf_from_secret"] * 2


def test_secret_is_read_once(hf_router, settings_for, secrets_manager, monkeypatch) -> None:
    name = f"dishlens/hf-token-{uuid.uuid4().hex[:8]}"
    secrets_manager.create_secret(Name=name, SecretString="hf_once")
    reads = []
    real_read = hf_token.read_secret
    monkeypatch.setattr(hf_token, "read_secret", lambda sid: reads.append(sid) or real_read(sid))
    chat = make_chat(settings_for(hf_token_secret_id=name))
    for _ in range(3):
        list(chat.stream_answer("?", DISH, []))
    assert reads == [name]


def test_missing_secret_is_a_config_error_with_offline_answer(
    hf_router, settings_for, secrets_manager
) -> None:
    chat = make_chat(settings_for(hf_token_secret_id="dishlens/absent"))
    with pytest.raises(ChatConfigError, match="does not exist in AWS Secrets Manager") as caught:
        list(chat.stream_answer("What's in it?", DISH, []))
    assert "rice" in caught.value.offline_answer
    assert caught.value.__cause__.__class__.__name__ == "ResourceNotFoundException"
    assert hf_router.received == []


def test_secret_without_a_token_is_a_config_error(hf_router, settings_for, secrets_manager):
    name = f"dishlens/hf-token-{uuid.uuid4().hex[:8]}"
    secrets_manager.create_secret(Name=name, SecretString=json.dumps({"user": "x"}))
    chat = make_chat(settings_for(hf_token_secret_id=name))
    with pytest.raises(ChatConfigError, match="holds no Hugging Face token"):
        list(chat.stream_answer("?", DISH, []))


def test_unreachable_secrets_manager_is_a_config_error(settings_for, monkeypatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # discard port: refused
    chat = make_chat(settings_for(hf_token_secret_id="dishlens/hf"))
    with pytest.raises(ChatConfigError, match="Could not read the secret"):
        list(chat.stream_answer("?", DISH, []))


def test_secret_arn_selects_its_region(hf_router, settings_for, secrets_manager) -> None:
    import boto3

    name = f"dishlens/hf-token-{uuid.uuid4().hex[:8]}"
    elsewhere = boto3.client("secretsmanager", region_name="eu-west-1")
    arn = elsewhere.create_secret(Name=name, SecretString="hf_eu")["ARN"]
    list(make_chat(settings_for(hf_token_secret_id=arn)).stream_answer("?", DISH, []))
    assert hf_router.received[0].headers["authorization"] == "Bearer hf_eu"
