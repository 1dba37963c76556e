import dataclasses
from pathlib import Path

import pytest

from dishlens.errors import DishLensError, SettingsError
from dishlens.settings import Settings, describe, load_settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_defaults_need_no_configuration() -> None:
    settings = load_settings({})
    assert settings.model_uri is None
    assert settings.hf_token is None and settings.llm_base_url is None
    assert settings.allow_private_urls is False
    assert settings.max_image_bytes == 10 * 1024 * 1024
    assert settings.llm_max_tokens == 512


def test_values_are_parsed_to_their_types() -> None:
    settings = load_settings(
        {
            "ALLOW_PRIVATE_URLS": "yes",
            "MAX_IMAGE_MB": "4",
            "LLM_TEMPERATURE": "0.7",
            "MODEL_CACHE_DIR": "~/models",
            "LLM_BASE_URL": "http://127.0.0.1:8080/v1",
            "MODEL_URI": "s3://bucket/models/food/1/",
            "HF_TOKEN": "",
        }
    )
    assert settings.allow_private_urls is True
    assert settings.max_image_bytes == 4 * 1024 * 1024
    assert settings.llm_temperature == 0.7
    assert settings.model_cache_dir == Path.home() / "models"
    assert settings.hf_token is None  # an empty token means "no token"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("MAX_IMAGE_MB", "ten", "a whole number"),
        ("MAX_IMAGE_MB", "0", "at least 1"),
        ("ALLOW_PRIVATE_URLS", "maybe", "true or false"),
        ("LLM_TIMEOUT", "soon", "a number"),
        ("LOG_LEVEL", "LOUD", "one of DEBUG"),
        ("INFERENCE_PRECISION", "fp16", "one of auto, float32, bfloat16"),
        ("LLM_BASE_URL", "localhost:8000", "http:// or https://"),
        ("MODEL_URI", "gs://bucket/model", "s3://bucket/prefix/"),
        ("FEEDBACK_URI", "ftp://x/y", "s3://bucket/prefix/"),
    ],
)
def test_bad_values_name_the_variable_and_what_was_expected(name, value, expected) -> None:
    with pytest.raises(SettingsError, match=expected) as caught:
        load_settings({name: value})
    assert isinstance(caught.value, DishLensError) and isinstance(caught.value, ValueError)
    assert name in str(caught.value) and repr(value) in str(caught.value)


def test_load_settings_reads_the_process_environment(monkeypatch) -> None:
    monkeypatch.setenv("API_PORT", "9123")
    assert load_settings().api_port == 9123


def test_every_setting_is_in_the_readme_table() -> None:
    text = README.read_text()
    table_rows = {
        line.split("|")[1].strip().strip("`")
        for line in text.splitlines()
        if line.startswith("| `")
    }
    names = {row[0] for row in describe()}
    assert names == {f.name.upper() for f in dataclasses.fields(Settings)}
    assert names <= table_rows, f"missing from README: {sorted(names - table_rows)}"
