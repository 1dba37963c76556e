"""Model worker processes: same answers as in-process, typed errors back, a lost worker replaced."""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.errors import (
    ModelNotReadyError,
    ModelWorkerLostError,
    RequestTooLargeError,
    ServiceBusyError,
)
from api.main import create_app
from api.photos import decode_upload
from api.runner import ModelRunner
from api.workers import WORKER_NICENESS, WorkerPool
from classifier import Classifier, ModelInfo, load_classifier
from dishlens.errors import SettingsError
from dishlens.settings import Settings
from intake.errors import CorruptImageError, TooManyPixelsError, UnsupportedFormatError
from tests.api.conftest import wait_ready

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "error",
    [
        SettingsError("MAX_IMAGE_MB", "lots", "a whole number"),
        CorruptImageError("cut.jpg"),
        TooManyPixelsError(1000, 5000),
        UnsupportedFormatError("PDF", "menu.pdf"),
        RequestTooLargeError(1024),
        ServiceBusyError(4),
        ModelWorkerLostError(),
    ],
    ids=type,
)
def test_typed_errors_survive_pickling_whole(error: Exception) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)


@pytest.fixture(scope="module")
def process_runner():
    """A runner with one worker process on the bundled model."""
    runner = ModelRunner(workers=1, worker_processes=True)
    asyncio.run(runner.load(partial(load_classifier, None, settings=Settings()), None))
    assert runner.ready
    yield runner
    runner.close()


def classify(runner: ModelRunner, data: bytes, name: str = "photo.jpg", top_k: int = 3):
    load = partial(decode_upload, data, name, Settings())
    return asyncio.run(runner.predict_from(load, top_k=top_k))


def test_worker_process_answers_as_the_classifier_in_process(
    process_runner: ModelRunner, classifier: Classifier, jpeg_bytes: bytes
) -> None:
    assert process_runner._pool is not None and len(process_runner._pool.pids) == 1
    assert os.getpid() not in process_runner._pool.pids

    got = classify(process_runner, jpeg_bytes, top_k=2)

    expected = classifier.predict(decode_upload(jpeg_bytes, "photo.jpg", Settings()), top_k=2)
    assert got.status == expected.status
    assert [d.label for d in got.top] == [d.label for d in expected.top]
    assert [d.probability for d in got.top] == pytest.approx(
        [d.probability for d in expected.top], abs=1e-5
    )


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="no process priorities here")
def test_a_worker_runs_at_a_lower_cpu_priority_than_the_api(process_runner: ModelRunner) -> None:
    assert process_runner._pool is not None
    [pid] = process_runner._pool.pids
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    assert os.getpriority(os.PRIO_PROCESS, pid) == min(ours + WORKER_NICENESS, 19)
    assert ours < 19  # (the test would prove nothing at the lowest priority already)


def test_bad_photo_comes_back_as_its_typed_error(
    process_runner: ModelRunner, jpeg_bytes: bytes
) -> None:
    with pytest.raises(CorruptImageError) as caught:
        classify(process_runner, jpeg_bytes[: len(jpeg_bytes) // 3], "cut.jpg")
    assert caught.value.filename == "cut.jpg"
    assert "damaged" in str(caught.value)


def test_a_killed_worker_is_reported_then_replaced(
    process_runner: ModelRunner, jpeg_bytes: bytes
) -> None:
    pool = process_runner._pool
    assert pool is not None
    [pid] = pool.pids
    os.kill(pid, signal.SIGKILL)

    with pytest.raises(ModelWorkerLostError, match="restarting"):
        classify(process_runner, jpeg_bytes)

    assert classify(process_runner, jpeg_bytes).top  # a fresh worker answers
    assert pool.pids and pool.pids != [pid]


KEEP_A_POOL = """
from api.workers import WorkerPool
if __name__ == "__main__":
    pool = WorkerPool(None, processes=1)
    pool.start()
    print(*pool.pids, flush=True)
    input()
"""


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_workers_end_with_a_killed_api_process() -> None:
    api_process = subprocess.Popen(
        [sys.executable, "-c", KEEP_A_POOL],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    [worker] = [int(pid) for pid in api_process.stdout.readline().split()]
    assert running(worker)

    api_process.kill()  # no clean-up runs in the API process
    api_process.wait()

    deadline = time.monotonic() + 10
    while running(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not running(worker)


def test_a_worker_that_cannot_load_the_model_is_not_ready(tmp_path: Path) -> None:
    pool = WorkerPool(str(tmp_path / "no-such-model"), processes=1)
    try:
        with pytest.raises(ModelNotReadyError, match="could not start or load the model"):
            pool.start()
    finally:
        pool.close()


def test_closing_lets_the_running_batch_finish_then_refuses(jpeg_bytes: bytes) -> None:
    pool = WorkerPool(None, processes=1)
    pool.start()
    load = partial(decode_upload, jpeg_bytes, "photo.jpg", Settings())
    with ThreadPoolExecutor(1) as caller:
        running = caller.submit(pool.run, [load] * 4, 3)
        while pool._idle.qsize():  # until the batch is in the worker
            time.sleep(0.001)
        pool.close()
        answers = running.result(timeout=60)

    assert [len(answer.top) for answer in answers] == [3] * 4
    assert pool.pids == []
    with pytest.raises(ModelNotReadyError, match="shutting down"):
        pool.run([load], 3)


def test_with_worker_processes_the_api_process_holds_only_the_card(
    classifier: Classifier, jpeg_bytes: bytes
) -> None:
    app = create_app(Settings(api_worker_processes=True))
    with TestClient(app) as client:
        wait_ready(client, timeout=120)
        served = app.state.runner.classifier
        labels = client.get("/v1/labels").json()["labels"]
        answer = client.post("/v1/classify", files={"photo": ("a.jpg", jpeg_bytes, "image/jpeg")})

    assert isinstance(served, ModelInfo)  # the network lives in the workers only
    assert [item["label"] for item in labels] == list(classifier.labels)
    assert answer.status_code == 200
    assert answer.json()["model_version"] == classifier.card["version"]
