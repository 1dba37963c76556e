"""The figures ``classifier.evaluate`` writes beside its numbers (PNG, Matplotlib's Agg)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from classifier.metrics import reliability_bins

STATUSES = ("confident", "unsure", "not_food")
STATUS_COLOURS = {"confident": "tab:green", "unsure": "tab:orange", "not_food": "tab:grey"}


@contextmanager
def figure(path: Path, *, size: tuple[float, float] = (6.4, 4.4), columns: int = 1) -> Iterator:
    """Yield the axes of a new figure; save it to ``path`` and close it afterwards."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, columns, figsize=size)
    try:
        yield axes
        fig.tight_layout()
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)


def save_reliability(
    before: torch.Tensor, after: torch.Tensor, targets: torch.Tensor, path: Path, title: str
) -> None:
    """Accuracy against confidence, before and after temperature scaling."""
    with figure(path, size=(9.0, 4.2), columns=2) as axes:
        for ax, probs, name in zip(axes, (before, after), ("before", "after"), strict=True):
            rows = reliability_bins(probs, targets, bins=10)
            ax.plot([0, 1], [0, 1], color="lightgrey", linestyle="--", label="perfect")
            ax.plot([r[0] for r in rows], [r[1] for r in rows], marker="o", label="measured")
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            ax.set_xlabel("top probability")
            ax.set_ylabel("share right")
            ax.set_title(f"{title}: {name} temperature")
            ax.legend(loc="upper left")


def coverage_curve(
    probs: torch.Tensor, targets: torch.Tensor, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each threshold: the share of photos at or above it, and their accuracy."""
    confidence, predicted = probs.max(1)
    correct = predicted.eq(targets)
    coverage, accuracy = [], []
    for threshold in thresholds:
        kept = confidence >= float(threshold)
        coverage.append(kept.float().mean().item())
        accuracy.append(correct[kept].float().mean().item() if kept.any() else float("nan"))
    return np.array(coverage), np.array(accuracy)


def save_coverage(
    probs: torch.Tensor, targets: torch.Tensor, chosen: float, path: Path, title: str
) -> None:
    """Accuracy among confident answers and the share answered confidently, against the unsure
    threshold; the model's threshold is marked."""
    thresholds = np.linspace(0.05, 0.99, 60)
    coverage, accuracy = coverage_curve(probs, targets, thresholds)
    with figure(path) as ax:
        ax.plot(thresholds, accuracy, label="accuracy among confident")
        ax.plot(thresholds, coverage, label="share answered confidently")
        ax.axvline(chosen, color="black", linestyle=":", label=f"threshold {chosen:.2f}")
        ax.set_xlabel("unsure threshold (top probability)")
        ax.set_ylim(0, 1)
        ax.set_title(title)
        ax.legend(loc="lower left")


def save_statuses(rates: dict[str, dict[str, float]], path: Path) -> None:
    """One stacked bar per photo set: the share of each status."""
    with figure(path, size=(6.4, 3.2)) as ax:
        names = list(rates)
        left = np.zeros(len(names))
        for status in STATUSES:
            shares = np.array([rates[name].get(status, 0.0) for name in names])
            ax.barh(names, shares, left=left, color=STATUS_COLOURS[status], label=status)
            for row, (start, share) in enumerate(zip(left, shares, strict=True)):
                if share >= 0.06:
                    ax.text(start + share / 2, row, f"{share:.0%}", ha="center", va="center")
            left += shares
        ax.set_xlim(0, 1)
        ax.set_xlabel("share of photos")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=3)


def most_confused(matrix: torch.Tensor, labels: list[str], count: int = 10) -> list[dict[str, Any]]:
    """The ``count`` largest off-diagonal cells: which dish is taken for which, how often."""
    off = matrix.clone()
    off.fill_diagonal_(0)
    values, flat = off.flatten().topk(min(count, off.numel()))
    size = len(labels)
    return [
        {"true": labels[i // size], "predicted": labels[i % size], "photos": int(v)}
        for v, i in zip(values.tolist(), flat.tolist(), strict=True)
        if v > 0
    ]


def save_confused_pairs(pairs: list[dict[str, Any]], path: Path, title: str) -> None:
    with figure(path, size=(6.4, 0.4 * max(len(pairs), 3) + 1)) as ax:
        names = [f"{p['true']} → {p['predicted']}" for p in pairs][::-1]
        ax.barh(names, [p["photos"] for p in pairs][::-1], color="tab:red")
        ax.set_xlabel("photos")
        ax.set_title(title)


def save_confusion(matrix: torch.Tensor, labels: list[str], path: Path) -> None:
    """The confusion matrix, each row normalised; counts written in when there are few dishes."""
    size = max(6.0, len(labels) * 0.5)
    with figure(path, size=(size, size)) as ax:
        normalised = matrix.float() / matrix.sum(1, keepdim=True).clamp(min=1)
        ax.imshow(normalised.numpy(), cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        if len(labels) <= 20:
            for (row, col), value in np.ndenumerate(matrix.numpy()):
                if value:
                    ax.text(col, row, str(value), ha="center", va="center", fontsize=7)
