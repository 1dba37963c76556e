import dataclasses
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dishlens.errors import DishLensError, SettingsError
from dishlens.settings import (
    Settings,
    exit_on_bad_setting,
    get_settings,
    load_settings,
    setting_rows,
)

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


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
        ("LLM_TIMEOUT", "soon", "a finite number"),
        ("LLM_TIMEOUT", "nan", "a finite number"),
        ("FETCH_TIMEOUT", "inf", "a finite number"),
        ("LLM_TEMPERATURE", "-infinity", "a finite number"),
        ("API_PORT", "0", "a whole number from 1 to 65535"),
        ("API_PORT", "65536", "a whole number from 1 to 65535"),
        ("API_PORT", "8000.5", "a whole number"),
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
    names = {row[0] for row in setting_rows()}
    assert names == {f.name.upper() for f in dataclasses.fields(Settings)}
    assert names <= table_rows, f"missing from README: {sorted(names - table_rows)}"


def test_secrets_stay_out_of_repr_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    settings = load_settings({"HF_TOKEN": "hf_do_not_print", "LLM_API_KEY": "sk-do-not-print"})
    logging.getLogger("test").warning("settings: %s", settings)
    shown = repr(settings) + str(settings) + f"{settings}" + caplog.text
    assert "do_not_print" not in shown and "do-not-print" not in shown
    assert settings.hf_token == "hf_do_not_print" and settings.llm_api_key == "sk-do-not-print"
    assert "llm_model=" in repr(settings)  # the rest is still shown


def test_optional_numbers_parse_as_numbers_and_unknown_types_fail_loudly() -> None:
    from dishlens import settings as module

    assert module._value_type(int | None) is int
    assert module._value_type(Path | None) is Path
    with pytest.raises(TypeError, match="no parser"):
        module._value_type(list[str])
    with pytest.raises(TypeError, match="no parser"):
        module._value_type(int | float)


def test_every_field_has_a_parser_for_its_type() -> None:
    from dishlens import settings as module

    assert set(module._FIELD_TYPES) == {f.name for f in dataclasses.fields(Settings)}
    assert module._FIELD_TYPES["model_uri"] is str and module._FIELD_TYPES["api_port"] is int


def test_get_settings_reads_the_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_PORT", "9123")
    first = get_settings()
    monkeypatch.setenv("API_PORT", "9124")
    assert get_settings() is first and first.api_port == 9123
    get_settings.cache_clear()
    assert get_settings().api_port == 9124


def test_a_bad_setting_ends_a_program_with_one_line_and_status_2(capsys) -> None:
    with pytest.raises(SystemExit) as ended, exit_on_bad_setting("prog"):
        load_settings({"API_PORT": "http"})
    assert ended.value.code == 2
    assert capsys.readouterr().err == (
        "prog: The setting API_PORT='http' is not valid: expected a whole number.\n"
    )


@pytest.mark.parametrize(
    ("command", "setting"),
    [
        (["-m", "api"], {"API_PORT": "70000"}),
        (["-m", "classifier.predict", "photo.jpg"], {"TORCH_THREADS": "two"}),
    ],
    ids=["api", "classifier.predict"],
)
def test_clis_refuse_a_bad_setting_without_a_traceback(
    command: list[str], setting: dict[str, str]
) -> None:
    env = dict(os.environ, **setting)
    result = subprocess.run(
        [sys.executable, *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "is not valid: expected" in result.stderr
