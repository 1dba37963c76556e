"""Serve the app with its model already loaded: ``python launch_app.py [streamlit options]``.

``streamlit run app.py`` loads the model when the first person arrives (a few seconds on a cold
process). This launcher loads it first, into ``classifier``'s process-level cache, and then
starts Streamlit in the same process, so ``/_stcore/health`` answers only once the model is
ready and the first visitor finds it loaded. Options after the script name go to Streamlit,
e.g. ``python launch_app.py --server.port=8501 --server.address=0.0.0.0``.

A model that cannot load stops the launcher with one line and status 1 (a bad setting: status
2), before anything listens: in the cloud the health check then never passes and the
deployment is rolled back, instead of a server that answers every visitor with an error.
``streamlit run app.py`` keeps showing people the friendly error on the page instead.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

APP = Path(__file__).resolve().parent / "app.py"
# Above the load balancer's highest idle timeout (3600 s), as the API's command sets it.
KEEP_ALIVE_S = 3660
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
logger = logging.getLogger("dishlens.launch")


def preload() -> None:
    """Load the settings' model into the shared cache, and import and read what the page's
    first run needs (its modules, the dish facts).

    Raises:
        SettingsError: a setting holds a value DishLens cannot use.
        ModelArtifactError, ModelDownloadError: the model cannot be loaded.
    """
    import app_support  # noqa: F401  (imports intake and llm_client for the page's first run)
    from classifier import shared_classifier
    from dishlens.settings import load_settings
    from llm_client.facts import load_cards

    settings = load_settings()
    logging.basicConfig(level=settings.log_level.upper(), format=LOG_FORMAT)
    load_cards()
    shared_classifier(settings.model_uri, settings)


def keep_connections_alive(seconds: int = KEEP_ALIVE_S) -> None:
    """Keep idle HTTP connections open for ``seconds``.

    Streamlit 1.67 serves through uvicorn with uvicorn's 5 s keep-alive and has no option for
    it. Behind a load balancer that keeps idle connections longer (the ALB: 600 s), the
    balancer can send a request down a connection the server is closing, and the person gets
    a 502. Streamlit builds uvicorn's settings in one private function; this wraps it (a test
    fails loudly if a Streamlit upgrade moves it).
    """
    from streamlit.web.server.starlette import starlette_server

    build = starlette_server._get_uvicorn_config_kwargs

    def with_keep_alive() -> dict[str, Any]:
        return {**build(), "timeout_keep_alive": seconds}

    starlette_server._get_uvicorn_config_kwargs = with_keep_alive


def main(argv: list[str]) -> None:
    from classifier import ClassifierError
    from dishlens.settings import exit_on_bad_setting

    with exit_on_bad_setting("launch_app"):
        try:
            preload()
        except ClassifierError as error:
            logger.critical("model not loaded error=%s", type(error).__name__)
            print(f"launch_app: the model could not be loaded: {error}", file=sys.stderr)
            raise SystemExit(1) from None
    keep_connections_alive()
    from streamlit.web import cli

    cli.main(["run", str(APP), *argv], prog_name="streamlit")


if __name__ == "__main__":
    main(sys.argv[1:])
