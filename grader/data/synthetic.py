"""Learnable synthetic stand-ins for the real data sets, written in the real on-disk formats.

``ensure(dataset, root)`` writes, under ``root`` in torchvision's layout, what the real data set
would have there: the four IDX files and their ``.gz`` twins for MNIST and Fashion-MNIST, the
seven pickled batches for CIFAR-10. Student code calling ``torchvision.datasets.MNIST(root, ...)``
or ``FashionMNIST`` reads them unchanged. (torchvision's ``CIFAR10`` checks each batch against
the real MD5 and so refuses them; ``cifar_checksums`` explains what the harness does instead.)

A ``SYNTHETIC`` marker (JSON: data set, generator version, seed, sizes and each file's MD5) says
the data is synthetic; every result graded on it says ``data: synthetic``. A set is written once,
in a temporary folder renamed into place, so concurrent graders never see half a set.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from grader.data import catalog, cifar_format, idx_format, synthetic_patterns
from grader.data.integrity import hash_file
from grader.errors import GraderError

MARKER = "SYNTHETIC"


@dataclass(frozen=True)
class Recipe:
    """How one synthetic set is made. Bump ``version`` whenever the content would change."""

    generate: Callable[[np.random.Generator, dict[str, int]], synthetic_patterns.Splits]
    sizes: dict[str, int]
    seed: int
    version: int
    real_sizes: dict[str, int]  # each split's size in the real data set (what literal splits in student code add up to)


RECIPES: dict[str, Recipe] = {
    # 1,200 / 300 with seed 20221: the expected grades of the fc-vs-cnn examples depend on it.
    "mnist": Recipe(synthetic_patterns.digits, {"train": 1200, "t10k": 300}, seed=20221, version=1,
                    real_sizes=catalog.IDX_SPLITS),
    "fashion-mnist": Recipe(synthetic_patterns.garments, {"train": 2000, "t10k": 500}, seed=20222, version=1,
                            real_sizes=catalog.IDX_SPLITS),
    "cifar10": Recipe(synthetic_patterns.scenes, {"train": 2000, "test": 500}, seed=20223, version=1,
                      real_sizes={"train": 50_000, "test": 10_000}),
}


def stand_ins(dataset: str) -> list[tuple[int, int]]:
    """``(real size, synthetic size)`` of each split of ``dataset``'s synthetic stand-in, e.g.
    ``[(60000, 2000), (10000, 500)]``; empty for a data set without one."""
    recipe = RECIPES.get(dataset)
    return [(recipe.real_sizes[split], size) for split, size in recipe.sizes.items()] if recipe else []


def ensure(dataset: str, root: Path) -> Path:
    """Write the synthetic ``dataset`` under ``root`` unless the current version is there; return ``root``."""
    spec, recipe = catalog.get(dataset), RECIPES[dataset]
    if _is_current(read_marker(root, spec), dataset, recipe):
        return root
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f".tmp-{dataset}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        _write(spec, recipe, staging)
        _publish(staging / spec.synthetic_folder, root / spec.synthetic_folder, dataset, recipe, spec)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root


def read_marker(root: Path, spec: catalog.DatasetSpec) -> dict | None:
    """The marker of a synthetic set under ``root``, or ``None`` when the set there is not synthetic."""
    path = root / spec.synthetic_folder / MARKER
    if not path.is_file():
        return None
    try:
        marker = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return {}  # the marker of an older grader (plain text): synthetic, of an unknown version
    return marker if isinstance(marker, dict) else {}


def _is_current(marker: dict | None, dataset: str, recipe: Recipe) -> bool:
    return bool(marker) and marker.get("dataset") == dataset and marker.get("generator") == recipe.version


def _write(spec: catalog.DatasetSpec, recipe: Recipe, staging: Path) -> None:
    splits = recipe.generate(np.random.default_rng(recipe.seed), recipe.sizes)
    folder = staging / spec.folder
    folder.mkdir(parents=True)
    if spec.is_idx:
        for split, (images, labels) in splits.items():
            idx_format.write(folder / f"{split}-images-idx3-ubyte", images)
            idx_format.write(folder / f"{split}-labels-idx1-ubyte", labels)
    else:
        cifar_format.write(folder, splits["train"], splits["test"])
    marker = {"dataset": spec.name, "generator": recipe.version, "seed": recipe.seed, "sizes": recipe.sizes,
              "note": f"synthetic {spec.title} written by the grader; not the real data set",
              "files": {p.name: hash_file(p) for p in sorted(folder.iterdir())}}
    (staging / spec.synthetic_folder / MARKER).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")


def _publish(built: Path, target: Path, dataset: str, recipe: Recipe, spec: catalog.DatasetSpec) -> None:
    """Rename ``built`` into place; an outdated synthetic set there is moved aside first."""
    marker = read_marker(target.parent, spec)
    if target.exists() and marker is None:
        raise GraderError("a folder without a synthetic marker is where synthetic data goes; it is left alone",
                          where=str(target),
                          hint="synthetic data is written to the grader's own cache; move that folder elsewhere")
    if target.exists() and not _is_current(marker, dataset, recipe):
        outdated = target.with_name(f".outdated-{target.name}-{os.getpid()}")
        target.rename(outdated)
        shutil.rmtree(outdated, ignore_errors=True)
    try:
        built.rename(target)
    except OSError:
        # Another grader published the same set first: theirs is identical, keep it.
        if not _is_current(read_marker(target.parent, spec), dataset, recipe):
            raise
