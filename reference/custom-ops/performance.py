"""Evaluate a classifier from its predictions: confusion matrix, recall and precision per class.

Handed out with the custom-ops assignment; written for this project with the course's interface.
Predictions ``p`` and labels ``y`` are numpy arrays of one-hot rows (``[N, classes]``); a row of
scores also works for ``p``, since only its largest entry counts.

In a confusion matrix ``c``, ``c[i, j]`` counts the samples of true class ``i`` predicted as class
``j``: the diagonal holds the correct predictions, row ``i`` everything that truly is class ``i``,
column ``j`` everything predicted as class ``j``.
"""

from __future__ import annotations

import numpy as np


def confusion_matrix(p, y, normalize=True):
    """The ``[classes, classes]`` confusion matrix; with ``normalize``, each row sums to 1 (the
    share of a true class predicted as each class), else it holds counts."""
    p, y = np.asarray(p), np.asarray(y)
    if p.shape != y.shape or p.ndim != 2:
        raise ValueError(f"predictions {p.shape} and labels {y.shape} must both be [N, classes] one-hot arrays")
    classes = y.shape[1]
    counts = np.zeros((classes, classes), dtype=np.float64)
    np.add.at(counts, (y.argmax(axis=1), p.argmax(axis=1)), 1)
    if not normalize:
        return counts
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def get_recall(c):
    """Recall of every class: correct predictions over the samples truly of that class (rows)."""
    c = np.asarray(c, dtype=np.float64)
    truly = c.sum(axis=1)
    return np.divide(np.diag(c), truly, out=np.zeros(len(c)), where=truly > 0)


def get_precission(c):
    """Precision of every class: correct predictions over the samples predicted as that class
    (columns). The name keeps the course's spelling, which student code calls."""
    c = np.asarray(c, dtype=np.float64)
    predicted = c.sum(axis=0)
    return np.divide(np.diag(c), predicted, out=np.zeros(len(c)), where=predicted > 0)


def plot_stats(p, y, class_labels=None, title="stats", path=None):
    """Draw the normalised confusion matrix with recall and precision per class and their macro
    averages, and save it to ``path`` (default: ``<title>.png`` in the working directory).

    Returns:
        ``(recall, precision)``: per-class arrays, computed from counts.
    """
    import matplotlib.pyplot as plt

    counts = confusion_matrix(p, y, normalize=False)
    recall, precision = get_recall(counts), get_precission(counts)
    shares = confusion_matrix(p, y, normalize=True)
    classes = len(counts)
    names = list(class_labels) if class_labels is not None else [str(i) for i in range(classes)]

    figure, axes = plt.subplots(figsize=(8, 7))
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    for row in range(classes):
        for column in range(classes):
            axes.text(column, row, f"{shares[row, column]:.2f}", ha="center", va="center", fontsize=7,
                      color="white" if shares[row, column] > 0.5 else "black")
    axes.set_xticks(range(classes), [f"{n}\nP={v:.2f}" for n, v in zip(names, precision)], fontsize=7,
                    rotation=45)
    axes.set_yticks(range(classes), [f"{n} R={v:.2f}" for n, v in zip(names, recall)], fontsize=7)
    axes.set_xlabel("predicted class (P: precision)")
    axes.set_ylabel("true class (R: recall)")
    axes.set_title(f"{title}\nmacro recall {recall.mean():.3f}, macro precision {precision.mean():.3f}")
    figure.tight_layout()
    figure.savefig(path if path is not None else f"{title}.png", dpi=120)
    return recall, precision
