"""``launch_app.py``: the model is loaded into the shared cache before Streamlit starts."""

from __future__ import annotations

import logging

import pytest

import launch_app
from classifier import shared_classifier
from classifier.shared import forget_shared_classifiers
from dishlens.settings import load_settings


@pytest.fixture(autouse=True)
def fresh_cache():
    forget_shared_classifiers()
    yield
    forget_shared_classifiers()


def test_preload_fills_the_cache_the_page_reads(caplog, monkeypatch, forced_model) -> None:
    monkeypatch.setenv("MODEL_URI", forced_model("confident"))
    caplog.set_level(logging.INFO)
    launch_app.preload()
    loads = [r for r in caplog.records if r.getMessage().startswith("model loaded")]
    assert len(loads) == 1
    settings = load_settings()
    first = shared_classifier(settings.model_uri, settings)  # what app.py asks for
    assert shared_classifier(settings.model_uri, settings) is first
    assert len([r for r in caplog.records if r.getMessage().startswith("model loaded")]) == 1


def test_a_model_that_cannot_load_stops_the_launcher_before_it_listens(
    monkeypatch, tmp_path, capsys
):
    monkeypatch.setenv("MODEL_URI", str(tmp_path / "no-model-here"))
    with pytest.raises(SystemExit) as stopped:
        launch_app.main(["--server.port", "1"])  # never reached: nothing starts listening
    assert stopped.value.code == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("launch_app: the model could not be loaded:")
    assert str(tmp_path) not in line  # no server paths in what people read


def test_a_bad_setting_stops_the_launcher_with_one_line(monkeypatch, capsys):
    monkeypatch.setenv("TORCH_THREADS", "many")
    with pytest.raises(SystemExit) as stopped:
        launch_app.main([])
    assert stopped.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("launch_app: ") and "TORCH_THREADS" in line
