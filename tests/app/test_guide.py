"""The in-app guide quotes the shipped model's measured numbers, not zeros."""

import json

from app_support import guide
from classifier.predictor import DEFAULT_MODEL_DIR


def test_the_guide_quotes_the_real_photo_shares_of_the_shipped_card() -> None:
    card = json.loads((DEFAULT_MODEL_DIR / "card.json").read_text())
    real = card["calibration"]["real_photos"]["check"]
    text = guide(card, 101)
    assert f"About {real['confident']:.0%} of real food photos get this verdict" in text
    assert f"About {real['unsure']:.0%} of real food photos" in text
    assert "About 0% of" not in text
    assert "about 9 times in 10" in text  # confident_precision 0.92
