"""Serve the app with its model already loaded: ``python launch_app.py [streamlit options]``.

``streamlit run app.py`` loads the model when the first person arrives (a few seconds on a cold
process). This launcher loads it first, into ``classifier``'s process-level cache, and then
starts Streamlit in the same process, so ``/_stcore/health`` answers only once the model is
ready and the first visitor finds it loaded. Options after the script name go to Streamlit,
e.g. ``python launch_app.py --server.port=8501 --server.address=0.0.0.0``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

APP = Path(__file__).resolve().parent / "app.py"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
logger = logging.getLogger("dishlens.launch")


def preload() -> None:
    """Load the settings' model into the shared cache, and import and read what the page's
    first run needs (its modules, the dish facts); a failure is logged, not raised, so that
    the page starts and shows people the friendly error."""
    import app_support  # noqa: F401  (imports intake and llm_client for the page's first run)
    from classifier import shared_classifier
    from dishlens.errors import DishLensError
    from dishlens.settings import load_settings
    from llm_client.facts import load_cards

    try:
        settings = load_settings()
        logging.basicConfig(level=settings.log_level.upper(), format=LOG_FORMAT)
        load_cards()
        shared_classifier(settings.model_uri, settings)
    except DishLensError as error:
        logging.basicConfig(format=LOG_FORMAT)
        logger.error("model not preloaded error=%s: %s", type(error).__name__, error)


def main(argv: list[str]) -> None:
    preload()
    from streamlit.web import cli

    cli.main(["run", str(APP), *argv], prog_name="streamlit")


if __name__ == "__main__":
    main(sys.argv[1:])
