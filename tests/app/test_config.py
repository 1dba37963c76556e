""".streamlit/config.toml: the settings the issue asks for, in step with DishLens's own."""

from __future__ import annotations

import tomllib

import pytest

from dishlens.settings import Settings
from tests.app.conftest import ROOT

CONFIG = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())


def test_upload_cap_equals_the_intake_cap() -> None:
    assert CONFIG["server"]["maxUploadSize"] == Settings().max_image_mb


@pytest.mark.parametrize(
    ("section", "option", "value"),
    [
        ("server", "enableXsrfProtection", True),
        ("server", "headless", True),
        ("browser", "gatherUsageStats", False),
        ("client", "showErrorDetails", "none"),
    ],
)
def test_hardened_option(section: str, option: str, value: object) -> None:
    assert CONFIG[section][option] == value
