"""The classifier behind the API: loaded in the background, run off the event loop, bounded.

The model runs on a private thread pool (one worker by default: PyTorch already spreads one
forward pass over the cores, so a second concurrent forward only contends for them). Requests
beyond ``workers + queue_size`` in flight are refused with :class:`ServiceBusyError` (503 with
``Retry-After``) instead of growing an unbounded backlog. Grouping concurrent requests into
micro-batches was measured and did not pay on CPU (see ``benchmarks/bench_api.py``), so each
request is one ``Classifier.predict`` call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from PIL import Image

from api.errors import ModelNotReadyError, ServiceBusyError
from classifier import Classifier, Prediction
from dishlens.errors import DishLensError

logger = logging.getLogger(__name__)


class ModelRunner:
    """Owns the loaded :class:`Classifier` and the threads that run it."""

    def __init__(self, *, workers: int = 1, queue_size: int = 16) -> None:
        self.workers = workers
        self.capacity = workers + queue_size
        self.in_flight = 0
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="dishlens-model")
        self._classifier: Classifier | None = None
        self._load_error: str | None = None

    @property
    def ready(self) -> bool:
        return self._classifier is not None

    @property
    def classifier(self) -> Classifier:
        """The loaded model.

        Raises:
            ModelNotReadyError: it is still loading, or loading failed.
        """
        if self._classifier is not None:
            return self._classifier
        if self._load_error is not None:
            raise ModelNotReadyError(f"The model could not be loaded: {self._load_error}")
        raise ModelNotReadyError()

    def use(self, classifier: Classifier) -> None:
        """Serve ``classifier`` (already loaded) from now on."""
        self._classifier, self._load_error = classifier, None

    async def load(self, loader: Callable[[], Classifier]) -> None:
        """Run ``loader`` on the model thread; a failure is kept and reported by /readyz."""
        started = time.perf_counter()
        try:
            classifier = await asyncio.wrap_future(self._executor.submit(loader))
        except DishLensError as error:
            self._load_error = str(error)
            logger.error("model failed to load: %s", error, exc_info=error)
            return
        self.use(classifier)
        logger.info(
            "API ready model=%s seconds=%.2f", classifier.name, time.perf_counter() - started
        )

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the ``capacity`` places for the duration of a request.

        Raises:
            ServiceBusyError: every place is taken.
        """
        if self.in_flight >= self.capacity:
            raise ServiceBusyError(self.capacity)
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1

    async def predict(self, image: Image.Image, *, top_k: int) -> Prediction:
        """Classify ``image`` on the model thread without blocking the event loop."""
        classifier = self.classifier
        future = self._executor.submit(classifier.predict, image, top_k)
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
