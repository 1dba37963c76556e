import pytest
import torch
import torch.nn.functional as F

from classifier.calibrate import choose_thresholds
from classifier.metrics import (
    MahalanobisScorer,
    confusion_matrix,
    expected_calibration_error,
    fit_temperature,
    topk_accuracy,
)


def test_topk_accuracy() -> None:
    logits = torch.tensor([[3.0, 2.0, 1.0], [1.0, 3.0, 2.0], [1.0, 2.0, 3.0]])
    targets = torch.tensor([0, 2, 0])
    assert topk_accuracy(logits, targets, 1) == pytest.approx(1 / 3)
    assert topk_accuracy(logits, targets, 2) == pytest.approx(2 / 3)
    assert topk_accuracy(logits, targets, 5) == 1.0


def test_ece_is_zero_when_confidence_matches_accuracy() -> None:
    probs = torch.tensor([[0.75, 0.25]] * 4)
    assert expected_calibration_error(probs, torch.tensor([0, 0, 0, 1])) == pytest.approx(0.0)
    assert expected_calibration_error(probs, torch.tensor([1, 1, 1, 1])) == pytest.approx(0.75)


def test_fit_temperature_recovers_the_scale_of_overconfident_logits() -> None:
    torch.manual_seed(0)
    true_logits = torch.randn(4000, 5) * 2
    targets = torch.distributions.Categorical(logits=true_logits).sample()
    fitted = fit_temperature(true_logits * 3, targets)
    assert fitted == pytest.approx(3.0, rel=0.1)
    before = expected_calibration_error(F.softmax(true_logits * 3, 1), targets)
    after = expected_calibration_error(F.softmax(true_logits * 3 / fitted, 1), targets)
    assert after < before / 3


def test_mahalanobis_scores_outliers_higher() -> None:
    torch.manual_seed(0)
    centres = torch.randn(3, 16) * 5
    targets = torch.arange(300) % 3
    features = centres[targets] + torch.randn(300, 16)
    scorer = MahalanobisScorer.fit(features, targets, 3)
    inliers = centres[torch.arange(30) % 3] + torch.randn(30, 16)
    outliers = torch.randn(30, 16) * 5 + 20
    assert scorer.score(inliers).max() < scorer.score(outliers).min()


def test_confusion_matrix_counts() -> None:
    logits = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    matrix = confusion_matrix(logits, torch.tensor([0, 0, 1]), 2)
    assert matrix.tolist() == [[1, 1], [0, 1]]


def test_thresholds_respect_the_flagged_cap() -> None:
    torch.manual_seed(0)
    probs = F.softmax(torch.randn(1000, 10) * 3, 1)
    targets = probs.argmax(1).clone()
    targets[:200] = (targets[:200] + 1) % 10  # 80 % right: precision 0.99 is out of reach
    ood = torch.rand(1000)
    food_mass = torch.rand(1000)
    thresholds = choose_thresholds(
        probs,
        ood,
        food_mass,
        targets,
        not_food_rate=0.02,
        food_gate_rate=0.01,
        confident_precision=0.99,
        max_flagged=0.05,
    )
    far = ood > thresholds["not_food_score"]
    no_food = food_mass < thresholds["min_food_mass"]
    not_food = far | no_food
    unsure = ~not_food & (probs.max(1).values < thresholds["unsure_probability"])
    assert 0.015 <= far.float().mean() <= 0.025
    assert 0.005 <= no_food.float().mean() <= 0.015
    assert (not_food | unsure).float().mean() <= 0.05 + 1e-9
    assert unsure.any()


def test_mahalanobis_expanded_form_matches_the_direct_distance() -> None:
    torch.manual_seed(0)
    features, targets = torch.randn(400, 32), torch.arange(400) % 7
    scorer = MahalanobisScorer.fit(features, targets, 7)
    queries = torch.randn(5, 32) * 2
    diff = (queries[:, None, :] - scorer.means[None]).double()
    direct = torch.einsum("ncd,de,nce->nc", diff, scorer.precision.double(), diff).min(1).values
    assert torch.allclose(scorer.score(queries).double(), direct, rtol=1e-5)


def test_mahalanobis_fits_one_sample_per_class() -> None:
    features = torch.randn(3, 8)
    scorer = MahalanobisScorer.fit(features, torch.arange(3), 3)
    assert torch.isfinite(scorer.score(torch.randn(4, 8))).all()
