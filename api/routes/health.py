"""Liveness and readiness, for load balancers and orchestrators."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ClassifierDep
from api.routes.responses import NOT_READY
from api.schemas import HealthPublic, ReadinessPublic

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> HealthPublic:
    """The process is up (it may still be loading the model)."""
    return HealthPublic()


@router.get("/readyz", responses=NOT_READY)
async def readyz(classifier: ClassifierDep) -> ReadinessPublic:
    """The model is loaded and requests can be classified; 503 until then."""
    return ReadinessPublic(model=classifier.name)
