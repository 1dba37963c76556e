"""Request (``…Create``) and response (``…Public``) bodies of the JSON API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from classifier import Classifier, ModelInfo, Prediction
from llm_client.facts import dish_card, scaled_serving

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


class DishFactsPublic(BaseModel):
    """Typical facts of a dish (recipes and portions vary): nutrition for a portion,
    allergens and diet."""

    label: str
    display_name: str
    portion_g: float = Field(description="Grams the nutrition values are for.")
    typical_portion: str = Field(description="A typical portion in words, e.g. `one slice`.")
    typical_portion_g: float
    kcal: float
    protein_g: float
    carbohydrate_g: float
    fat_g: float
    allergens: list[str] = Field(description="Of the EU's 14 major allergens.")
    vegetarian: bool
    vegan: bool
    gluten_free: bool

    @classmethod
    def for_dish(cls, label: str, portion_g: float | None) -> DishFactsPublic | None:
        """The facts of ``label`` for ``portion_g`` grams (default: its typical serving);
        ``None`` when DishLens has no facts card for it."""
        card = dish_card(label)
        if card is None:
            return None
        serving = card["serving"]
        grams = serving["grams"] if portion_g is None else portion_g
        values: dict[str, Any] = {
            "label": label,
            "display_name": card["display_name"],
            "portion_g": grams,
            "typical_portion": card["portion"],
            "typical_portion_g": serving["grams"],
            **{k: v for k, v in scaled_serving(serving, grams).items() if k != "grams"},
            "allergens": card["allergens"],
            **card["diet"],
        }
        return cls(**values)


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
    facts: DishFactsPublic | None = Field(
        default=None,
        description="Typical facts of the top dish (null for `not_food`, or a dish without facts).",
    )
    model_name: str
    model_version: str
    server_ms: float = Field(ge=0.0, description="Time spent in the server, in milliseconds.")

    @classmethod
    def from_prediction(
        cls,
        prediction: Prediction,
        classifier: Classifier | ModelInfo,
        *,
        server_ms: float,
        portion_g: float | None = None,
    ) -> ClassificationPublic:
        facts = None
        if prediction.status != "not_food":
            facts = DishFactsPublic.for_dish(prediction.best.label, portion_g)
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
            facts=facts,
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
