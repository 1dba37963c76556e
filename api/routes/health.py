"""Liveness and readiness, for load balancers and orchestrators."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ClassifierDep, RunnerDep
from api.errors import ServiceBusyError
from api.routes.responses import NOT_READY, NOT_READY_OR_BUSY
from api.schemas import HealthPublic, ReadinessPublic

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> HealthPublic:
    """The process is up (it may still be loading the model)."""
    return HealthPublic()


@router.get("/startupz", responses=NOT_READY)
async def startupz(classifier: ClassifierDep) -> ReadinessPublic:
    """The model is loaded; 503 until then (and for good when it failed to load).

    This is the load balancer's target health check on ECS. It stays 200 while the server is
    busy: ECS replaces a task that fails its target group's check, so failing it under load
    would kill busy tasks and leave the rest with more work. Busy servers shed load with 503 and
    ``Retry-After`` instead, and the target group routes to the least busy task."""
    return ReadinessPublic(model=classifier.name)


@router.get("/readyz", responses=NOT_READY_OR_BUSY)
async def readyz(classifier: ClassifierDep, runner: RunnerDep) -> ReadinessPublic:
    """The model is loaded and a photo would be accepted now; 503 while loading, and while
    every place for photos is taken, for a balancer that only routes on it (a Kubernetes
    readiness probe, a smoke test); ECS's target group uses ``/startupz``."""
    if runner.saturated:
        raise ServiceBusyError(runner.capacity)
    return ReadinessPublic(model=classifier.name)
