"""Errors of the classifier package; ``str()`` of each is a user-safe sentence."""

from __future__ import annotations

from collections.abc import Iterable

from dishlens.errors import DishLensError


class ClassifierError(DishLensError):
    """Base class for classifier errors."""


# ---------------------------------------------------------------------------------------------
# MODEL ARTIFACT ERRORS


class ModelArtifactError(ClassifierError, ValueError):
    """A model directory is missing, corrupt or inconsistent; ``path`` names the file."""

    def __init__(self, message: str, path: str) -> None:
        self.path = path
        super().__init__(message)


class ModelNotFoundError(ModelArtifactError, FileNotFoundError):
    """The model directory, or a file it needs, does not exist."""


class ChecksumMismatchError(ModelArtifactError):
    """The weights file does not have the SHA-256 its card records."""


class LabelMismatchError(ModelArtifactError):
    """``labels.json`` does not match the number of outputs the weights have."""


class ModelDownloadError(ClassifierError, OSError):
    """A model could not be downloaded from S3."""


class PublishError(ClassifierError, OSError):
    """The model could not be published: the version exists, or S3 refused the upload."""


class PointerMovedError(PublishError):
    """The production pointer moved between reading it and moving it (another promotion)."""


class EvaluationSetChangedError(PublishError):
    """Production was promoted on another evaluation set, so the two are not comparable."""


class PromotionRefusedError(PublishError):
    """The promotion gate refused a candidate; ``comparison`` is the gate's full record."""

    def __init__(self, message: str, comparison: dict) -> None:
        self.comparison = comparison
        super().__init__(message)


class TrainingJobError(ClassifierError, RuntimeError):
    """A training job on a training service could not start, failed or was stopped;
    ``job`` names it and ``reason`` is the service's own account, when it gave one."""

    def __init__(self, message: str, job: str, reason: str | None = None) -> None:
        self.job = job
        self.reason = reason
        super().__init__(message)


# ---------------------------------------------------------------------------------------------
# INPUT AND OPTION ERRORS


class UnknownArchitectureError(ClassifierError, ValueError):
    """An architecture name that DishLens cannot build."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        super().__init__(f"Unknown architecture {name!r}; choose one of: {', '.join(known)}.")


class InputError(ClassifierError, OSError):
    """A photo named on the command line could not be read."""


class DatasetError(ClassifierError, ValueError):
    """A training or evaluation folder is not in Food-101 layout."""


class DistributedSetupError(ClassifierError, ValueError):
    """A torchrun launch training cannot use: missing or bad rank variables, more processes
    than GPUs, or a global batch the processes cannot share evenly."""


class ClusterConfigError(ClassifierError, ValueError):
    """SageMaker's description of a training cluster (``resourceconfig.json``) is missing,
    unreadable, or does not place this machine in its list of hosts."""
