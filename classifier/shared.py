"""One classifier per process, shared by every caller: the app's launcher loads it before the
web server starts, so that the first visitor finds it ready."""

from __future__ import annotations

import threading

from classifier.predictor import Classifier, load_classifier
from dishlens.settings import Settings

_loaded: dict[tuple[str | None, Settings], Classifier] = {}
_lock = threading.Lock()


def shared_classifier(uri: str | None, settings: Settings) -> Classifier:
    """The classifier for ``uri`` and ``settings``, loaded on the first call in this process
    (one load even when several threads ask at once) and returned as is afterwards.

    Raises:
        ModelArtifactError: the model is missing, corrupt, truncated or inconsistent.
        ModelDownloadError: an S3 model could not be downloaded.
    """
    key = (uri, settings)
    with _lock:
        if key not in _loaded:
            _loaded[key] = load_classifier(uri, settings=settings)
        return _loaded[key]


def forget_shared_classifiers() -> None:
    """Drop every shared classifier (for tests that count model loads)."""
    with _lock:
        _loaded.clear()
