import pytest
import torch
import torch.nn.functional as F

from classifier.calibrate import accuracy_lower_bound, choose_unsure_threshold
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


def test_unsure_threshold_respects_the_flagged_cap() -> None:
    torch.manual_seed(0)
    probs = F.softmax(torch.randn(1000, 10) * 3, 1)
    targets = probs.argmax(1).clone()
    targets[:200] = (targets[:200] + 1) % 10  # 80 % right: precision 0.99 is out of reach
    threshold = choose_unsure_threshold(probs, targets, confident_precision=0.99, max_flagged=0.05)
    unsure = probs.max(1).values < threshold
    assert 0.0 < unsure.float().mean() <= 0.05 + 1e-9


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


def test_accuracy_lower_bound_is_the_wilson_score_bound() -> None:
    assert accuracy_lower_bound(90, 100, 0.5) == pytest.approx(0.9)
    # 90 right of 100, one-sided 95 %: the Wilson interval's lower end at z = 1.645.
    assert accuracy_lower_bound(90, 100, 0.95) == pytest.approx(0.8396, abs=1e-4)
    assert accuracy_lower_bound(900, 1000, 0.95) > accuracy_lower_bound(90, 100, 0.95)
    assert accuracy_lower_bound(0, 0, 0.95) == 0.0


def calibrated_answers(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``(probs, targets)`` for two classes where the top probability is the chance of being
    right, spread evenly over 0.5–1."""
    top = 0.5 + 0.5 * torch.rand(n, generator=generator)
    probs = torch.stack([top, 1 - top], 1)
    right = torch.rand(n, generator=generator) < top
    return probs, (~right).long()


def confident_accuracy_on_fresh_photos(
    precision_confidence: float, generator: torch.Generator
) -> float:
    probs, targets = calibrated_answers(1000, generator)
    threshold = choose_unsure_threshold(
        probs,
        targets,
        confident_precision=0.9,
        precision_confidence=precision_confidence,
        max_flagged=1.0,
    )
    fresh_probs, fresh_targets = calibrated_answers(20_000, generator)
    confident = fresh_probs.max(1).values >= threshold
    return fresh_probs[confident].argmax(1).eq(fresh_targets[confident]).float().mean().item()


def test_a_confidence_bound_keeps_the_promise_on_photos_calibration_never_saw() -> None:
    generator = torch.Generator().manual_seed(0)
    misses = {
        level: sum(confident_accuracy_on_fresh_photos(level, generator) < 0.9 for _ in range(20))
        for level in (0.5, 0.95)
    }
    assert misses[0.5] >= 5  # fitted at the edge: about half of the fits fall short
    assert misses[0.95] <= 2
