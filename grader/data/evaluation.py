"""The images an accuracy check is scored on, held by the host.

A model that can read the labels of the images it is scored on can look each one up instead of
classifying it (the attack in ``tests/attacks``: hash the input, find it in the test split under
the data root, answer its label). So the images are chosen where the student's sandbox cannot
read them:

* **synthetic data**: an evaluation split of its own, drawn by the same recipe right after the
  training and test splits (so from the same class prototypes, the same task), and never written
  under the data root the sandbox sees. Its labels and images exist only in the host's memory and
  in the measure stage's input.
* **real data**: the profile's subset of the public test split, as the handout scores it. Its
  labels are public anyway (a submission could carry them), so no sandbox keeps them out; what
  holds there is that the predictions come from the captured graph, run on the host's images in the
  measure stage, never from the student's process (``docs/security.md`` says what that leaves).

``SCORED_ON`` names the scheme; calibrations record it, so a calibration scored on other images
is stale, never applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from grader.data import catalog, synthetic, tensors
from grader.errors import GraderError

SCORED_ON = "held-out evaluation split (synthetic), test split (real); v1"
EVAL_SPLIT = "evaluation"  # the recipe's extra split, drawn after the others


@dataclass(frozen=True)
class EvaluationSet:
    """Images uint8 ``[N, C, H, W]`` and labels int64 ``[N]``, as ``grader.data.tensors`` loads a split."""

    images: np.ndarray
    labels: np.ndarray
    classes: int
    description: str  # for messages: "500 held-out synthetic images"


def scored_images(dataset: str, root: Path, origin: str, size: int | None, seed: int) -> EvaluationSet:
    """The images an accuracy check on ``dataset`` is scored on: at most ``size`` of them, the same
    subset on every run (it depends only on ``seed``, the rubric's)."""
    from grader.checks.accuracy import TEST_STREAM, subset

    if origin == "synthetic":
        images, labels = _held_out(dataset, str(root))
        where = "held-out synthetic images"
    else:
        images, labels = _test_split(dataset, str(root))
        where = "test images"
    chosen = subset(len(labels), size, seed, TEST_STREAM)
    classes = int(labels.max()) + 1 if len(labels) else 0
    return EvaluationSet(images[chosen], labels[chosen], classes, f"{len(chosen)} {where}")


@lru_cache(maxsize=4)
def _held_out(dataset: str, root: str) -> tuple[np.ndarray, np.ndarray]:
    """The synthetic evaluation split of ``dataset``: as many images as its test split, drawn after
    it. Refuses a synthetic set under ``root`` that this grader's recipe would not write (an older
    generator's), since its evaluation split would not be the same task."""
    recipe, spec = synthetic.RECIPES[dataset], catalog.get(dataset)
    test_name = next(name for name in recipe.sizes if name != "train")
    sizes = {**recipe.sizes, EVAL_SPLIT: recipe.sizes[test_name]}
    splits = recipe.generate(np.random.default_rng(recipe.seed), sizes)
    _, on_disk = _test_split(dataset, root)
    if not np.array_equal(on_disk, splits[test_name][1].astype(np.int64)):
        raise GraderError(f"the synthetic {spec.title} under {root} is not the one this grader writes, so its "
                          "held-out evaluation images cannot be drawn", where=str(Path(root) / spec.synthetic_folder),
                          hint="delete that folder; the grader writes the current synthetic set again")
    images, labels = splits[EVAL_SPLIT]
    images = images[:, None] if spec.is_idx else images.transpose(0, 3, 1, 2)  # as tensors.load gives a split
    return np.ascontiguousarray(images), labels.astype(np.int64)


@lru_cache(maxsize=4)
def _test_split(dataset: str, root: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = tensors.load(dataset, Path(root), train=False)
    return images.numpy(), labels.numpy()
