import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from classifier.presets import (
    MEAN,
    STD,
    EvalPreset,
    FixResPreset,
    Shrink,
    TrainPreset,
    centre_square,
    jpeg_round_trip,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_eval_preset_normalises_as_the_weights_expect() -> None:
    preset = EvalPreset(crop_size=224, resize_size=256)
    for value, expected in ((127, 0.0), (255, 1.0), (0, -127 / 128)):
        x = preset(Image.new("RGB", (300, 400), (value,) * 3))
        assert x.shape == (3, 224, 224)
        assert torch.allclose(x, torch.full_like(x, expected))


def test_eval_preset_shrinks_before_resizing() -> None:
    preset = EvalPreset(crop_size=128, resize_size=128, shrink_size=64)
    assert preset(Image.new("RGB", (640, 200), (10, 20, 30))).shape == (3, 128, 128)
    assert preset.pipeline_text().startswith("RGB photo → centre square → 64×64 (bicubic)")


def test_shrink_keeps_the_centre_square_only() -> None:
    photo = Image.new("RGB", (300, 100), (250, 0, 0))  # red edges, a blue centre square
    photo.paste((0, 0, 250), (100, 0, 200, 100))
    small = np.asarray(Shrink(64)(photo), dtype=int)
    assert small.shape == (64, 64, 3)
    assert np.abs(small - (0, 0, 250)).max() < 20  # no red: the edges were cut, not squeezed


def test_shrink_takes_a_photo_already_at_size_as_it_is() -> None:
    photo = Image.effect_noise((64, 64), 60).convert("RGB")
    assert Shrink(64)(photo) is photo


def test_shrink_remakes_the_small_data_sets_photos(food_mnist: Path, food101_64: Path) -> None:
    """The same photo, shrunk from its 224-px copy, matches the data set's own 64-px file."""
    shared = _val_photos_in_both(food_mnist, food101_64)
    wide = [e for e in shared[::10] if _is_wide(food_mnist / "images" / f"{e}.jpg")][:8]
    assert wide
    for entry in wide:
        photo = Image.open(food_mnist / "images" / f"{entry}.jpg").convert("RGB")
        reference = Image.open(food101_64 / "images" / f"{entry}.jpg").convert("RGB")
        squeezed = photo.resize((64, 64), Image.Resampling.BILINEAR)
        assert _psnr(Shrink(64)(photo), reference) > 24
        assert _psnr(Shrink(64)(photo), reference) > _psnr(squeezed, reference) + 3


def test_shrink_resamples_as_the_small_data_set_was_made(
    food_mnist: Path, food101_64: Path
) -> None:
    """Bicubic, not bilinear: measured on photos in both data sets (37.4 vs 32.3 dB on 300)."""
    ours, bilinear = [], []
    for entry in _val_photos_in_both(food_mnist, food101_64)[::25]:
        photo = Image.open(food_mnist / "images" / f"{entry}.jpg").convert("RGB")
        reference = Image.open(food101_64 / "images" / f"{entry}.jpg").convert("RGB")
        small = centre_square(photo).resize((64, 64), Image.Resampling.BILINEAR)
        ours.append(_psnr(Shrink(64)(photo), reference))
        bilinear.append(_psnr(jpeg_round_trip(small, Shrink.JPEG_QUALITY), reference))
    assert len(ours) >= 15
    assert np.mean(ours) > np.mean(bilinear) + 3


def _val_photos_in_both(food_mnist: Path, food101_64: Path) -> list[str]:
    small_set = set((food101_64 / "meta" / "val.txt").read_text().split())
    return [e for e in (food_mnist / "meta" / "val.txt").read_text().split() if e in small_set]


def _is_wide(path: Path) -> bool:
    with Image.open(path) as image:
        return image.width > 1.2 * image.height or image.height > 1.2 * image.width


def _psnr(a: Image.Image, b: Image.Image) -> float:
    error = np.mean((np.asarray(a, dtype=float) - np.asarray(b, dtype=float)) ** 2)
    return float(10 * np.log10(255**2 / error))


def test_eval_preset_from_card() -> None:
    card = {"preprocessing": {"resize_size": 160, "crop_size": 144, "shrink_size": None}}
    assert EvalPreset.from_card(card)(Image.new("RGB", (500, 300))).shape == (3, 144, 144)


def test_an_older_cards_squeeze_size_still_shrinks() -> None:
    card = {"preprocessing": {"resize_size": 112, "crop_size": 112, "squeeze_size": 64}}
    assert EvalPreset.from_card(card).shrink.size == 64


def test_train_preset_makes_random_crops_of_the_right_size() -> None:
    torch.manual_seed(0)
    image = Image.effect_noise((300, 260), 60).convert("RGB")
    preset = TrainPreset(crop_size=96)
    first, second = preset(image), preset(image)
    assert first.shape == second.shape == (3, 96, 96)
    assert not torch.equal(first, second)


def test_fix_res_preset_is_the_eval_pipeline_or_its_mirror_image() -> None:
    torch.manual_seed(0)
    image = Image.effect_noise((300, 260), 60).convert("RGB")
    eval_preset = EvalPreset(crop_size=112, resize_size=128, shrink_size=64)
    expected = eval_preset(image)
    seen = {"plain": 0, "mirrored": 0}
    for _ in range(40):
        got = FixResPreset(eval_preset)(image)
        if torch.equal(got, expected):
            seen["plain"] += 1
        else:
            assert torch.equal(got, expected.flip(2))
            seen["mirrored"] += 1
    assert seen["plain"] > 5 and seen["mirrored"] > 5


def torchvision_eval_pipeline(crop_size: int, resize_size: int):
    from torchvision.transforms import v2

    return v2.Compose(
        [
            v2.Resize(resize_size, antialias=True),
            v2.CenterCrop(crop_size),
            v2.PILToTensor(),
            v2.ToDtype(torch.float32, scale=False),
            v2.Normalize(mean=MEAN, std=STD),
        ]
    )


@pytest.mark.parametrize(
    ("size", "crop_size", "resize_size"),
    [
        ((512, 384), 256, 288),  # landscape
        ((383, 512), 256, 288),  # portrait, odd width
        ((288, 301), 256, 288),  # shorter side already the resize size
        ((97, 64), 112, 112),  # upsampled
        ((160, 160), 160, 160),  # nothing to do
        ((1001, 333), 160, 160),  # odd margins round like v2.CenterCrop's
    ],
)
def test_eval_preset_matches_torchvision_v2_bit_for_bit(
    size: tuple[int, int], crop_size: int, resize_size: int
) -> None:
    image = Image.effect_noise(size, 80).convert("RGB")
    ours = EvalPreset(crop_size=crop_size, resize_size=resize_size)(image)
    theirs = torchvision_eval_pipeline(crop_size, resize_size)(image)
    assert ours.dtype == theirs.dtype == torch.float32
    assert torch.equal(ours, theirs)


def test_eval_preset_refuses_a_crop_larger_than_the_resize() -> None:
    with pytest.raises(ValueError, match="crop_size 256 is larger than resize_size 224"):
        EvalPreset(crop_size=256, resize_size=224)


def test_classifying_a_photo_never_imports_torchvision() -> None:
    # torchvision's import pulls in torch._dynamo and SymPy (~170 MB); inference must not.
    script = (
        "import sys; from PIL import Image; "
        "import api.main, classifier, dishlens.feedback, intake, llm_client; "
        "classifier.load_classifier().predict(Image.new('RGB', (300, 200))); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torchvision', 'sympy')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT, check=True
    )
    assert result.stdout.strip() == "[]"
