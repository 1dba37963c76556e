"""Liveness and readiness, for load balancers and orchestrators."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ClassifierDep, RunnerDep
from api.errors import ServiceBusyError
from api.routes.responses import NOT_READY_OR_BUSY
from api.schemas import HealthPublic, ReadinessPublic

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> HealthPublic:
    """The process is up (it may still be loading the model)."""
    return HealthPublic()


@router.get("/readyz", responses=NOT_READY_OR_BUSY)
async def readyz(classifier: ClassifierDep, runner: RunnerDep) -> ReadinessPublic:
    """The model is loaded and a photo would be accepted now; 503 while loading, and while
    every place for photos is taken (so a load balancer sends new requests elsewhere)."""
    if runner.saturated:
        raise ServiceBusyError(runner.capacity)
    return ReadinessPublic(model=classifier.name)
