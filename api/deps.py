"""Dependencies shared by the routes, as ``Annotated`` aliases.

All are ``async def``: they never block, and FastAPI would run plain ``def`` dependencies on a
worker thread, a thread hop per dependency per request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.runner import ModelRunner
from classifier import Classifier, ModelInfo
from dishlens.settings import Settings


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_runner(request: Request) -> ModelRunner:
    return request.app.state.runner


async def get_classifier(
    runner: Annotated[ModelRunner, Depends(get_runner)],
) -> Classifier | ModelInfo:
    """The loaded model (or its card and labels); 503 (``ModelNotReadyError``) until then."""
    return runner.classifier


SettingsDep = Annotated[Settings, Depends(get_settings)]
RunnerDep = Annotated[ModelRunner, Depends(get_runner)]
ClassifierDep = Annotated[Classifier | ModelInfo, Depends(get_classifier)]
