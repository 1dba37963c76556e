"""The DishLens JSON API: ``uvicorn api.main:app --host 0.0.0.0 --port 8000``.

Routes live in ``api/routes/`` (one router per resource); errors become RFC 9457 problems in
``api/problems.py``; the model loads in the background at startup (``/readyz`` answers 503
until it has) and runs on ``api.runner.ModelRunner``'s bounded pool of model threads, each
with a worker process of its own (``api/workers.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from api.problems import install_problem_handlers
from api.routes import classify, health, meta
from api.runner import MAX_BATCH, runner_for
from classifier import Classifier, load_classifier, load_model_info
from dishlens.settings import Settings, load_settings

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def create_app(
    settings: Settings | None = None,
    *,
    loader: Callable[[], Classifier] | None = None,
    max_batch: int = MAX_BATCH,
) -> FastAPI:
    """Build the app. At startup it reads ``settings`` (default: the environment) and runs
    ``loader`` in the background (default: ``load_classifier`` with those settings, or with
    worker processes ``load_model_info``: the workers load the network, this process only
    serves its card and labels).
    ``max_batch`` bounds the micro-batches (1 turns batching off; for benchmarks)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resolved = settings or load_settings()
        logging.basicConfig(level=resolved.log_level.upper(), format=LOG_FORMAT)
        # Worker processes load the model themselves, so only the settings' model can use them.
        runner = runner_for(resolved, max_batch=max_batch, processes=loader is None)
        app.state.settings, app.state.runner = resolved, runner
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
    install_problem_handlers(app)
    for router in (classify.router, meta.router, health.router):
        app.include_router(router)
    return app


app = create_app()
