"""Model worker processes: the classifier run outside the API's process.

The event loop parses requests in Python while the model runs; on threads of one process both
would need the same interpreter lock between PyTorch operations, so each model thread hands its
batch to a worker process of its own, over a pipe of its own (no executor with feeder and
result threads that wait for the web process's lock).

Each worker loads the model itself (the API process has already fetched and checked it, so an
``s3://`` model comes from the local cache). Photos travel as their bytes and are decoded in
the worker; errors come back as their own typed exceptions. A worker ends when the API closes
its pipe, and also when the API process dies however it dies (the pipe then reads as closed).

Workers run at a lower CPU priority than the API process (:data:`WORKER_NICENESS`): under full
load they want every core, and a request, an answer or a load balancer's ``/healthz`` should
get a core at once. The measurements behind these choices are in ``docs/api-load.md``.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import queue
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

import torch
from PIL import Image

from api.errors import ModelNotReadyError, ModelWorkerLostError
from classifier import Classifier, Prediction, load_classifier

PhotoLoader = Callable[[], Image.Image]
# What a batch gives back for each photo: its prediction, or the error that stopped it.
PhotoResult = Prediction | Exception
# How much lower a worker's CPU priority is than the API process's (nice increment, 0-19).
WORKER_NICENESS = 10


def run_batch(classifier: Classifier, loads: list[PhotoLoader], top_k: int) -> list[PhotoResult]:
    """Decode each photo and classify those that decoded in one batch: a prediction or the
    decoding error for each, in order."""
    outcomes: list[PhotoResult | None] = []
    images = []
    for load in loads:
        try:
            images.append(load())
            outcomes.append(None)
        except Exception as error:
            outcomes.append(error)
    predictions = iter(classifier.predict_batch(images, top_k=top_k) if images else [])
    return [next(predictions) if outcome is None else outcome for outcome in outcomes]


_CONTEXT = multiprocessing.get_context("spawn")
_START_FAILED = "A model worker process could not start or load the model; see the API's log."


def _serve(connection: Connection, uri: str | None, torch_threads: int) -> None:
    """A worker process: load the model, say so, then answer ``(loads, top_k)`` requests until
    the API closes the pipe (or ends, however it ends: the pipe closes with it)."""
    lower_priority(WORKER_NICENESS)
    torch.set_num_threads(torch_threads)
    try:
        classifier = load_classifier(uri)
    except Exception:
        logging.getLogger(__name__).exception("model worker could not load the model")
        return
    try:
        connection.send(classifier.name)
        while (request := connection.recv()) is not None:
            try:
                answer: list[PhotoResult] | Exception = run_batch(classifier, *request)
            except Exception as error:  # the batch failed as a whole: the API says so, 503
                answer = error
            connection.send(answer)
    except (EOFError, OSError):
        return  # the API process closed the pipe or ended


def lower_priority(increment: int) -> None:
    """Lower this process's CPU priority by ``increment`` where the system allows it (lowering
    one's own priority needs no privilege; Windows has no ``os.nice``)."""
    if hasattr(os, "nice"):
        with contextlib.suppress(OSError):
            os.nice(increment)


class Worker:
    """One worker process with its own copy of the model at ``uri``, and the pipe to it.

    Used by one model thread at a time.
    """

    def __init__(self, uri: str | None, torch_threads: int = 1) -> None:
        self.uri = uri
        self.torch_threads = torch_threads
        self._process: BaseProcess | None = None
        self._connection: Connection | None = None
        self._closed = False

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> str:
        """Start the process and wait until it has loaded the model; the model's name.

        Raises:
            ModelNotReadyError: the process could not start or load the model.
        """
        ours, theirs = _CONTEXT.Pipe()
        process = _CONTEXT.Process(
            target=_serve,
            args=(theirs, self.uri, self.torch_threads),
            name="dishlens-model-worker",
            daemon=True,
        )
        process.start()
        theirs.close()  # so that the pipe reads as closed once the process ends
        try:
            name = ours.recv()
        except (EOFError, OSError) as error:
            ours.close()
            process.join()
            raise ModelNotReadyError(_START_FAILED) from error
        self._process, self._connection = process, ours
        return name

    def run(self, loads: list[PhotoLoader], top_k: int) -> list[PhotoResult]:
        """``run_batch`` in the process (started again first if it was lost).

        Raises:
            ModelWorkerLostError: the process died; the next call starts a new one.
            ModelNotReadyError: a new process could not load the model.
            Exception: what the batch as a whole failed with in the process.
        """
        if self._closed:
            raise ModelNotReadyError("DishLens is shutting down; try again in a few seconds.")
        if self._connection is None:
            self.start()
        assert self._connection is not None
        try:
            self._connection.send((loads, top_k))
            answer = self._connection.recv()
        except (EOFError, OSError) as error:
            self._stop(wait=0.0)
            raise ModelWorkerLostError() from error
        if isinstance(answer, Exception):
            raise answer
        return answer

    def close(self) -> None:
        """Stop the process after the batch it is running, and wait until it has. Not while
        another thread is in :meth:`run`: they would share the pipe."""
        self._closed = True
        if self._connection is not None:
            with contextlib.suppress(OSError):
                self._connection.send(None)
        self._stop(wait=30.0)

    def kill(self) -> None:
        self._closed = True
        self._stop(wait=0.0)  # a run() in progress gets ModelWorkerLostError

    def _stop(self, wait: float) -> None:
        if self._connection is not None:
            self._connection.close()
        if self._process is not None:
            self._process.join(wait)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()
        self._process = self._connection = None


class WorkerPool:
    """``processes`` worker processes, each with its own copy of the model at ``uri``; each
    batch goes to an idle one over its own pipe (no executor threads in between: every hand-off
    between threads of the API process waits for the interpreter lock)."""

    def __init__(self, uri: str | None, *, processes: int, torch_threads: int = 1) -> None:
        self._workers = [Worker(uri, torch_threads) for _ in range(processes)]
        self._idle: queue.SimpleQueue[Worker] = queue.SimpleQueue()
        for worker in self._workers:
            self._idle.put(worker)

    def start(self) -> list[str]:
        """Start every worker and wait until each has loaded the model; the name of the model
        each one loaded.

        Raises:
            ModelNotReadyError: a worker could not start or load the model.
        """
        return [worker.start() for worker in self._workers]

    @property
    def pids(self) -> list[int]:
        """Process ids of the running workers."""
        return sorted(pid for worker in self._workers if (pid := worker.pid) is not None)

    def run(self, loads: list[PhotoLoader], top_k: int) -> list[PhotoResult]:
        """``run_batch`` in an idle worker.

        Raises:
            ModelWorkerLostError: the worker died; the next call on it starts a new one.
        """
        worker = self._idle.get()
        try:
            return worker.run(loads, top_k)
        finally:
            self._idle.put(worker)

    def close(self, timeout: float = 30.0) -> None:
        """Stop the workers, each once the batch it is running has come back, and wait until
        they have; one still busy after ``timeout`` seconds is killed. Later calls to
        :meth:`run` raise ``ModelNotReadyError``."""
        deadline = time.monotonic() + timeout
        closed = []
        for _ in self._workers:
            try:
                closed.append(self._idle.get(timeout=max(deadline - time.monotonic(), 0.0)))
            except queue.Empty:
                break
            closed[-1].close()
        for worker in self._workers:
            worker.kill()  # does nothing to those closed above
        for worker in closed:
            self._idle.put(worker)  # so that a late run() finds one and is told
