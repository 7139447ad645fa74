"""Tiny harness-made data for the ``training`` check, and the recorder that watches the loop.

Probe side, but for ``recompute`` (and ``make_split``, which both sides call). The harness, not
the student, decides what the training function trains on:

* ``TinyBatches`` serve a few dozen samples of an easy classification problem. They work like a
  ``DataLoader`` (``for x, y in data``, ``len(data)``, ``len(data.dataset)``) and like custom-ops'
  batching class (``data[i]``, ``data.shuffle()``), so most students' loops accept them.
* ``LoopRecorder`` is a forward pre-hook on the harness's network. A call on training data with
  gradients on is a *training step*; calls on validation data make up a *validation pass*, which
  ends at the next training step (calls on training data without gradients, e.g. a training
  accuracy, are neither). The recorder counts the model's mode and the gradient switch in each,
  and at the start of every validation pass stores the network's parameters (the parameters that
  pass evaluates) and the order the validation samples are served in (which samples share a
  batch, for a loss averaged per batch). Which data a call is on is the data last served.
* From the middle of the run the training batches carry *misleading* labels (every class shifted
  by one), so the validation loss rises in the last epochs. The lowest-validation epoch is then
  never the last one, and a function that returns its final weights instead of a copy of the best
  ones (a live ``state_dict()`` reference) returns another epoch's parameters, which shows.
* A forward hook (``LoopRecorder.after_forward``) keeps the cross-entropy of every training step
  against the labels that batch served, so the training losses a loop returns can be recognised
  among its returned values (``training_loss_readings``).
* ``recompute`` runs on the host: the validation loss and accuracy of every pass, from the
  parameters the recorder stored and the order it saw the samples served in, on validation data
  the host makes itself from the rubric's seed (``make_split``). The student's process never
  reports a number the judge compares with.
* ``role_globals``: a loop reading its loaders from a global dict (``dataloaders['train']``, the
  PyTorch tutorial's) gets the harness's data under the same keys, by the role each key names,
  and a dict of the data sets' sizes beside it the harness data's sizes.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Any, Iterator, Literal, NamedTuple

import numpy as np

Split = Literal["train", "validation"]


class LoopRecorder:
    """Counts what every forward call of the network saw; snapshots each validation pass."""

    def __init__(self, misleading_after_passes: int) -> None:
        self.serving: Split = "train"
        self.misleading_after_passes = misleading_after_passes
        self.in_validation = False
        self.validation_passes = 0
        self.validation_forwards = self.validation_in_train_mode = self.validation_with_grad = 0
        self.train_steps = self.train_steps_in_eval_mode = 0
        self.snapshots: list[np.ndarray] = []
        self.validation_order: Any = None  # the served order of the validation samples, set by TinyBatches
        self.validation_orders: list[Any] = []  # one per validation pass, beside its snapshot
        self.served_targets: Any = None  # the labels of the batch served last, set by TinyBatches
        self.stepping = False  # whether the forward call under way is a training step
        self.step_losses: list[tuple[int, float, int]] = []  # (validation passes before it, loss, batch size)

    @property
    def misleading(self) -> bool:
        """Whether training batches served now carry shifted labels."""
        return self.validation_passes >= self.misleading_after_passes

    def before_forward(self, module: Any, inputs: Any) -> None:
        import torch

        gradients = torch.is_grad_enabled()
        if self.serving == "validation":
            if not self.in_validation:
                self.in_validation = True
                self.validation_passes += 1
                self.snapshots.append(flat_state(module))
                self.validation_orders.append(self.validation_order)
            self.validation_forwards += 1
            self.validation_in_train_mode += bool(module.training)
            self.validation_with_grad += gradients
        self.stepping = False
        if self.serving != "validation" and gradients:  # training data without gradients: an evaluation
            self.in_validation = False
            self.train_steps += 1
            self.train_steps_in_eval_mode += not module.training
            self.stepping = True

    def after_forward(self, module: Any, inputs: Any, output: Any) -> None:
        """A training step's cross-entropy against the labels its batch served (the loss the harness
        gives the loop), kept with the number of validation passes before it (its epoch)."""
        import torch

        if not self.stepping or self.served_targets is None:
            return
        self.stepping = False
        try:
            with torch.no_grad():
                logits = torch.Tensor.detach(output).float()
                loss = torch.nn.functional.cross_entropy(logits, self.served_targets)
            self.step_losses.append((self.validation_passes, float(loss), int(len(self.served_targets))))
        except Exception:  # noqa: BLE001 - an output the loss cannot take: no training loss to recognise
            return


class TinyBatches:
    """Harness-made batches: a DataLoader look-alike that also indexes batches and shuffles."""

    def __init__(self, split: Split, samples: Any, labels: Any, batch_size: int, recorder: LoopRecorder,
                 misleading_labels: Any = None, seed: int = 0) -> None:
        import torch

        self.split, self.samples, self.labels, self.batch_size = split, samples, labels, batch_size
        self.recorder, self.misleading_labels = recorder, misleading_labels
        self.dataset = torch.utils.data.TensorDataset(samples, labels)
        self.order = torch.arange(len(samples))
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return math.ceil(len(self.samples) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} of {len(self)}")
        self.recorder.serving = self.split
        if self.split == "validation":
            self.recorder.validation_order = self.order
        rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        misleading = self.misleading_labels is not None and self.recorder.misleading
        targets = (self.misleading_labels if misleading else self.labels)[rows]
        self.recorder.served_targets = targets
        return self.samples[rows], targets

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        return (self[i] for i in range(len(self)))

    def shuffle(self) -> None:
        import torch

        self.order = torch.randperm(len(self.samples), generator=self.generator)


def make_split(input_shape: list[int], classes: int, count: int, seed: int, part: int) -> tuple[Any, Any]:
    """``count`` samples of an easy problem: each class lights about 32 random pixels of its own at
    0.9 over faint noise, so inputs lie in [0, 1]. Every ``part`` (0: training, 1: validation) has
    the same classes and other samples. Returns (samples, class indices)."""
    import torch

    size = math.prod(input_shape)
    prototypes_rng = torch.Generator().manual_seed(seed)
    density = min(0.5, 32 / size)
    prototypes = (torch.rand(classes, size, generator=prototypes_rng) < density).float() * 0.9
    rng = torch.Generator().manual_seed(seed * 2 + 1 + part)
    targets = (torch.arange(count) % classes)[torch.randperm(count, generator=rng)]
    samples = prototypes[targets] + 0.1 * torch.rand(count, size, generator=rng)
    return samples.reshape(count, *input_shape), targets


def encode(targets: Any, classes: int, form: Literal["index", "one-hot"]) -> Any:
    import torch

    return torch.nn.functional.one_hot(targets, classes).float() if form == "one-hot" else targets


def flat_state(module: Any) -> np.ndarray:
    """The module's ``state_dict`` values, flattened in key order, as float32."""
    import torch

    state = torch.nn.Module.state_dict(module)
    return np.concatenate([_values(v) for v in state.values()]) if state else np.zeros(0, np.float32)


def flat_returned(value: Any, like: Any) -> tuple[np.ndarray | None, str]:
    """A returned best model (a module, a state dict or a list of tensors) flattened like
    ``flat_state(like)``, or ``None`` and why it cannot be read that way."""
    import torch

    from grader.checks.common import type_name

    keys_shapes = [(k, tuple(v.shape)) for k, v in torch.nn.Module.state_dict(like).items()]
    if isinstance(value, torch.nn.Module):
        tensors = dict(torch.nn.Module.state_dict(value))
    elif isinstance(value, dict):
        tensors = value
    elif type(value) in (list, tuple):
        if len(value) != len(keys_shapes):
            return None, f"a {type_name(value)} of {len(value)} values; the network has {len(keys_shapes)} tensors"
        tensors = dict(zip((k for k, _ in keys_shapes), value))
    else:
        return None, f"a {type_name(value)}, not a model, state dict or list of tensors"
    parts = []
    for key, shape in keys_shapes:
        tensor = tensors.get(key)
        if not isinstance(tensor, torch.Tensor):
            return None, f"no tensor {key!r} (keys: {', '.join(map(str, list(tensors)[:6]))})"
        if tuple(tensor.shape) != shape:
            return None, f"{key!r} has shape {list(tensor.shape)}, the network's has {list(shape)}"
        parts.append(_values(tensor))
    return np.concatenate(parts), ""


class Recomputed(NamedTuple):
    """The harness's own numbers for each validation pass, computed on the host: the loss in the two
    averages a student's loop may take (the mean over the validation samples, and the mean of the
    batch means, the batches as that pass was served; the sums follow from these and the batch
    count) and the accuracy, a fraction."""

    sample_means: list[float]
    batch_means: list[float]
    accuracies: list[float]


def recompute(network: Any, snapshots: np.ndarray, orders: np.ndarray, samples: Any, targets: Any,
              batch_size: int) -> Recomputed:
    """``network`` with each row of ``snapshots`` (``flat_state``'s layout) loaded, on the
    validation data; ``orders`` (one row per snapshot) say which samples each batch of that pass
    held. The caller checks the shapes first."""
    import torch

    sample_means, batch_means, accuracies = [], [], []
    for flat, order in zip(snapshots, orders):
        _load_flat(network, flat)
        with torch.no_grad():
            logits = network.eval()(samples)
            losses = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
        served = losses[torch.from_numpy(np.asarray(order, dtype=np.int64))]
        sample_means.append(float(losses.mean()))
        batches = [served[i:i + batch_size].mean() for i in range(0, len(served), batch_size)]
        batch_means.append(float(torch.stack(batches).mean()))
        accuracies.append(float((logits.argmax(1) == targets).float().mean()))
    return Recomputed(sample_means, batch_means, accuracies)


@contextmanager
def in_globals(fn: Any, replacements: dict[str, Any]) -> Iterator[list[str]]:
    """Put the harness's data in place of the function's globals of these names while it runs (only
    names the student defined), and the student's objects back afterwards. Yields the names."""
    namespace = getattr(fn, "__globals__", None)
    names = [n for n in replacements if isinstance(namespace, dict) and n in namespace]
    saved = {n: namespace[n] for n in names}  # type: ignore[index]
    try:
        for name in names:
            namespace[name] = replacements[name]  # type: ignore[index]
        yield names
    finally:
        for name, value in saved.items():
            namespace[name] = value  # type: ignore[index]


def _values(tensor: Any) -> np.ndarray:
    import torch

    plain = torch.Tensor.detach(tensor).cpu().float().reshape(-1)
    return np.array(plain.numpy(), dtype=np.float32, copy=True)


def training_loss_readings(step_losses: list[tuple[int, float, int]]) -> dict[str, list[float]]:
    """The training loss of each epoch in the readings a loop may return: the mean of its batch
    losses, the mean per sample, and the two sums. An epoch is a run of training steps between
    validation passes (whether the loop validates after or before training)."""
    epochs: dict[int, list[tuple[float, int]]] = {}
    for passes, loss, size in step_losses:
        epochs.setdefault(passes, []).append((loss, size))
    readings: dict[str, list[float]] = {"batch-mean": [], "sample-mean": [], "batch-sum": [], "sample-sum": []}
    for key in sorted(epochs):
        steps = epochs[key]
        total = sum(loss * size for loss, size in steps)
        samples = sum(size for _, size in steps)
        readings["batch-mean"].append(sum(loss for loss, _ in steps) / len(steps))
        readings["sample-mean"].append(total / samples)
        readings["batch-sum"].append(sum(loss for loss, _ in steps))
        readings["sample-sum"].append(total)
    return readings


def _loader_like(value: Any) -> bool:
    return isinstance(value, TinyBatches) or (hasattr(value, "dataset") and hasattr(value, "__iter__"))


def _global_names(code: Any) -> set[str]:
    """The global names a function's code (nested functions and comprehensions included) reads."""
    names = set(code.co_names)
    for const in code.co_consts:
        if hasattr(const, "co_names"):
            names |= _global_names(const)
    return names


def role_globals(fn: Any, data: dict[str, TinyBatches]) -> dict[str, Any]:
    """Replacements for the dicts of loaders the function reads from its globals (``dataloaders =
    {'train': ..., 'val': ...}``): the same keys, each with the harness's data of the role the key
    names (``train`` the training data; ``val``, ``valid``, ``test`` the validation data), and for
    a dict of the loaders' data set sizes with the same keys, the harness data's sizes. Dicts with a
    key of no role are left alone. ``data``: the harness data by split (``train``, ``validation``)."""
    from grader.targets import role_of

    namespace, code = getattr(fn, "__globals__", None), getattr(fn, "__code__", None)
    if not isinstance(namespace, dict) or code is None:
        return {}
    read = [n for n in sorted(_global_names(code)) if isinstance(namespace.get(n), dict)]
    splits = {"train-data": "train", "validation-data": "validation"}
    out: dict[str, Any] = {}
    loader_dicts: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for name in read:
        value = namespace[name]
        if not value or not all(isinstance(k, str) and _loader_like(v) for k, v in value.items()):
            continue
        roles = {k: splits.get(role_of(f"{k}_loader") or "") for k in value}
        if None in roles.values():
            continue
        out[name] = {k: data[split] for k, split in roles.items() if split}  # type: ignore[index]
        loader_dicts.append((value, out[name]))
    for name in read:
        value = namespace[name]
        for loaders, replaced in loader_dicts:
            try:
                sizes = value.keys() == loaders.keys() and all(
                    type(v) is int and v == len(loaders[k].dataset) for k, v in value.items())
            except Exception:  # noqa: BLE001 - not a dict of sizes
                sizes = False
            if sizes and name not in out:
                out[name] = {k: len(replaced[k].dataset) for k in value}
    return out


def _load_flat(network: Any, flat: np.ndarray) -> None:
    """Load a snapshot (every state-dict tensor flattened end to end, in order) into ``network``."""
    import torch

    state, offset = {}, 0
    for key, value in torch.nn.Module.state_dict(network).items():
        state[key] = torch.from_numpy(flat[offset:offset + value.numel()].copy()).reshape(value.shape)
        offset += value.numel()
    network.load_state_dict(state)
