"""Request (``…Create``) and response (``…Public``) bodies of the JSON API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from classifier import Classifier, ModelInfo, Prediction

MAX_URL_LENGTH = 2048


class ClassifyUrlCreate(BaseModel):
    """Classify the photo behind a link (``application/json`` body of ``POST /v1/classify``)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=1,
        max_length=MAX_URL_LENGTH,
        description="An http(s) link to a photo; private and loopback addresses are refused.",
        examples=["https://example.com/pizza.jpg"],
    )


class DishScorePublic(BaseModel):
    label: str = Field(description="Machine label, e.g. `apple_pie`.")
    display_name: str = Field(description="Human name, e.g. `Apple pie`.")
    probability: float = Field(ge=0.0, le=1.0)


class ClassificationPublic(BaseModel):
    """What the model says about one photo."""

    status: Literal["confident", "unsure", "not_food"] = Field(
        description="`unsure`: the top probability is low; `not_food`: the photo looks unlike "
        "any dish the model knows."
    )
    top: list[DishScorePublic] = Field(description="Most likely dishes, most likely first.")
    ood_score: float = Field(
        description="Feature distance to the nearest dish the model knows (Mahalanobis), for "
        "inspection: it does not decide the status."
    )
    food_score: float | None = Field(
        default=None,
        description="The not-food detector's score, 0-1, higher is more like food; below the "
        "model's threshold the status is `not_food` (null when the model has no food gate).",
    )
    model_name: str
    model_version: str
    server_ms: float = Field(ge=0.0, description="Time spent in the server, in milliseconds.")

    @classmethod
    def from_prediction(
        cls, prediction: Prediction, classifier: Classifier | ModelInfo, *, server_ms: float
    ) -> ClassificationPublic:
        return cls(
            status=prediction.status,
            top=[
                DishScorePublic(
                    label=s.label,
                    display_name=s.display_name,
                    probability=min(max(s.probability, 0.0), 1.0),
                )
                for s in prediction.top
            ],
            ood_score=prediction.ood_score,
            food_score=prediction.food_score,
            model_name=str(classifier.card["name"]),
            model_version=str(classifier.card["version"]),
            server_ms=server_ms,
        )


class ModelCardPublic(BaseModel):
    """The loaded model's card; fields beyond these are passed through as they are."""

    model_config = ConfigDict(extra="allow")

    name: str
    version: str
    architecture: str
    num_classes: int
    metrics: dict[str, Any] = Field(default_factory=dict)


class LabelPublic(BaseModel):
    label: str
    display_name: str


class LabelsPublic(BaseModel):
    count: int
    labels: list[LabelPublic] = Field(description="In the model's output order.")


class HealthPublic(BaseModel):
    status: Literal["ok"] = "ok"


class ReadinessPublic(BaseModel):
    status: Literal["ready"] = "ready"
    model: str = Field(description="`name@version` of the loaded model.")


class ProblemPublic(BaseModel):
    """An RFC 9457 problem detail (``application/problem+json``)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="A URI naming the kind of problem.")
    title: str
    status: int
    detail: str = Field(description="A sentence the user can act on.")
    instance: str | None = None
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="Field-level validation errors (422 only)."
    )
