"""The model runner: bounded places, threads, micro-batches, not-ready and load failures."""

from __future__ import annotations

import asyncio
import threading

import pytest
import torch
from PIL import Image

from api.errors import ModelNotReadyError, ServiceBusyError
from api.runner import ModelRunner, cores_available, runner_for
from classifier import Classifier, ModelArtifactError
from dishlens.settings import Settings
from intake.errors import CorruptImageError


def test_slot_refuses_beyond_capacity() -> None:
    runner = ModelRunner(workers=1, queue_size=2)
    with runner.slot(), runner.slot(), runner.slot():
        assert runner.in_flight == 3
        with pytest.raises(ServiceBusyError), runner.slot():
            pass
    assert runner.in_flight == 0
    runner.close()


def test_slot_is_released_on_error() -> None:
    runner = ModelRunner(queue_size=0)
    with pytest.raises(ValueError), runner.slot():
        raise ValueError
    assert runner.in_flight == 0
    runner.close()


def test_classifier_before_load_is_not_ready() -> None:
    runner = ModelRunner()
    with pytest.raises(ModelNotReadyError, match="still loading"):
        _ = runner.classifier
    runner.close()


def test_failed_load_is_kept_and_reported() -> None:
    runner = ModelRunner()

    def broken() -> Classifier:
        raise ModelArtifactError("The card.json is not valid JSON.", "card.json")

    asyncio.run(runner.load(broken))

    assert not runner.ready
    with pytest.raises(ModelNotReadyError, match=r"could not be loaded: The card\.json"):
        _ = runner.classifier
    runner.close()


def test_predict_runs_off_the_event_loop(classifier: Classifier) -> None:
    runner = ModelRunner()
    runner.use(classifier)
    image = Image.new("RGB", (256, 256), (200, 160, 90))

    async def predict_twice():
        return await asyncio.gather(*(runner.predict(image, top_k=2) for _ in range(2)))

    first, second = asyncio.run(predict_twice())

    assert len(first.top) == 2
    assert [d.label for d in first.top] == [d.label for d in second.top]
    runner.close()


class RecordingClassifier:
    """The real model; records batch sizes, and holds the first batch until ``gate`` opens."""

    def __init__(self, inner: Classifier) -> None:
        self.inner, self.gate, self.sizes = inner, threading.Event(), []
        self.started = threading.Event()
        self.card, self.name, self.labels = inner.card, inner.name, inner.labels

    def predict_batch(self, images: list[Image.Image], top_k: int = 3):
        self.started.set()
        assert self.gate.wait(timeout=30)
        self.sizes.append(len(images))
        return self.inner.predict_batch(images, top_k)


def photos(count: int) -> list[Image.Image]:
    return [Image.new("RGB", (240, 240), (40 * i, 200 - 30 * i, 90)) for i in range(count)]


def test_waiting_requests_are_batched_and_answered_as_if_alone(classifier: Classifier) -> None:
    recording = RecordingClassifier(classifier)
    runner = ModelRunner(workers=1, max_batch=4)
    runner.use(recording)
    images = photos(4)
    expected = [classifier.predict(image, top_k=k + 1) for k, image in enumerate(images)]

    async def predict_all():
        first = asyncio.create_task(runner.predict(images[0], top_k=1))
        await asyncio.to_thread(recording.started.wait, 10)
        rest = [runner.predict(image, top_k=k + 2) for k, image in enumerate(images[1:])]
        recording.gate.set()
        return [await first, *await asyncio.gather(*rest)]

    answers = asyncio.run(predict_all())
    runner.close()

    assert recording.sizes == [1, 3]
    assert [len(a.top) for a in answers] == [1, 2, 3, 4]
    assert [[d.label for d in a.top] for a in answers] == [
        [d.label for d in e.top] for e in expected
    ]


def test_a_bad_photo_fails_only_its_own_request(classifier: Classifier) -> None:
    runner = ModelRunner(workers=1, max_batch=4)
    runner.use(classifier)
    good = photos(2)

    def broken() -> Image.Image:
        raise CorruptImageError("x.jpg")

    async def predict_all():
        return await asyncio.gather(
            runner.predict(good[0], top_k=3),
            runner.predict_from(broken, top_k=3),
            runner.predict(good[1], top_k=3),
            return_exceptions=True,
        )

    first, failed, last = asyncio.run(predict_all())
    runner.close()

    assert isinstance(failed, CorruptImageError)
    assert len(first.top) == 3 and len(last.top) == 3


def test_one_single_threaded_model_thread_per_core() -> None:
    main_threads = torch.get_num_threads()
    runner = runner_for(Settings(api_queue_size=5))
    seen: list[int] = []

    class ThreadCounting:
        def predict_batch(self, images, top_k=3):
            seen.append(torch.get_num_threads())
            raise RuntimeError("enough")

    runner.use(ThreadCounting())  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        asyncio.run(runner.predict(photos(1)[0], top_k=1))
    runner.close()

    assert runner.workers == cores_available()
    assert runner.capacity == cores_available() + 5
    assert seen == [1]
    assert torch.get_num_threads() == main_threads


def test_torch_threads_setting_gives_fewer_wider_threads() -> None:
    runner = runner_for(Settings(torch_threads=2))
    assert runner.workers == max(1, cores_available() // 2)
    runner.close()
