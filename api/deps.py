"""Dependencies shared by the routes, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.runner import ModelRunner
from classifier import Classifier
from dishlens.settings import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_runner(request: Request) -> ModelRunner:
    return request.app.state.runner


def get_classifier(runner: Annotated[ModelRunner, Depends(get_runner)]) -> Classifier:
    """The loaded model; 503 (``ModelNotReadyError``) until it is."""
    return runner.classifier


SettingsDep = Annotated[Settings, Depends(get_settings)]
RunnerDep = Annotated[ModelRunner, Depends(get_runner)]
ClassifierDep = Annotated[Classifier, Depends(get_classifier)]
