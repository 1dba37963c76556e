"""``launch_app.py``: the model is loaded into the shared cache before Streamlit starts."""

from __future__ import annotations

import http.client
import logging
import time

import pytest

import launch_app
from classifier import shared_classifier
from classifier.shared import forget_shared_classifiers
from dishlens.settings import load_settings
from tests.app.browser import streamlit_server


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


def test_the_launched_app_keeps_an_idle_connection_open_past_uvicorns_default(forced_model):
    # Behind the ALB (idle timeout 600 s), a server that closes idle connections after
    # uvicorn's default 5 s makes the balancer answer 502 now and then. One request, 7 s idle,
    # a second request on the same socket.
    with streamlit_server({"MODEL_URI": forced_model("confident")}) as (url, _, _):
        host, port = url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        connection.request("GET", "/_stcore/health")
        assert connection.getresponse().read() == b"ok"
        local = connection.sock.getsockname()
        time.sleep(7)
        connection.request("GET", "/_stcore/health")
        assert connection.getresponse().status == 200
        assert connection.sock.getsockname() == local  # the same connection
        connection.close()


def test_streamlit_still_builds_uvicorns_settings_where_the_launcher_wraps_them() -> None:
    from streamlit.web.server.starlette import starlette_server

    build = starlette_server._get_uvicorn_config_kwargs
    try:
        launch_app.keep_connections_alive(123)
        assert starlette_server._get_uvicorn_config_kwargs()["timeout_keep_alive"] == 123
    finally:
        starlette_server._get_uvicorn_config_kwargs = build
