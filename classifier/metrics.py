"""Model-agnostic measurements: top-k accuracy, calibration, temperature, OOD scores."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F


def topk_accuracy(logits: torch.Tensor, targets: torch.Tensor, k: int) -> float:
    k = min(k, logits.shape[1])
    hits = logits.topk(k, dim=1).indices.eq(targets[:, None]).any(dim=1)
    return hits.float().mean().item()


def per_class_accuracy(logits: torch.Tensor, targets: torch.Tensor, n_classes: int) -> list[float]:
    correct = logits.argmax(1).eq(targets)
    return [
        correct[targets == c].float().mean().item() if (targets == c).any() else float("nan")
        for c in range(n_classes)
    ]


def reliability_bins(
    probs: torch.Tensor, targets: torch.Tensor, bins: int = 15
) -> list[tuple[float, float, int]]:
    """``(mean confidence, accuracy, count)`` for each non-empty equal-width confidence bin."""
    confidence, predicted = probs.max(dim=1)
    correct = predicted.eq(targets).float()
    rows = []
    for low, high in itertools.pairwise(torch.linspace(0, 1, bins + 1).tolist()):
        in_bin = (confidence > low) & (confidence <= high)
        if in_bin.any():
            rows.append(
                (confidence[in_bin].mean().item(), correct[in_bin].mean().item(), int(in_bin.sum()))
            )
    return rows


def expected_calibration_error(probs: torch.Tensor, targets: torch.Tensor, bins: int = 15) -> float:
    """ECE with equal-width confidence bins (Guo et al., 2017)."""
    rows = reliability_bins(probs, targets, bins)
    return sum(abs(confidence - accuracy) * count for confidence, accuracy, count in rows) / len(
        targets
    )


def fit_temperature(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """The single temperature that minimises the negative log-likelihood (temperature scaling)."""
    log_t = torch.zeros((), requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), targets)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.exp().item())


def confusion_matrix(logits: torch.Tensor, targets: torch.Tensor, n_classes: int) -> torch.Tensor:
    flat = targets * n_classes + logits.argmax(1)
    return torch.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


class MahalanobisScorer:
    """Feature-space out-of-distribution score (Lee et al., 2018, "A Simple Unified Framework for
    Detecting Out-of-Distribution Samples"): the distance from a photo's pooled features to the
    nearest class mean under one shared covariance, fitted on the training set. Larger means
    less like any dish the model was trained on."""

    def __init__(self, means: torch.Tensor, precision: torch.Tensor) -> None:
        self.means = means.float()
        self.precision = precision.float()
        # A quadratic form only sees the symmetric part; with it, the distance expands to
        # xᵀPx − 2·mᵀPx + mᵀPm, which costs one D×D product a photo instead of one a class.
        self._p = ((self.precision + self.precision.T) / 2).double()
        self._means = self.means.double()
        self._mpm = ((self._means @ self._p) * self._means).sum(1)

    @classmethod
    def fit(
        cls, features: torch.Tensor, targets: torch.Tensor, n_classes: int, shrinkage: float = 0.1
    ) -> MahalanobisScorer:
        features = features.double()
        means = torch.stack([features[targets == c].mean(0) for c in range(n_classes)])
        centred = features - means[targets]
        covariance = centred.T @ centred / len(features)
        # Floor the scale: with one photo a class the covariance is all zeros.
        scale = covariance.diagonal().mean().clamp(min=1e-6)
        covariance = (1 - shrinkage) * covariance + shrinkage * scale * torch.eye(len(covariance))
        return cls(means.float(), torch.linalg.inv(covariance).float())

    def score(self, features: torch.Tensor) -> torch.Tensor:
        x = features.double()
        px = x @ self._p
        distances = (x * px).sum(1, keepdim=True) - 2 * px @ self._means.T + self._mpm
        return distances.min(dim=1).values.float()
