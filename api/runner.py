"""The classifier behind the API: loaded in the background, run off the event loop, bounded.

The model runs on private threads: one per core, each forward pass single-threaded
(``TORCH_THREADS`` per thread if set; PyTorch's thread count is per calling thread, so this
touches no other thread). A model thread takes the next waiting request together with any
others already waiting (up to :data:`MAX_BATCH`) and decodes and classifies them in one
``predict_batch`` call. When more requests were recently in flight at once than the other model
threads are running, it waits up to :data:`BATCH_WAIT` for them to fill its batch: busy clients
send again within milliseconds of an answer, and the bfloat16 network costs 20 ms of a core a
photo alone against 11 in fours. A lone client, or two against two model threads, never waits.
With ``API_WORKER_PROCESSES`` (the default) each model thread hands its batch to a worker
process of its own instead (:mod:`api.workers`).

Both choices were measured on 2 cores through HTTP (``benchmarks/bench_api.py``): one
single-threaded forward per core beats one forward spread over both cores by about 2x, and
grouping what is already waiting into batches of up to 4 adds about a quarter on top. Again
on 2026-11-30, with worker processes (medians of 3 rounds): 56 against 33 photos/s at batch
1, 69 with batches of up to 4 and 78 with up to 2 (rounds spread 56–81, so the default stays).
With the bfloat16 network, batching pays more: 71 photos/s at batch 1, 113 with up to 2, 103
with up to 4 and 100 with up to 8 (rounds 82–134 for 4, so the default stays). Taking only what
was waiting left the batches at 2.4 photos on average under ``benchmarks/loadgen.py``'s 8
clients; waiting to fill them made 3.9 (medians of 3 rounds: 100 against 117 photos/s).

Requests beyond ``workers + queue_size`` in flight are refused with :class:`ServiceBusyError`
(503 with ``Retry-After``) instead of growing an unbounded backlog.
"""

from __future__ import annotations

import asyncio
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
from classifier import Classifier, Prediction
from dishlens.errors import DishLensError
from dishlens.settings import Settings

MAX_BATCH = 4
# Longest a model thread waits for its batch to fill, and the window over which the number of
# requests in flight is remembered (see ModelRunner._batch_target).
BATCH_WAIT = 0.010
PEAK_WINDOW = 1.0
logger = logging.getLogger(__name__)


def cores_available() -> int:
    """CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def runner_for(
    settings: Settings,
    *,
    max_batch: int = MAX_BATCH,
    batch_wait: float = BATCH_WAIT,
    processes: bool = True,
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
        batch_wait=batch_wait,
        worker_processes=processes and settings.api_worker_processes,
    )


@dataclasses.dataclass(frozen=True)
class _Job:
    load: PhotoLoader
    top_k: int
    future: Future[Prediction]


def _given(image: Image.Image) -> Image.Image:
    return image


class ModelRunner:
    """Owns the loaded :class:`Classifier` and the threads that run it."""

    def __init__(
        self,
        *,
        workers: int = 1,
        torch_threads: int = 1,
        queue_size: int = 16,
        max_batch: int = MAX_BATCH,
        batch_wait: float = 0.0,
        worker_processes: bool = False,
    ) -> None:
        self.workers = workers
        self.max_batch = max_batch
        self.batch_wait = batch_wait
        self.capacity = workers + queue_size
        self.in_flight = 0
        self._peaks = (0, 0)  # most requests in flight in the previous and the current window
        self._window_started = time.monotonic()
        self._running = 0  # requests in batches that model threads are running now
        self._running_lock = threading.Lock()
        self.worker_processes = worker_processes
        self._torch_threads = torch_threads
        self._pool: WorkerPool | None = None
        self._classifier: Classifier | None = None
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

    async def load(self, loader: Callable[[], Classifier], uri: str | None = None) -> None:
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

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the ``capacity`` places for the duration of a request.

        Raises:
            ServiceBusyError: every place is taken.
        """
        if self.in_flight >= self.capacity:
            raise ServiceBusyError(self.capacity)
        self.in_flight += 1
        self._note_in_flight()
        try:
            yield
        finally:
            self.in_flight -= 1

    def _note_in_flight(self) -> None:
        now = time.monotonic()
        age = now - self._window_started
        if age > PEAK_WINDOW:
            previous = self._peaks[1] if age <= 2 * PEAK_WINDOW else 0
            self._peaks, self._window_started = (previous, 0), now
        self._peaks = (self._peaks[0], max(self._peaks[1], self.in_flight))

    def recent_peak(self) -> int:
        """The most requests in flight at once over the last one to two ``PEAK_WINDOW``s."""
        age = time.monotonic() - self._window_started
        previous, current = self._peaks
        if age > 2 * PEAK_WINDOW:
            return self.in_flight
        if age > PEAK_WINDOW:
            return max(current, self.in_flight)
        return max(previous, current)

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
            if batch:  # empty when every request in it was cancelled
                self._run(batch)

    def _next_batch(self) -> list[_Job] | None:
        """The next job plus others (up to ``max_batch``); None: shut down.

        Takes what is already waiting, and waits up to ``batch_wait`` for more when the
        requests recently in flight could fill the batch (see :meth:`_batch_target`).
        """
        first = self._jobs.get()
        if first is None:
            return None
        batch = [first]
        target, deadline = self._batch_target(), time.monotonic() + self.batch_wait
        while len(batch) < self.max_batch:
            wait = deadline - time.monotonic() if len(batch) < target else 0.0
            try:
                job = self._jobs.get(timeout=wait) if wait > 0 else self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is None:
                self._jobs.put(None)
                break
            batch.append(job)
        batch = [job for job in batch if job.future.set_running_or_notify_cancel()]
        with self._running_lock:
            self._running += len(batch)
        return batch

    def _batch_target(self) -> int:
        """How many requests a new batch is worth waiting for: those recently in flight at
        once (clients that send again as soon as they are answered come back within a few
        milliseconds) less those in batches already running, at most ``max_batch``. One
        client, or two against two model threads, never waits."""
        return min(self.max_batch, self.recent_peak() - self._running)

    def _run(self, batch: list[_Job]) -> None:
        loads, top_k = [job.load for job in batch], max(job.top_k for job in batch)
        try:
            if self._pool is not None:
                outcomes = self._pool.run(loads, top_k)
            else:
                outcomes = run_batch(self.classifier, loads, top_k)
        except Exception as error:
            outcomes = [error] * len(batch)
        finally:
            with self._running_lock:
                self._running -= len(batch)
        for job, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, Exception):
                job.future.set_exception(outcome)
            else:
                job.future.set_result(dataclasses.replace(outcome, top=outcome.top[: job.top_k]))
