import torch
from PIL import Image

from classifier.presets import EvalPreset, TrainPreset


def test_eval_preset_normalises_as_the_weights_expect() -> None:
    preset = EvalPreset(crop_size=224, resize_size=256)
    for value, expected in ((127, 0.0), (255, 1.0), (0, -127 / 128)):
        x = preset(Image.new("RGB", (300, 400), (value,) * 3))
        assert x.shape == (3, 224, 224)
        assert torch.allclose(x, torch.full_like(x, expected))


def test_eval_preset_squeezes_before_resizing() -> None:
    preset = EvalPreset(crop_size=128, resize_size=128, squeeze_size=64)
    assert preset(Image.new("RGB", (640, 200), (10, 20, 30))).shape == (3, 128, 128)


def test_eval_preset_from_card() -> None:
    card = {"preprocessing": {"resize_size": 160, "crop_size": 144, "squeeze_size": None}}
    assert EvalPreset.from_card(card)(Image.new("RGB", (500, 300))).shape == (3, 144, 144)


def test_train_preset_makes_random_crops_of_the_right_size() -> None:
    torch.manual_seed(0)
    image = Image.effect_noise((300, 260), 60).convert("RGB")
    preset = TrainPreset(crop_size=96)
    first, second = preset(image), preset(image)
    assert first.shape == second.shape == (3, 96, 96)
    assert not torch.equal(first, second)
