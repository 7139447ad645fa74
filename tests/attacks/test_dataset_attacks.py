"""Attacks on the ``dataset`` check by a student who has read the grader's source.

The form's probe builds the student's batching class from harness-made samples and records what
each batch served; the host decodes which sample and which label each row is, and draws the labels
the samples were given from the rubric's seed itself. Before, the probe decoded in the student's
process and recorded the labels it had given, so a class that shuffled samples without their
labels passed by rebinding the decoder or the label draw. Here the probe runs in this process, as
it runs next to the student's code, and the judge runs with the grader's modules as the host has
them: restored after the probe, as a separate process would see them.

The ``loader`` and ``items`` forms are the run's account of what the student's objects served; the
host holds it to the data files it reads itself (``dataset.CourseData``). A loader of made-up data
that reports the labels a student guessed the split holds fails there and goes to a person.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import torch

from grader import checks
from grader.checks import dataset
from grader.checks.base import HarnessSeed, ProbeContext
from grader.data import DataRoot, synthetic
from grader.targets import TargetSpec

SEED = 7
CUSTOM_OPS = {"count": 50, "batch_size": 8, "classes": 10, "sample_shape": [1, 28, 28], "labels": "one-hot"}
LABELS_KEPT = "after shuffle(): every sample served once, with its own label"


def _batching_classes() -> Any:
    """tests/fixtures/contracts/batching_datasets.py: custom-ops' batching class, right and subtly wrong."""
    path = Path(__file__).resolve().parents[1] / "fixtures" / "contracts" / "batching_datasets.py"
    found = importlib.util.spec_from_file_location("attack_batching_datasets", path)
    module = importlib.util.module_from_spec(found)  # type: ignore[arg-type]
    found.loader.exec_module(module)  # type: ignore[union-attr]
    return module


# custom-ops' classic mistake: shuffle() moves the samples, not their labels
ShufflesSamplesNotLabels = _batching_classes().ShufflesSamplesNotLabels


class RebindsTheLabelDecoder(ShufflesSamplesNotLabels):
    """The same mistake, plus what the grader's source suggests: the probe decodes each label row
    with ``label_classes``, so rebind it to report, for every row of the batch just served, the
    class its sample was given, whatever label was served with it. (The fill value that tells
    which sample a row is, and the order the labels were given in, are both in the source.)"""

    given: list[int] = []
    served_rows: Any = None

    def __init__(self, samples, labels, batch_size):
        super().__init__(samples, labels, batch_size)
        cls = RebindsTheLabelDecoder
        if len(labels) > len(cls.given):  # the full instance, not the one of a multiple of the batch size
            cls.given = labels.argmax(dim=1).tolist()

        def own_classes(batch_labels):
            rows = cls.served_rows.flatten(1).mean(dim=1)
            return [cls.given[int(i)] for i in torch.round(rows * (len(cls.given) + 1)).long() - 1]

        dataset.label_classes = own_classes

    def __getitem__(self, index):
        samples, labels = super().__getitem__(index)
        RebindsTheLabelDecoder.served_rows = samples
        return samples, labels


class RebindsTheLabelDraw(ShufflesSamplesNotLabels):
    """The same mistake, with every given label made class 0 by rebinding the draw of the given
    labels, so that no label can be served with the wrong sample."""

    def __init__(self, samples, labels, batch_size):
        dataset.given_classes = lambda want, seed: np.zeros(want.count, dtype=np.int64)
        zeros = torch.nn.functional.one_hot(torch.zeros(len(labels), dtype=torch.int64), labels.shape[1]).float()
        super().__init__(samples, zeros, batch_size)


def probed_next_to(spec: Any, objects: dict[str, Any]) -> Any:
    """The probe's observation of the student's ``objects`` (each a target by its own name), with
    the grader's modules restored afterwards, as the host's separate process has them."""
    ctx = ProbeContext(namespaces=[("module", objects)], targets={name: TargetSpec(name=name) for name in objects},
                       seed=SEED)
    kept = dict(vars(dataset))
    try:
        ctx.seed_everything()
        return checks.get("dataset").probe(spec, ctx)
    finally:
        vars(dataset).update(kept)


def graded(cls: type) -> dict[str, Any]:
    """Probe in this process (the student's side), then judge with the grader's modules restored
    (the host's side); the failed requirements by name."""
    spec = checks.get("dataset").Spec.model_validate({"id": "batches", "kind": "dataset", "points": 2,
                                                      "target": "Dataset", "batches": CUSTOM_OPS})
    observation = probed_next_to(spec, {"Dataset": cls})
    verdict = checks.get("dataset").judge(spec, observation, HarnessSeed(seed=SEED))
    return {"fraction": verdict.fraction, "failed": [row["requirement"] for row in verdict.table if not row["ok"]]}


def test_the_plain_mistake_fails_only_the_labels_kept_requirement():
    assert graded(ShufflesSamplesNotLabels)["failed"] == [LABELS_KEPT]


def test_rebinding_the_label_decoder_gains_nothing():
    """It passed in full when the probe decoded the labels in the student's process."""
    assert graded(RebindsTheLabelDecoder)["failed"] == [LABELS_KEPT]


def test_rebinding_the_draw_of_the_given_labels_gains_nothing():
    # all class 0 is not what the host draws from the seed, before shuffle() or after
    assert graded(RebindsTheLabelDraw)["failed"] == ["each sample comes with its own label", LABELS_KEPT]


class MadeUpLoader:
    """fc-vs-cnn's training loader without the data: batches of 64 noise images in [0, 1], labels
    0-9, in a new order every pass, as many as the training split has images. And what the grader's
    source suggests to pass the labels row: the probe counts the classes served with
    ``label_classes``, so rebind it to report 120 of each class, a guess at a balanced split."""

    def __iter__(self):
        dataset.label_classes = lambda labels: [i % 10 for i in range(len(labels))]
        generator = torch.Generator().manual_seed(int(torch.randint(0, 2**31, ())))
        for start in range(0, 1200, 64):
            size = min(64, 1200 - start)
            yield torch.rand(size, 1, 28, 28, generator=generator), torch.randint(0, 10, (size,), generator=generator)


def test_a_made_up_loader_reporting_guessed_labels_fails_the_course_row_and_goes_to_a_person(tmp_path):
    spec = checks.get("dataset").Spec.model_validate({
        "id": "train-loader", "kind": "dataset", "points": 3, "partial_credit": True, "target": "train_loader",
        "loader": {"batch_size": 64, "input_range": [0, 1], "target_range": [0, 9], "shuffled": True, "split": "train"}})
    course = checks.get("dataset").host_truth(spec, DataRoot(synthetic.ensure("mnist", tmp_path), "synthetic", "mnist"))
    verdict = checks.get("dataset").judge(spec, probed_next_to(spec, {"train_loader": MadeUpLoader()}), course)
    assert [row["requirement"] for row in verdict.table if not row["ok"]] == [
        "a pass serves the labels of mnist's whole train split"]
    assert verdict.review is not None
