"""The in-app guide quotes the shipped model's measured numbers, not zeros."""

import json

from app_support import guide, promotion_line, trained_on
from classifier.predictor import DEFAULT_MODEL_DIR


def test_the_guide_quotes_the_real_photo_shares_of_the_shipped_card() -> None:
    card = json.loads((DEFAULT_MODEL_DIR / "card.json").read_text())
    real = card["calibration"]["real_photos"]["check"]
    text = guide(card, 101)
    assert f"About {real['confident']:.0%} of real food photos get this verdict" in text
    assert f"About {real['unsure']:.0%} of real food photos" in text
    assert "About 0% of" not in text
    assert "about 9 times in 10" in text  # confident_precision 0.92


def test_the_sidebar_names_each_training_source_without_its_bucket() -> None:
    training = {
        "data": "s3://private-bucket/data/food101-64/",
        "images": 55550,
        "sources": [
            {
                "source": "s3://private-bucket/data/food101-64/",
                "kind": "food-101 layout",
                "weight": 1.0,
                "images": 55550,
            },
            {
                "source": "s3://private-bucket/feedback/",
                "kind": "feedback",
                "weight": 3.0,
                "images": 412,
            },
        ],
    }
    text = trained_on(training)
    assert text == (
        "food101-64 (55,550 photos) + people's answers in feedback (412 photos, each drawn 3× "
        "as often)"
    )
    assert "private-bucket" not in text
    # Cards written before training recorded its sources name the data folder alone.
    assert trained_on({"data": "../shared/data/food101-64", "images": 55550}) == (
        "food101-64 (55,550 photos)"
    )


def test_the_sidebar_says_how_a_promoted_model_passed_the_gate() -> None:
    assert promotion_line(None) == ""
    promotion = {
        "accepted": True,
        "photos": 750,
        "accuracy": 0.612,
        "not_food_share": 0.96,
        "against_production": {"production": "dishlens-food101-lite0@2026-12-04"},
        "compared": "2026-12-05T01:00:00+00:00",
    }
    assert promotion_line(promotion) == (
        "\n- Promoted 2026-12-05 against dishlens-food101-lite0@2026-12-04: right on 61% of "
        "750 held-out photos, 96% of non-food refused"
    )
