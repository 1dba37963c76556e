"""Name the dish in a photo: ``load_classifier().predict(image)``."""

from classifier.errors import (
    ChecksumMismatchError,
    ClassifierError,
    LabelMismatchError,
    ModelArtifactError,
    ModelDownloadError,
    ModelNotFoundError,
)
from classifier.predictor import Classifier, DishScore, Prediction, load_classifier

__all__ = [
    "ChecksumMismatchError",
    "Classifier",
    "ClassifierError",
    "DishScore",
    "LabelMismatchError",
    "ModelArtifactError",
    "ModelDownloadError",
    "ModelNotFoundError",
    "Prediction",
    "load_classifier",
]
