"""The three CLIs on a tiny subset of the real photos (a few per dish, one epoch)."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from classifier import calibrate, evaluate, predict, train
from classifier.artifact import ARTIFACT_FILES, load_artifact
from classifier.food_gate import FOOD_SCORE_FEATURES
from classifier.nonfood import nonfood_images
from classifier.predictor import load_classifier
from dishlens.feedback import NOT_FOOD, FeedbackRecord, FeedbackStore

pytestmark = pytest.mark.needs_data


def train_args(data: Path, out: Path, *extra: str):
    return train.get_args_parser().parse_args(
        [
            "--data",
            str(data),
            "--out",
            str(out),
            "--epochs",
            "1",
            "--limit-per-class",
            "2",
            "--batch-size",
            "8",
            "--workers",
            "0",
            "--name",
            "tiny",
            *extra,
        ]
    )


@pytest.fixture(scope="module")
def tiny_model(food_mnist: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("train") / "tiny"
    train.main(train_args(food_mnist, out))
    return out


def test_train_writes_a_complete_artifact(tiny_model: Path) -> None:
    for name in (*ARTIFACT_FILES, "checkpoint.pt"):
        assert (tiny_model / name).is_file()
    card = json.loads((tiny_model / "card.json").read_text())
    assert card["architecture"] == "efficientnet-lite0"
    assert card["num_classes"] == 10
    assert card["training"]["images"] == 20
    assert set(card["metrics"]["per_class_accuracy"]) == set(
        json.loads((tiny_model / "labels.json").read_text())
    )
    assert set(card["thresholds"]) == {"unsure_probability", "min_food_score"}
    assert card["food_gate"]["food_classes"] and card["food_gate"]["input_size"] == 160
    assert card["food_gate"]["score"]["features"] == list(FOOD_SCORE_FEATURES)
    assert card["preprocessing"]["normalisation"].startswith("(x - 127) / 128")
    assert len(card["weights_sha256"]) == 64


def test_train_is_deterministic(food_mnist: Path, tiny_model: Path, tmp_path) -> None:
    again = tmp_path / "again"
    train.main(train_args(food_mnist, again))
    first, second = (
        load_file(tiny_model / "model.safetensors"),
        load_file(again / "model.safetensors"),
    )
    assert all((first[k] == second[k]).all() for k in first)


def test_an_interrupted_run_resumes_exactly(food_mnist: Path, tmp_path, monkeypatch) -> None:
    straight = tmp_path / "straight"
    train.main(train_args(food_mnist, straight, "--epochs", "2", "--limit-per-class", "1"))

    interrupted = tmp_path / "interrupted"
    real_epoch, calls = train.train_one_epoch, []

    def stop_in_second_epoch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(train, "train_one_epoch", stop_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        train.main(train_args(food_mnist, interrupted, "--epochs", "2", "--limit-per-class", "1"))
    monkeypatch.setattr(train, "train_one_epoch", real_epoch)
    train.main(
        train_args(food_mnist, interrupted, "--epochs", "2", "--limit-per-class", "1", "--resume")
    )
    expected = load_file(straight / "model.safetensors")
    resumed = load_file(interrupted / "model.safetensors")
    assert all(torch.equal(expected[k], resumed[k]) for k in expected)

    with pytest.raises(SystemExit, match="--resume finishes that run"):
        train.main(train_args(food_mnist, interrupted, "--epochs", "3", "--resume"))


def calibrate_args(model: Path, data: Path, out: Path, *extra: str):
    return calibrate.get_args_parser().parse_args(
        ["--model", str(model), "--data", str(data), "--out", str(out), *extra]
    )


def test_calibrate_rewrites_an_artifact_that_still_loads(food_mnist, tiny_model, tmp_path) -> None:
    out = tmp_path / "recalibrated"
    options = ("--limit-per-class", "2", "--food-refusal-rate", "0.2")
    card = calibrate.main(calibrate_args(tiny_model, food_mnist, out, *options))
    before = json.loads((tiny_model / "card.json").read_text())
    assert card["training"] == before["training"] and card["name"] == "tiny"
    assert card["calibration"]["options"]["food_refusal_rate"] == 0.2
    assert set(card["thresholds"]) == {"unsure_probability", "min_food_score"}
    real = card["calibration"]["real_photos"]
    assert real["fit"]["images"] == real["check"]["images"] == 10
    assert 0.0 < real["fit"]["not_food"] <= 0.3
    model = load_classifier(str(out))
    statuses = [p.status for p in model.predict_batch([i.image for i in nonfood_images()])]
    assert statuses.count("not_food") >= len(statuses) // 2

    # Calibrating again without the options keeps the card's policy, not the defaults;
    # averaging a model with a copy of itself leaves its weights as they were; photos people
    # called not food join the non-food set.
    store = FeedbackStore(str(tmp_path / "feedback"))
    for item in nonfood_images()[:2]:
        store.save(item.image, FeedbackRecord("apple_pie", 0.5, "unsure", False, NOT_FOOD))
    again = calibrate.main(
        calibrate_args(
            out,
            food_mnist,
            tmp_path / "again",
            "--limit-per-class",
            "2",
            "--average-with",
            str(out),
            "--version",
            "2.1",
            "--non-food-feedback",
            str(tmp_path / "feedback"),
        )
    )
    set_by = again["calibration"]["set_by"]["food_score and min_food_score"]
    assert "and 2 photos people called not food" in set_by
    assert again["calibration"]["options"] == card["calibration"]["options"]
    assert load_classifier(str(tmp_path / "again")).card["version"] == "2.1"
    assert len(again["training"]["averaged_weights_of"]) == 2
    weights = [load_artifact(d)[0].state_dict() for d in (out, tmp_path / "again")]
    assert all(weights[0][k].equal(weights[1][k]) for k in weights[0])


def test_evaluate_reports_metrics_confusion_and_non_food(food_mnist, tiny_model, tmp_path) -> None:
    args = evaluate.get_args_parser().parse_args(
        [
            "--model",
            str(tiny_model),
            "--data",
            str(food_mnist),
            "--limit-per-class",
            "2",
            "--out",
            str(tmp_path),
        ]
    )
    report = evaluate.main(args)
    assert report["images"] == 20
    assert 0.0 <= report["top1"] <= report["top3"] <= 1.0
    assert len(report["per_class_accuracy"]) == 10
    assert report["non_food"]["images"] >= 60
    assert sum(report["non_food"][s] for s in ("confident", "unsure", "not_food")) == pytest.approx(
        1
    )
    assert report["most_confused"] and all(
        p["true"] != p["predicted"] for p in report["most_confused"]
    )
    for figure in ("confusion", "reliability", "coverage", "statuses", "confused-pairs"):
        assert (tmp_path / f"{figure}.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "metrics.json").read_text())["split"] == "val"


def test_predict_reports_a_bad_file_and_carries_on(
    food_mnist, tiny_model, tmp_path, capsys
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, path in enumerate(sorted((food_mnist / "images" / "baklava").glob("*.jpg"))[:2]):
        shutil.copy(path, folder / f"{i}.jpg")
    (folder / "1-broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a whole JPEG")
    args = predict.get_args_parser().parse_args(
        [str(folder), "--model", str(tiny_model), "--quiet"]
    )
    assert predict.main(args) == 1
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [Path(line["input"]).name for line in lines] == ["0.jpg", "1-broken.jpg", "1.jpg"]
    assert "error" in lines[1] and "error" not in lines[0] and "error" not in lines[2]
    assert lines[0]["status"] in {"confident", "unsure", "not_food"}
    assert len(lines[0]["top"]) == 3


def test_predict_writes_csv(food_mnist, tiny_model, tmp_path) -> None:
    photo = next((food_mnist / "images" / "bibimbap").glob("*.jpg"))
    out = tmp_path / "out.csv"
    args = predict.get_args_parser().parse_args(
        [str(photo), "--model", str(tiny_model), "--format", "csv", "--output", str(out), "--quiet"]
    )
    assert predict.main(args) == 0
    header, row = out.read_text().splitlines()
    assert header == "input,status,label,display_name,probability,error"
    assert row.startswith(str(photo))


def test_train_runs_on_the_101_dish_small_photos(food101_64, tmp_path) -> None:
    out = tmp_path / "food101"
    small = ("--shrink-size", "64", "--train-crop-size", "64", "--val-resize-size", "64")
    args = train_args(food101_64, out, "--limit-per-class", "1", *small, "--val-crop-size", "64")
    card = train.main(args)
    assert card["num_classes"] == 101 and card["training"]["images"] == 101
    assert card["preprocessing"] == {**card["preprocessing"], "shrink_size": 64, "crop_size": 64}
    assert card["preprocessing"]["pipeline"].startswith("RGB photo → centre square → 64×64")
    model = load_classifier(str(out))
    photo = next((food101_64 / "images" / "ramen").glob("*.jpg"))
    with Image.open(photo) as image:
        prediction = model.predict(image.convert("RGB").resize((640, 480)), top_k=5)
    assert len(model.labels) == 101 and len(prediction.top) == 5


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--precision-confidence", "1", "not from 0.5 up to"),
        ("--precision-confidence", "0.3", "not from 0.5 up to"),
        ("--food-refusal-rate", "3", "not between 0 and 1"),
        ("--confident-precision", "-0.1", "not between 0 and 1"),
    ],
)
def test_calibration_policy_out_of_range_is_refused_by_name(
    option: str, value: str, message: str, capsys
) -> None:
    for parser, required in (
        (calibrate.get_args_parser(), ["--model", "m", "--data", "d"]),
        (train.get_args_parser(), ["--data", "d", "--out", "o"]),
    ):
        parser.parse_args(required)
        with pytest.raises(SystemExit):
            parser.parse_args([*required, option, value])
        assert f"argument {option}: {value} is {message}" in capsys.readouterr().err


def test_fix_res_fine_tunes_only_the_top_and_keeps_batchnorm_statistics(
    food_mnist: Path, tiny_model: Path, tmp_path
) -> None:
    out = tmp_path / "fixres"
    args = train_args(
        food_mnist, out, "--init-from", str(tiny_model), "--fix-res", "--frozen-blocks", "15"
    )
    card = train.main(args)
    assert card["training"]["recipe"]["fix_res"] is True
    before, after = (
        load_file(tiny_model / "model.safetensors"),
        load_file(out / "model.safetensors"),
    )
    # The not-food scorer ("ood.") is fitted again on the new features; the network's
    # weights change only where they were trained.
    changed = {
        name
        for name in before
        if not name.startswith("ood.") and not torch.equal(before[name], after[name])
    }
    assert changed and all(
        name.startswith(("backbone._blocks.15.", "backbone._conv_head", "backbone._bn1", "head."))
        for name in changed
    )
    # BatchNorm scales may learn; their running statistics may not.
    assert not any(name.endswith(("running_mean", "running_var")) for name in changed)
    assert any(name.startswith("backbone._bn1.") for name in changed)


def test_mixup_and_cutmix_train_on_mixed_batches(food_mnist: Path, tiny_model: Path, tmp_path):
    out = tmp_path / "mixed"
    card = train.main(train_args(food_mnist, out, "--mixup-alpha", "0.2", "--cutmix-alpha", "1.0"))
    assert card["training"]["recipe"]["mixup_alpha"] == 0.2
    assert card["training"]["recipe"]["cutmix_alpha"] == 1.0
    plain, mixed = load_file(tiny_model / "model.safetensors"), load_file(out / "model.safetensors")
    assert any(not torch.equal(plain[k], mixed[k]) for k in plain if k.startswith("head."))


def test_batch_mixing_gives_soft_targets_that_sum_to_one() -> None:
    args = train.get_args_parser().parse_args(
        ["--data", "d", "--out", "o", "--mixup-alpha", "0.2", "--cutmix-alpha", "1.0"]
    )
    mix = train.batch_mixing(args, num_classes=4)
    torch.manual_seed(0)
    images, targets = mix(torch.rand(6, 3, 16, 16), torch.tensor([0, 1, 2, 3, 0, 1]))
    assert images.shape == (6, 3, 16, 16) and targets.shape == (6, 4)
    assert torch.allclose(targets.sum(1), torch.ones(6))
    args.mixup_alpha = args.cutmix_alpha = 0.0
    assert train.batch_mixing(args, num_classes=4) is None


def test_predict_refuses_an_extreme_aspect_ratio_cleanly(tmp_path, capsys) -> None:
    from tests.intake.photos import png_bomb

    strip = tmp_path / "strip.png"
    strip.write_bytes(png_bomb(1, 100_000))  # a MemoryError in the food gate's resize, before
    args = predict.get_args_parser().parse_args([str(strip), "--quiet"])
    assert predict.main(args) == 1
    (line,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert line["error_type"] == "ImageShapeError" and "1×100000" in line["error"]
