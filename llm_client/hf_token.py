"""The Hugging Face token: from HF_TOKEN, or read once from AWS Secrets Manager."""

from __future__ import annotations

import json
import threading

from dishlens.settings import Settings
from llm_client.errors import ChatConfigError

# Keys accepted when the secret holds a JSON object rather than the bare token.
SECRET_KEYS = ("HF_TOKEN", "hf_token", "token")


class TokenSource:
    """Gives the token, fetching the secret on first use (so building a Chat does no I/O).

    botocore errors are not caught here: the caller translates them with the other foreign
    errors (``llm_client._common.translate``).
    """

    def __init__(self, settings: Settings) -> None:
        self._token = settings.hf_token
        self._secret_id = settings.hf_token_secret_id
        self._lock = threading.Lock()

    @property
    def configured(self) -> bool:
        return bool(self._token or self._secret_id)

    def get(self) -> str:
        """The token.

        Raises:
            ChatConfigError: neither HF_TOKEN nor a usable secret is configured.
            botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError: the lookup failed.
        """
        with self._lock:
            if not self._token and self._secret_id:
                self._token = token_from_secret(read_secret(self._secret_id), self._secret_id)
        if not self._token:
            raise ChatConfigError("No Hugging Face token is configured: set HF_TOKEN.")
        return self._token


def read_secret(secret_id: str) -> str:
    """The ``SecretString`` of ``secret_id`` (a name or an ARN, whose region is then used)."""
    import boto3
    from botocore.config import Config

    region = secret_id.split(":")[3] if secret_id.startswith("arn:") else None
    client = boto3.client(
        "secretsmanager",
        region_name=region or None,
        config=Config(
            connect_timeout=5, read_timeout=10, retries={"max_attempts": 2, "mode": "standard"}
        ),
    )
    return client.get_secret_value(SecretId=secret_id).get("SecretString") or ""


def token_from_secret(value: str, secret_id: str) -> str:
    """The token in a secret holding either the bare token or a JSON object with one of
    :data:`SECRET_KEYS`.

    Raises:
        ChatConfigError: the secret holds neither.
    """
    value = value.strip()
    if value.startswith("{"):
        try:
            fields = json.loads(value)
        except ValueError:
            fields = {}
        value = next((str(fields[k]).strip() for k in SECRET_KEYS if fields.get(k)), "")
    if not value:
        raise ChatConfigError(
            f"The secret {secret_id!r} holds no Hugging Face token: store the bare token, or "
            f"JSON with a key named {SECRET_KEYS[0]}."
        )
    return value
