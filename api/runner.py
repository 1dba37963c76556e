"""The classifier behind the API: loaded in the background, run off the event loop, bounded.

The model runs on private threads: one per core, each forward pass single-threaded
(``TORCH_THREADS`` per thread if set; PyTorch's thread count is per calling thread, so this
touches no other thread). A model thread takes the next waiting request together with any
others already waiting (up to :data:`MAX_BATCH`, never waiting for more) and decodes and
classifies them in one ``predict_batch`` call; when requests arrive one at a time, every batch
is a single photo and nothing waits. With ``API_WORKER_PROCESSES`` (the default) each model
thread hands its batch to a worker process of its own instead (:mod:`api.workers`).

One single-threaded forward per core beats one forward spread over both cores, grouping
what is already waiting into batches of up to 4 adds to that, and waiting for a batch to fill
costs more idle cores than it saves; the measurements are in ``docs/api-load.md``.

Requests beyond ``workers + queue_size`` in flight are refused with :class:`ServiceBusyError`
(503 with ``Retry-After``) instead of growing an unbounded backlog. A request takes its place
only once its photo is in hand (body read, link downloaded), so slow clients and slow linked
servers cannot hold the model's places; link downloads have ``queue_size`` places of their own
(:meth:`ModelRunner.fetch_slot`). While every model place is taken, ``saturated`` is true and
``/readyz`` answers 503, so a load balancer sends new requests elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from functools import partial

import torch
from PIL import Image

from api.errors import ModelNotReadyError, ServiceBusyError
from api.workers import PhotoLoader, WorkerPool, run_batch
from classifier import Classifier, ModelInfo, Prediction
from dishlens.errors import DishLensError
from dishlens.settings import Settings

MAX_BATCH = 4
logger = logging.getLogger(__name__)


def cores_available() -> int:
    """CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def runner_for(
    settings: Settings, *, max_batch: int = MAX_BATCH, processes: bool = True
) -> ModelRunner:
    """One single-threaded model thread per core (or ``TORCH_THREADS`` threads per thread),
    each with a worker process when ``processes`` and the ``API_WORKER_PROCESSES`` setting
    allow it."""
    threads = settings.torch_threads or 1
    return ModelRunner(
        workers=max(1, cores_available() // threads),
        torch_threads=threads,
        queue_size=settings.api_queue_size,
        max_batch=max_batch,
        worker_processes=processes and settings.api_worker_processes,
    )


@dataclasses.dataclass(frozen=True)
class _Job:
    load: PhotoLoader
    top_k: int
    future: Future[Prediction]


def _given(image: Image.Image) -> Image.Image:
    return image


class Places:
    """At most ``capacity`` holders at once (event loop side, so a plain counter)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.taken = 0

    @property
    def full(self) -> bool:
        return self.taken >= self.capacity

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Hold one place until the block ends.

        Raises:
            ServiceBusyError: every place is taken.
        """
        if self.full:
            raise ServiceBusyError(self.capacity)
        self.taken += 1
        try:
            yield
        finally:
            self.taken -= 1


class ModelRunner:
    """Owns the loaded model and the threads that run it: a :class:`Classifier`, or with worker
    processes only its :class:`ModelInfo` (the workers load the network)."""

    def __init__(
        self,
        *,
        workers: int = 1,
        torch_threads: int = 1,
        queue_size: int = 16,
        max_batch: int = MAX_BATCH,
        worker_processes: bool = False,
    ) -> None:
        self.workers = workers
        self.max_batch = max_batch
        self._model_places = Places(workers + queue_size)
        self._fetch_places = Places(queue_size)
        self.worker_processes = worker_processes
        self._torch_threads = torch_threads
        self._pool: WorkerPool | None = None
        self._classifier: Classifier | ModelInfo | None = None
        self._load_error: str | None = None
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        for number in range(workers):
            thread = threading.Thread(
                target=self._work,
                args=(torch_threads,),
                name=f"dishlens-model-{number}",
                daemon=True,
            )
            thread.start()

    # -----------------------------------------------------------------------------------------
    # Loading

    @property
    def ready(self) -> bool:
        return self._classifier is not None

    @property
    def classifier(self) -> Classifier | ModelInfo:
        """The loaded model.

        Raises:
            ModelNotReadyError: it is still loading, or loading failed.
        """
        if self._classifier is not None:
            return self._classifier
        if self._load_error is not None:
            raise ModelNotReadyError(f"The model could not be loaded: {self._load_error}")
        raise ModelNotReadyError()

    def use(self, classifier: Classifier | ModelInfo) -> None:
        """Serve ``classifier`` (already loaded) from now on."""
        self._classifier, self._load_error = classifier, None

    async def load(
        self, loader: Callable[[], Classifier | ModelInfo], uri: str | None = None
    ) -> None:
        """Run ``loader`` on a worker thread, then (with worker processes) start the processes
        on the model at ``uri``; a failure is kept and reported by /readyz."""
        started = time.perf_counter()
        try:
            classifier = await asyncio.to_thread(loader)
            if self.worker_processes:
                await asyncio.to_thread(self._start_processes, uri)
        except DishLensError as error:
            self._load_error = str(error)
            logger.error("model failed to load: %s", error, exc_info=error)
            return
        self.use(classifier)
        seconds = time.perf_counter() - started
        logger.info(
            "API ready model=%s workers=%d processes=%s seconds=%.2f",
            classifier.name,
            self.workers,
            self.worker_processes,
            seconds,
        )

    def _start_processes(self, uri: str | None) -> None:
        self._pool = WorkerPool(uri, processes=self.workers, torch_threads=self._torch_threads)
        self._pool.start()

    # -----------------------------------------------------------------------------------------
    # Admission and prediction (event loop side)

    @property
    def capacity(self) -> int:
        """Requests that may wait for or run on the model at once."""
        return self._model_places.capacity

    @property
    def in_flight(self) -> int:
        return self._model_places.taken

    @property
    def saturated(self) -> bool:
        """Every model place is taken: the next photo would be refused."""
        return self._model_places.full

    def slot(self) -> contextlib.AbstractContextManager[None]:
        """Hold one of the ``capacity`` model places; take it once the photo is in hand.

        Raises:
            ServiceBusyError: every place is taken.
        """
        return self._model_places.hold()

    def fetch_slot(self) -> contextlib.AbstractContextManager[None]:
        """Hold one of the ``queue_size`` places for link downloads.

        Raises:
            ServiceBusyError: every place is taken.
        """
        return self._fetch_places.hold()

    async def predict(self, image: Image.Image, *, top_k: int) -> Prediction:
        """Classify ``image`` on a model thread without blocking the event loop."""
        return await self.predict_from(partial(_given, image), top_k=top_k)

    async def predict_from(self, load: PhotoLoader, *, top_k: int) -> Prediction:
        """Call ``load`` (decode a photo) and classify what it returns, on a model thread (or
        its worker process: ``load`` must then be picklable, e.g. a ``functools.partial``).

        Raises:
            ModelNotReadyError: the model is not loaded.
            Exception: whatever ``load`` raised (an ``IntakeError`` for a bad photo).
        """
        _ = self.classifier  # raises ModelNotReadyError before anything is queued
        job = _Job(load, top_k, Future())
        self._jobs.put(job)
        return await asyncio.wrap_future(job.future)

    def close(self) -> None:
        for _ in range(self.workers):
            self._jobs.put(None)
        if self._pool is not None:
            self._pool.close()

    # -----------------------------------------------------------------------------------------
    # Model threads

    def _work(self, torch_threads: int) -> None:
        torch.set_num_threads(torch_threads)
        while (batch := self._next_batch()) is not None:
            self._run(batch)

    def _next_batch(self) -> list[_Job] | None:
        """The next job plus those already waiting (up to ``max_batch``); None: shut down."""
        first = self._jobs.get()
        if first is None:
            return None
        batch = [first]
        while len(batch) < self.max_batch:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is None:
                self._jobs.put(None)
                break
            batch.append(job)
        return [job for job in batch if job.future.set_running_or_notify_cancel()]

    def _run(self, batch: list[_Job]) -> None:
        loads, top_k = [job.load for job in batch], max(job.top_k for job in batch)
        try:
            if self._pool is not None:
                outcomes = self._pool.run(loads, top_k)
            else:
                # Without worker processes the loader gave the network itself.
                outcomes = run_batch(self.classifier, loads, top_k)  # type: ignore[arg-type]
        except Exception as error:
            outcomes = [error] * len(batch)
        for job, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, Exception):
                job.future.set_exception(outcome)
            else:
                job.future.set_result(dataclasses.replace(outcome, top=outcome.top[: job.top_k]))
