"""What the loaded model is and which dishes it knows."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ClassifierDep
from api.routes.responses import NOT_READY
from api.schemas import LabelPublic, LabelsPublic, ModelCardPublic

router = APIRouter(prefix="/v1", tags=["model"])


@router.get("/model", responses=NOT_READY)
async def read_model(classifier: ClassifierDep) -> ModelCardPublic:
    """The model card: architecture, training data, metrics, thresholds, checksum."""
    return ModelCardPublic.model_validate(classifier.card)


@router.get("/labels", responses=NOT_READY)
async def read_labels(classifier: ClassifierDep) -> LabelsPublic:
    """Every dish the model can name, in its output order."""
    labels = [LabelPublic(label=k, display_name=v) for k, v in classifier.labels.items()]
    return LabelsPublic(count=len(labels), labels=labels)
