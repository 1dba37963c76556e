"""The model runner: bounded places, not-ready and load-failure states."""

from __future__ import annotations

import asyncio

import pytest
from PIL import Image

from api.errors import ModelNotReadyError, ServiceBusyError
from api.runner import ModelRunner
from classifier import Classifier, ModelArtifactError


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
