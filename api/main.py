"""The DishLens JSON API: ``uvicorn api.main:app --host 0.0.0.0 --port 8000``.

Routes live in ``api/routes/`` (one router per resource); errors become RFC 9457 problems in
``api/problems.py``; a local model that cannot load (a typo in ``MODEL_URI``) stops start-up
with the reason in the log, and otherwise the model loads in the background (``/readyz`` answers
503 until it has; an ``s3://`` model that fails to download keeps it at 503, logged) and runs
on ``api.runner.ModelRunner``'s bounded pool of model threads, each with a worker process of
its own (``api/workers.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from api.photos import BODY_TIMEOUT_S
from api.problems import install_problem_handlers
from api.routes import classify, health, meta
from api.runner import MAX_BATCH, runner_for
from classifier import Classifier, ClassifierError, load_classifier, load_model_info
from dishlens.settings import Settings, get_settings

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def create_app(
    settings: Settings | None = None,
    *,
    loader: Callable[[], Classifier] | None = None,
    max_batch: int = MAX_BATCH,
    body_timeout: float = BODY_TIMEOUT_S,
) -> FastAPI:
    """Build the app. At startup it reads ``settings`` (default: the environment) and runs
    ``loader`` in the background (default: ``load_classifier`` with those settings, or with
    worker processes ``load_model_info``: the workers load the network, this process only
    serves its card and labels).
    ``max_batch`` bounds the micro-batches (1 turns batching off; for benchmarks);
    ``body_timeout`` is how long a client may take to send a photo (then 408)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resolved = settings or get_settings()
        logging.basicConfig(level=resolved.log_level.upper(), format=LOG_FORMAT)
        # Worker processes load the model themselves, so only the settings' model can use them.
        runner = runner_for(resolved, max_batch=max_batch, processes=loader is None)
        app.state.settings, app.state.runner = resolved, runner
        if loader is None:
            await asyncio.to_thread(check_local_model, resolved)
        load = loader or partial(
            load_model_info if runner.worker_processes else load_classifier,
            resolved.model_uri,
            settings=resolved,
        )
        loading = asyncio.create_task(runner.load(load, resolved.model_uri))
        yield
        loading.cancel()
        runner.close()

    # /docs and /redoc load Swagger UI and ReDoc from this server, not from a CDN.
    app = FastAPIOffline(
        title="DishLens API",
        version="1",
        lifespan=lifespan,
        summary="Name the dish in a food photo.",
    )
    app.state.body_timeout = body_timeout
    install_problem_handlers(app)
    for router in (classify.router, meta.router, health.router):
        app.include_router(router)
    return app


def check_local_model(settings: Settings) -> None:
    """Raise (and log) what stops the settings' local model from loading: better a start-up
    that fails loudly than an API that answers 503 forever. An ``s3://`` model is checked by
    the background load instead (downloading it here would hold up start-up).

    Raises:
        ClassifierError: the model is missing, corrupt or inconsistent.
    """
    uri = settings.model_uri
    if uri and uri.startswith("s3://"):
        return
    try:
        load_model_info(uri, settings=settings)
    except ClassifierError as error:
        logging.getLogger(__name__).critical(
            "DishLens API cannot start: %s (%s)", error, getattr(error, "path", uri)
        )
        raise


app = create_app()
