"""Model worker processes: the classifier run outside the API's process.

The event loop parses requests in Python while the model runs; on threads of one process both
need the same interpreter lock between PyTorch operations. Measured on 2 cores with
``benchmarks/loadgen.py`` (1,000 photos at concurrency 8): model threads reached 0.71–0.78 of
the classifier's own in-process throughput, one worker process per model thread 0.87–0.91.

Each worker loads the model itself (the API process has already fetched and checked it, so an
``s3://`` model comes from the local cache). Photos travel as their bytes and are decoded in the
worker; errors come back as their own typed exceptions.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import torch
from PIL import Image

from api.errors import ModelNotReadyError, ModelWorkerLostError
from classifier import Classifier, Prediction, load_classifier

PhotoLoader = Callable[[], Image.Image]
Outcome = Prediction | Exception

_worker_classifier: Classifier | None = None  # in a worker process: its own model


def run_batch(classifier: Classifier, loads: list[PhotoLoader], top_k: int) -> list[Outcome]:
    """Decode each photo and classify those that decoded in one batch: a prediction or the
    decoding error for each, in order."""
    outcomes: list[Outcome | None] = []
    images = []
    for load in loads:
        try:
            images.append(load())
            outcomes.append(None)
        except Exception as error:
            outcomes.append(error)
    predictions = iter(classifier.predict_batch(images, top_k=top_k) if images else [])
    return [next(predictions) if outcome is None else outcome for outcome in outcomes]


def _start_worker(uri: str | None, torch_threads: int) -> None:
    global _worker_classifier
    _exit_with_parent()
    torch.set_num_threads(torch_threads)
    _worker_classifier = load_classifier(uri)


def _exit_with_parent() -> None:
    """End this worker when the API process ends, however it ends: uvicorn re-raises SIGTERM
    after its graceful shutdown, and a killed or out-of-memory parent cleans up nothing."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        watch = threading.Thread(target=_exit_after, args=(parent.sentinel,), daemon=True)
        watch.start()


def _exit_after(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(0)


def _worker_model_name() -> str:
    assert _worker_classifier is not None
    return _worker_classifier.name


def _run_in_worker(loads: list[PhotoLoader], top_k: int) -> list[Outcome]:
    assert _worker_classifier is not None
    return run_batch(_worker_classifier, loads, top_k)


class WorkerPool:
    """``processes`` worker processes, each with its own copy of the model at ``uri``."""

    def __init__(self, uri: str | None, *, processes: int, torch_threads: int = 1) -> None:
        self.uri = uri
        self.processes = processes
        self.torch_threads = torch_threads
        self._lock = threading.Lock()
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(self.uri, self.torch_threads),
        )

    def start(self) -> list[str]:
        """Start every worker and wait until each has loaded the model; the name of the model
        each one loaded.

        Raises:
            ModelNotReadyError: a worker could not start or load the model.
        """
        jobs = [self._pool.submit(_worker_model_name) for _ in range(self.processes)]
        try:
            return [job.result() for job in jobs]
        except BrokenProcessPool as error:
            raise ModelNotReadyError(
                "A model worker process could not start or load the model; see the API's log."
            ) from error

    @property
    def pids(self) -> list[int]:
        """Process ids of the running workers."""
        return sorted(getattr(self._pool, "_processes", None) or {})

    def run(self, loads: list[PhotoLoader], top_k: int) -> list[Outcome]:
        """``run_batch`` in a worker.

        Raises:
            ModelWorkerLostError: the worker died; the pool is replaced, so the next call works.
        """
        pool = self._pool
        try:
            return pool.submit(_run_in_worker, loads, top_k).result()
        except BrokenProcessPool as error:
            with self._lock:
                if self._pool is pool:
                    pool.shutdown(wait=False, cancel_futures=True)
                    self._pool = self._new_pool()
            raise ModelWorkerLostError() from error

    def close(self) -> None:
        """Stop the workers (after the batch each is running) and wait until they have."""
        self._pool.shutdown(wait=True, cancel_futures=True)
