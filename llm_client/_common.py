"""Private helpers: where a request goes, the one translation of foreign errors, retry timing."""

from __future__ import annotations

import contextlib
import email.utils
import logging
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from llm_client.errors import (
    HF_AUTH_MESSAGE,
    ChatAuthError,
    ChatConfigError,
    ChatConnectionError,
    ChatError,
    ChatMalformedReplyError,
    ChatModelNotFoundError,
    ChatRateLimitError,
    ChatRequestError,
    ChatTimeoutError,
    ChatUnavailableError,
)

if TYPE_CHECKING:
    from huggingface_hub.errors import HfHubHTTPError

logger = logging.getLogger("llm_client")

BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 8.0
# A person is watching a spinner: a server asking for a longer pause gets the offline answer.
MAX_RETRY_AFTER_S = 10.0


@dataclass(frozen=True)
class Endpoint:
    """Where chat requests go: ``url`` is the OpenAI-compatible base URL."""

    url: str
    hugging_face: bool = False
    token_secret_id: str | None = None

    @property
    def host(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)

    @property
    def model_at(self) -> str:
        """Where the model runs, for messages: ``"The chat model {model_at} ..."``."""
        return "on Hugging Face" if self.hugging_face else f"at {self.host}"


@contextlib.contextmanager
def calling_library(endpoint: Endpoint) -> Iterator[None]:
    """Wrap calls into huggingface_hub, httpx2 and boto3: their errors leave as ``ChatError``
    (chained ``from`` the original). Only library calls go inside, so a TypeError or KeyError of
    DishLens's own stays what it is."""
    try:
        yield
    except ChatError:
        raise
    except Exception as err:
        raise translate(err, endpoint) from err


_allowed = threading.local()


@contextlib.contextmanager
def only_host(endpoint: Endpoint) -> Iterator[None]:
    """Refuse, in this thread, every request that is not to ``endpoint``'s scheme, host and
    port: huggingface_hub's shared session follows redirects, and a redirect to another host
    must not be followed (it could point at a cloud metadata address).

    The check is a request hook on that session; outside this block it lets everything pass,
    so other users of the session (model downloads) keep their redirects.
    """
    from huggingface_hub.utils import get_session

    hooks = get_session().event_hooks["request"]
    if _refuse_other_hosts not in hooks:
        hooks.append(_refuse_other_hosts)
    _allowed.origin = _origin(endpoint.url)
    try:
        yield
    finally:
        _allowed.origin = None


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


def _refuse_other_hosts(request: object) -> None:
    origin = getattr(_allowed, "origin", None)
    url = str(getattr(request, "url", ""))
    if origin is not None and _origin(url) != origin:
        raise ChatConfigError(
            f"The chat server at {origin[1]} redirected DishLens to another server, which it "
            "does not follow; set LLM_BASE_URL to the server that answers."
        )


def translate(err: Exception, endpoint: Endpoint) -> ChatError:
    """The :class:`ChatError` that stands for a huggingface_hub, httpx2 or botocore error.

    This is the only place that knows those libraries' exception classes; it is called only
    for errors raised inside :func:`calling_library`.
    """
    import httpx2
    from huggingface_hub import errors as hub

    if isinstance(err, ChatError):
        return err
    if isinstance(err, hub.OfflineModeIsEnabled):
        return ChatConfigError(
            "HF_HUB_OFFLINE is set, so huggingface_hub sends no requests at all; unset it to "
            "chat with a model."
        )
    if isinstance(err, hub.HfHubHTTPError):
        return _from_status(err, endpoint)
    if isinstance(err, hub.InferenceTimeoutError | httpx2.TimeoutException):
        return ChatTimeoutError(
            f"The chat model {endpoint.model_at} did not answer within LLM_TIMEOUT seconds."
        )
    if isinstance(err, hub.OverloadedError):
        return ChatUnavailableError(f"The chat model {endpoint.model_at} is overloaded; try again.")
    if isinstance(err, hub.ValidationError):
        return ChatRequestError(f"The chat model {endpoint.model_at} rejected the request.")
    if isinstance(err, hub.TextGenerationError):
        return ChatUnavailableError(f"The chat model {endpoint.model_at} failed while answering.")
    if isinstance(err, httpx2.UnsupportedProtocol | httpx2.InvalidURL):
        return ChatConfigError(f"{endpoint.url} is not a URL DishLens can send requests to.")
    if isinstance(err, httpx2.TransportError | httpx2.StreamError):
        return ChatConnectionError(
            f"Could not reach the chat model {endpoint.model_at}, or it dropped the connection."
        )
    if isinstance(err, httpx2.HTTPError | ValueError | TypeError | KeyError | AttributeError):
        return ChatMalformedReplyError(
            f"The reply from {endpoint.host} is not a chat-completion stream DishLens can read."
        )
    botocore_error = _from_botocore(err, endpoint)
    if botocore_error is not None:
        return botocore_error
    logger.error("Unexpected chat failure", exc_info=err)
    return ChatError(f"The chat model {endpoint.model_at} failed unexpectedly.")


def _from_status(err: HfHubHTTPError, endpoint: Endpoint) -> ChatError:
    status = err.response.status_code
    where = "Hugging Face" if endpoint.hugging_face else f"The chat server at {endpoint.host}"
    retry_after = parse_retry_after(err.response.headers.get("retry-after"))
    kwargs: dict[str, Any] = {
        "status": status,
        "retry_after": retry_after,
        "detail": err.server_message,
    }
    if status in (401, 403):
        refused = f"{where} refused the API key. Check LLM_API_KEY."
        return ChatAuthError(HF_AUTH_MESSAGE if endpoint.hugging_face else refused, **kwargs)
    if status == 404:
        return ChatModelNotFoundError(
            f"{where} does not serve the model named in LLM_MODEL. Check LLM_MODEL"
            + ("." if endpoint.hugging_face else " and LLM_BASE_URL."),
            **kwargs,
        )
    if status == 429:
        return ChatRateLimitError(
            f"{where} is getting too many requests right now. Wait a moment and ask again.",
            **kwargs,
        )
    if status in (408, 504):
        return ChatTimeoutError(f"{where} timed out while waiting for the model.", **kwargs)
    if status >= 500:
        return ChatUnavailableError(
            f"The chat model {endpoint.model_at} is loading or unavailable. Try again in a minute.",
            **kwargs,
        )
    return ChatRequestError(
        f"{where} rejected the request (HTTP {status}); the conversation may be too long for "
        "the model. Start a new conversation or lower LLM_CONTEXT_TOKENS.",
        **kwargs,
    )


def _from_botocore(err: Exception, endpoint: Endpoint) -> ChatError | None:
    from botocore.exceptions import BotoCoreError, ClientError

    secret = endpoint.token_secret_id
    if isinstance(err, ClientError):
        code = err.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            return ChatConfigError(f"The secret {secret!r} does not exist in AWS Secrets Manager.")
        return ChatConfigError(
            f"AWS Secrets Manager refused to give the secret {secret!r} ({code}). Check "
            "HF_TOKEN_SECRET_ID and the permissions of DishLens's AWS role."
        )
    if isinstance(err, BotoCoreError):
        return ChatConfigError(
            f"Could not read the secret {secret!r} from AWS Secrets Manager: check the AWS "
            "region, credentials and network."
        )
    return None


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delay-seconds or HTTP-date); None if absent/bad."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def retry_delay(attempt: int, retry_after: float | None) -> float | None:
    """Seconds to wait before retry number ``attempt + 1``.

    Honours ``retry_after`` when the server sent one; otherwise exponential backoff with
    jitter. None when the server asks for a longer pause than a person should wait.
    """
    if retry_after is not None:
        return retry_after if retry_after <= MAX_RETRY_AFTER_S else None
    return min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt) * random.uniform(0.5, 1.0)
