"""Every DishLens setting, read from the environment in one place.

Each field of :class:`Settings` is one environment variable (its upper-case name). Every field
has a working default, so DishLens runs with no configuration at all: the bundled model,
offline chat, feedback in a local folder. The README's settings table lists the same fields;
``tests/dishlens/test_settings.py`` keeps the two in step.

Adding a setting is one field: ``name: type = _setting(default, "help", minimum=…)``. A value is
parsed by its field's type (``bool``, ``int``, ``float``, ``str``, ``Path``, or one of them
``| None``); a field of any other type fails at import, so nothing falls back to text. Secrets
(``secret=True``) stay out of ``repr()``, and so out of logs.

A plain dataclass rather than pydantic-settings: the parsing here is about forty lines, and the
messages name the variable and what it expects in words a person acts on, which pydantic's
validation errors would need translating into anyway.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
import sys
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dishlens.errors import SettingsError

PRECISIONS = ("auto", "float32", "bfloat16")
LOG_LEVELS = ("DEBUG", "ERROR", "INFO", "WARNING")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _setting(
    default: Any,
    help: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    secret: bool = False,
) -> Any:
    metadata = {"help": help, "minimum": minimum, "maximum": maximum}
    return field(default=default, repr=not secret, metadata=metadata)


@dataclass(frozen=True)
class Settings:
    """Typed, validated settings; build one with :func:`load_settings`."""

    # Classifier
    model_uri: str | None = _setting(
        None,
        "Model to load: a bundled model's name (`food101-lite0`, `food10-lite0`), a directory, "
        "`s3://bucket/prefix/` or a registry's `s3://…/NAME/production`. Unset: "
        "`food101-lite0`.",
    )
    model_cache_dir: Path = _setting(
        Path.home() / ".cache" / "dishlens" / "models",
        "Where models downloaded from S3 are kept (checksum-verified).",
    )
    torch_threads: int = _setting(
        0, "CPU threads for inference; 0 keeps PyTorch's own choice.", minimum=0
    )
    inference_precision: str = _setting(
        "auto",
        "Number format of the classifier's network: `auto` (bfloat16 on CPUs that compute it "
        "natively, AMX or AVX512-BF16; float32 elsewhere), `float32` or `bfloat16`.",
    )
    # Image intake
    allow_private_urls: bool = _setting(
        False,
        "Fetch links that point at private, loopback or link-local addresses. Off: keep it off "
        "in the cloud; turn on only for tests or an intranet you trust.",
    )
    max_image_mb: int = _setting(
        10,
        "Largest photo accepted, in MB (link or upload); matches Streamlit's upload cap.",
        minimum=1,
    )
    max_image_pixels: int = _setting(
        50_000_000, "Largest photo accepted, in pixels (decompression-bomb guard).", minimum=1
    )
    fetch_connect_timeout: float = _setting(
        5.0, "Seconds to wait for a linked server to accept the connection.", minimum=0.01
    )
    fetch_timeout: float = _setting(20.0, "Seconds a whole link download may take.", minimum=0.01)
    # Chat
    hf_token: str | None = _setting(
        None,
        "Hugging Face token: chat with Llama through the Hugging Face Inference API.",
        secret=True,
    )
    hf_token_secret_id: str | None = _setting(
        None,
        "AWS Secrets Manager secret holding the Hugging Face token (used if HF_TOKEN is unset).",
    )
    llm_base_url: str | None = _setting(
        None, "OpenAI-compatible endpoint (vLLM, TGI, Ollama, llama.cpp); takes precedence over HF."
    )
    llm_api_key: str | None = _setting(
        None, "API key for LLM_BASE_URL, if it needs one.", secret=True
    )
    llm_model: str = _setting(
        "meta-llama/Llama-3.1-8B-Instruct", "Chat model name (HF repo id or the endpoint's model)."
    )
    llm_max_tokens: int = _setting(512, "Longest answer, in tokens.", minimum=1)
    llm_temperature: float = _setting(0.3, "Sampling temperature.", minimum=0.0)
    llm_timeout: float = _setting(60.0, "Seconds a whole chat answer may take.", minimum=0.01)
    llm_max_retries: int = _setting(
        3, "Retries before the first token on 429/5xx, within the first 15 s.", minimum=0
    )
    llm_context_tokens: int = _setting(
        6000, "Token budget for the system message plus the kept history.", minimum=256
    )
    # Feedback
    feedback_uri: str = _setting(
        "feedback", 'Where "Right dish?" feedback goes: a local folder or `s3://bucket/prefix/`.'
    )
    # JSON API
    api_host: str = _setting("127.0.0.1", "Address the JSON API binds to.")
    api_port: int = _setting(8000, "Port of the JSON API.", minimum=1, maximum=65535)
    api_queue_size: int = _setting(
        16, "Requests waiting for the model before the API answers 503.", minimum=1
    )
    api_worker_processes: bool = _setting(
        True,
        "Run the API's model in worker processes, one per model thread, away from the web "
        "server's interpreter lock (about 0.45 GB more memory each); false: threads.",
    )
    # Operations
    log_level: str = _setting("INFO", "Logging level: DEBUG, INFO, WARNING or ERROR.")

    @property
    def max_image_bytes(self) -> int:
        return self.max_image_mb * 1024 * 1024


def env_name(settings_field: dataclasses.Field[Any]) -> str:
    return settings_field.name.upper()


def setting_rows() -> list[tuple[str, str, str]]:
    """``(ENV_VAR, default, meaning)`` for every setting, in declaration order."""
    rows = []
    for f in dataclasses.fields(Settings):
        default = "unset" if f.default is None else str(f.default)
        if f.name == "model_cache_dir":
            default = "~/.cache/dishlens/models"
        rows.append((env_name(f), default, f.metadata["help"]))
    return rows


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read every setting from ``environ`` (default ``os.environ``).

    Raises:
        SettingsError: a variable is set to a value of the wrong type or range.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        raw = environ.get(env_name(f))
        if raw is None or (raw.strip() == "" and f.default is None):
            continue
        values[f.name] = _parse(f, raw.strip())
    settings = Settings(**values)
    _check_choices(settings)
    return settings


@functools.cache
def get_settings() -> Settings:
    """The process's settings, read from the environment once; what a function uses when its
    caller passes none. (Tests clear the cache around each test.)"""
    return load_settings()


@contextlib.contextmanager
def exit_on_bad_setting(program: str) -> Iterator[None]:
    """Around a command-line program: a bad setting ends it with one line naming the variable
    and exit status 2 (the status of a usage error), not a traceback."""
    try:
        yield
    except SettingsError as error:
        print(f"{program}: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def _parse_bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(raw)


def _parse_float(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError(raw)
    return value


# Each field's type -> (parser, what a valid value is, in words).
_PARSERS: dict[type, tuple[Callable[[str], Any], str]] = {
    bool: (_parse_bool, "true or false"),
    int: (int, "a whole number"),
    float: (_parse_float, "a finite number"),
    Path: (lambda raw: Path(raw).expanduser(), "a path"),
    str: (str, "text"),
}


def _value_type(annotation: Any) -> type:
    """``int`` for ``int`` and for ``int | None``; a type without a parser is an error in this
    module, raised at import."""
    if isinstance(annotation, types.UnionType):
        kinds = [kind for kind in typing.get_args(annotation) if kind is not type(None)]
        annotation = kinds[0] if len(kinds) == 1 else annotation
    if annotation not in _PARSERS:
        raise TypeError(f"settings: no parser for fields of type {annotation!r}")
    return typing.cast(type, annotation)


_FIELD_TYPES = {name: _value_type(kind) for name, kind in typing.get_type_hints(Settings).items()}


def _parse(f: dataclasses.Field[Any], raw: str) -> Any:
    parser, expected = _PARSERS[_FIELD_TYPES[f.name]]
    try:
        value = parser(raw)
    except ValueError:
        raise SettingsError(env_name(f), raw, expected) from None
    low, high = f.metadata["minimum"], f.metadata["maximum"]
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise SettingsError(env_name(f), raw, f"{expected} {bounds}")
    return value


def _check_choices(settings: Settings) -> None:
    if settings.log_level.upper() not in LOG_LEVELS:
        raise SettingsError("LOG_LEVEL", settings.log_level, "one of " + ", ".join(LOG_LEVELS))
    if settings.inference_precision not in PRECISIONS:
        raise SettingsError(
            "INFERENCE_PRECISION", settings.inference_precision, "one of " + ", ".join(PRECISIONS)
        )
    for name in ("llm_base_url",):
        value = getattr(settings, name)
        if value and not value.startswith(("http://", "https://")):
            raise SettingsError(name.upper(), value, "an http:// or https:// URL")
    for name in ("model_uri", "feedback_uri"):
        value = getattr(settings, name)
        if value and "://" in value and not value.startswith("s3://"):
            raise SettingsError(name.upper(), value, "a local path or an s3://bucket/prefix/ URI")
