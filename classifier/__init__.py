"""Name the dish in a photo: ``load_classifier().predict(image)``."""

from classifier.errors import (
    ChecksumMismatchError,
    ClassifierError,
    LabelMismatchError,
    ModelArtifactError,
    ModelDownloadError,
    ModelNotFoundError,
)
from classifier.predictor import (
    Classifier,
    DishScore,
    ModelInfo,
    Prediction,
    load_classifier,
    load_model_info,
)
from classifier.shared import shared_classifier

__all__ = [
    "ChecksumMismatchError",
    "Classifier",
    "ClassifierError",
    "DishScore",
    "LabelMismatchError",
    "ModelArtifactError",
    "ModelDownloadError",
    "ModelInfo",
    "ModelNotFoundError",
    "Prediction",
    "load_classifier",
    "load_model_info",
    "shared_classifier",
]
