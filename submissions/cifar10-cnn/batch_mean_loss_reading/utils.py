"""Helpers for the CNN assignment (the course's provided file, rewritten for the harness).

Seeding, moving tensors to the GPU when there is one, keeping the best checkpoints of a run, and
plotting a training curve. The names and signatures are the course's, so student code written
against the starter code runs unchanged.
"""

import pathlib
import random

import numpy as np
import torch


def set_seed(seed: int):
    """Seed Python's, numpy's and torch's generators (every GPU's too)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def to_cuda(elements):
    """``elements`` (a tensor, a module, or a list or tuple of them) moved to the GPU when one is
    visible; unchanged otherwise, so the same code runs on a CPU."""
    if not torch.cuda.is_available():
        return elements
    if isinstance(elements, (list, tuple)):
        return [x.cuda() for x in elements]
    return elements.cuda()


def _best_pointer(directory: pathlib.Path) -> pathlib.Path:
    return directory / "best_model.ckpt"


def save_checkpoint(state_dict: dict, filepath: pathlib.Path, is_best: bool, max_keep: int = 1):
    """Save ``state_dict`` to ``filepath``; with ``is_best``, also as the directory's best model.

    Only the ``max_keep`` newest regular checkpoints of the directory are kept (the best one is
    kept apart). The directory's ``latest_checkpoint`` file lists them, newest last.
    """
    filepath = pathlib.Path(filepath)
    directory = filepath.parent
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(state_dict, filepath)
    if is_best:
        torch.save(state_dict, _best_pointer(directory))
    kept = [p for p in get_previous_checkpoints(directory) if p != filepath] + [filepath]
    for stale in kept[:-max_keep] if max_keep > 0 else kept:
        if stale.exists():
            stale.unlink()
    kept = kept[-max_keep:] if max_keep > 0 else []
    (directory / "latest_checkpoint").write_text("".join(f"{p.name}\n" for p in kept))


def get_previous_checkpoints(directory: pathlib.Path) -> list:
    """The regular checkpoints saved in ``directory``, oldest first (an empty list when none)."""
    directory = pathlib.Path(directory)
    listing = directory / "latest_checkpoint"
    if not listing.is_file():
        return []
    names = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
    return [directory / name for name in names]


def load_best_checkpoint(directory: pathlib.Path):
    """The state dict saved as the best model in ``directory``, or None when there is none."""
    path = _best_pointer(pathlib.Path(directory))
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu" if not torch.cuda.is_available() else None)


def plot_loss(loss_dict: dict, label: str = None, npoints_to_average: int = 1, plot_variance: bool = True):
    """Plot ``{global_step: value}`` on the current matplotlib axes.

    With ``npoints_to_average`` > 1, consecutive points are grouped and their mean is drawn at the
    group's middle step, with a band of one standard deviation when ``plot_variance``.
    """
    import matplotlib.pyplot as plt

    steps = np.array(list(loss_dict.keys()), dtype=float)
    values = np.array([float(v) for v in loss_dict.values()], dtype=float)
    if npoints_to_average <= 1 or len(values) < npoints_to_average:
        plt.plot(steps, values, label=label)
        return
    groups = len(values) // npoints_to_average
    cut = groups * npoints_to_average
    grouped = values[:cut].reshape(groups, npoints_to_average)
    centres = steps[:cut].reshape(groups, npoints_to_average).mean(axis=1)
    means, spread = grouped.mean(axis=1), grouped.std(axis=1)
    plt.plot(centres, means, label=f"{label} (mean over {npoints_to_average} steps)" if label else None)
    if plot_variance:
        plt.fill_between(centres, means - spread, means + spread, alpha=0.2,
                         label=f"{label} variance over {npoints_to_average} steps" if label else None)
