"""``accuracy``: train the student's network, and score the trained network where no student code runs.

With ``trainer: student`` the probe trains the network with the student's own training function
(called like a ``training`` check with ``$network`` / ``$epochs`` placeholders, its data replaced
by the harness's loaders): that loop is what the check grades. With ``trainer: harness`` (the
network is graded, not a loop) the student's process trains nothing: the probe captures the
network as built, and the measure stage trains it with ``grader.train`` (below). Either way the
probe returns no prediction: it captures the network as a graph with its weights
(``model_capture``), traced on a batch of training images.

A measured kind. With ``trainer: harness`` the capture also holds a training-mode graph per batch
size of the harness's loop; the measure stage makes a module of the graphs and the initial
weights (``model_capture.as_module``) and trains it from the host's seed on the planned training
images, exactly as the loop would train the module itself, and also scores the network as built
(one that reaches the threshold untrained is put before a person). The measure stage then runs
the eval-mode graph on the images the check is scored on, which
the host chose and the student's process never saw (``grader.data.evaluation``: for synthetic
data a held-out split that is never under the data root), and returns a predicted class per
image. The host holds their labels (``AccuracyTruth``, built by ``grader.profiles.plan``),
computes accuracy, per-class accuracy and the confusion matrix, and compares with the threshold.
A network that looked its answers up in the test split finds nothing there to look up.

Thresholds are absolute (``min_accuracy``, one number or one per profile) or calibrated from the
reference over several seeds (``threshold: calibrated``, see ``grader.calibration``). Where one
training's spread would fail correct work too often, ``draws: 3`` follows a first training that
falls short with two more from other seeds and judges on the median of the three
(``judged_draw``); the measure stage stops at a first training that passes, so it gets the scored
labels and the threshold for that check, and correct work costs one training. A missing
calibration falls back to ``min_accuracy`` when given, else the check cannot be judged and says
which ``grader calibrate`` command fixes that.

Data comes from the profile (``grader.profiles``): ``full`` is the handout's budget, ``quick``
takes a fixed random subset of the training and scored images and fewer epochs. Subsets are the
same on every run: they depend only on the rubric's seed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from grader import artifacts, numerics
from grader.calibration import CheckStats, Threshold, calibrated_threshold
from grader.checks import register
from grader.checks.toolkit import model_capture
from grader.checks.base import (CheckKind, CheckSkipped, CheckSpec, Measured, Observation, ProbeContext, StudentRaised,
                                Verdict)
from grader.checks.toolkit.capture import JUDGE_ONLY
from grader.checks.toolkit.common import Args, call_target, describe_call, type_name
from grader.checks.toolkit.model_capture import CapturedModel
from grader.errors import GraderError
from grader.observations import Array

PLACEHOLDERS = {"$network", "$epochs", "$lr", "$train_data", "$test_data", "$device"}
DRAW_SEED_STEP = 7919  # draw d trains from seed + d * step: far from the seeds calibrations use (seed + i)


class Normalize(BaseModel):
    """The handout's input normalisation, applied after scaling pixels to [0, 1]: (x - mean) / std."""

    model_config = ConfigDict(extra="forbid")
    mean: list[float] = Field(min_length=1, description="one value per channel")
    std: list[float] = Field(min_length=1, description="one value per channel")


class PlannedData(BaseModel):
    """Filled in by the harness when it plans a run (``grader.profiles``); never written in a rubric."""

    model_config = ConfigDict(extra="forbid")
    profile: str
    dataset: str
    root: str = Field(description="the resolved data root, in torchvision's layout, readable inside the sandbox")
    subset_seed: int
    train_seed: int = Field(description="the seed the harness's training starts from (draw d: plus d times "
                                           "DRAW_SEED_STEP): the rubric's, or a calibration run's own")
    device: str | None = Field(None, description="where to train; None: CUDA when visible, else the CPU")
    trained_draws: int | None = Field(None, ge=1, description="(trainer: student) how many of the check's "
                                      "trainings this run makes, from the first: 1 in a submission's first run, "
                                      "where the check is judged on several; None (all of them) in the run that "
                                      "follows a first that fell short (grader.pipeline, _every_draw)")


class AccuracySpec(CheckSpec):
    kind: Literal["accuracy"]
    target: str = Field(description="a class or function that builds the network")
    args: Args = Field(default_factory=list, description="arguments that build it: a list or a mapping")
    trainer: Literal["student", "harness"] = Field(
        description="student: the student's training function trains the network; harness: grader.train does")
    train_fn: str | None = Field(None, description="(student) the training function's target")
    train_args: list[Any] = Field([], description="(student) positional arguments; `$network`, `$epochs`, `$lr`, "
                                                  "`$train_data`, `$test_data`, `$device` are replaced")
    train_kwargs: dict[str, Any] = Field({}, description="(student) keyword arguments, same placeholders")
    data_globals: dict[str, Literal["train", "test"]] = Field(
        {}, description="(student) globals of the function's module replaced by the harness's loaders during the "
                        "call, e.g. {train_loader: train, test_loader: test}; a key that names a rubric target also "
                        "replaces the global the target was found as (the student's own name for the loader)")
    epochs: int = Field(ge=1, description="the handout's number of epochs (the quick profile may lower it)")
    batch_size: int = Field(64, ge=1, description="batch size of the harness's loaders and loop")
    lr: float = Field(0.01, gt=0, description="learning rate: the peak rate of the harness's loop, and what `$lr` "
                                              "passes to a student's loop (a profile may replace it)")
    hyperparameters: dict[str, Any] = Field(
        {}, description="(harness) further settings of grader.train (momentum, weight_decay, ...)")
    train_subset: int | None = Field(None, ge=1, description="training images used (default: all)")
    test_subset: int | None = Field(None, ge=1, description="test images scored (default: all)")
    normalize: Normalize | None = Field(None, description="the handout's normalisation of inputs")
    flatten: bool = Field(False, description="give the network each image as one row of pixels ([N, 784] for "
                                             "MNIST), for handouts whose networks take flattened images")
    threshold: Literal["absolute", "calibrated"] = Field(
        "absolute", description="absolute: min_accuracy; calibrated: from `grader calibrate` runs of the reference",
        json_schema_extra=JUDGE_ONLY)
    min_accuracy: float | dict[Literal["quick", "full"], float] | None = Field(
        None, description="the accuracy needed (or one per profile); with `calibrated`, used when no calibration "
                          "is found", json_schema_extra=JUDGE_ONLY)
    floor: float = Field(0.02, ge=0, le=1, description="(calibrated) the smallest margin below the reference's mean",
                         json_schema_extra=JUDGE_ONLY)
    draws: int = Field(1, ge=1, le=5, description="trainings from different seeds, at most (an odd number): a "
                                                  "first training that falls short is followed by the others, "
                                                  "judged on the median of all; where one training's spread would "
                                                  "fail correct work too often, 3 fail it far less")
    run: SkipJsonSchema[PlannedData | None] = Field(None, exclude=True)

    @model_validator(mode="after")
    def _consistent(self) -> "AccuracySpec":
        passed = [*self.train_args, *self.train_kwargs.values()]
        unknown = sorted({a for a in passed if isinstance(a, str) and a.startswith("$")} - PLACEHOLDERS)
        if unknown:
            raise ValueError(f"unknown placeholder {', '.join(unknown)}; known: {', '.join(sorted(PLACEHOLDERS))}")
        if self.trainer == "student":
            if self.train_fn is None:
                raise ValueError("trainer: student needs `train_fn`, the training function's target")
            if "$network" not in passed:
                raise ValueError("trainer: student needs `$network` in train_args or train_kwargs")
            if "$train_data" not in passed and "train" not in self.data_globals.values():
                raise ValueError("trainer: student needs a way in for the training data: `$train_data` in the "
                                 "arguments, or a global mapped to `train` in data_globals")
        elif self.train_fn or self.train_args or self.train_kwargs or self.data_globals:
            raise ValueError("train_fn, train_args, train_kwargs and data_globals are for trainer: student")
        reserved = sorted({"epochs", "batch_size", "lr", "seed"} & set(self.hyperparameters))
        if reserved:
            raise ValueError(f"set {', '.join(reserved)} as the check's own field(s), not in hyperparameters "
                             "(the seed is the rubric's)")
        if self.threshold == "absolute" and self.min_accuracy is None:
            raise ValueError("threshold: absolute needs `min_accuracy`")
        if self.draws % 2 == 0:
            raise ValueError(f"draws: {self.draws} has no middle draw; use an odd number")
        return self

    def target_refs(self) -> list[str]:
        return [self.target] + ([self.train_fn] if self.train_fn else [])

    def min_accuracy_for(self, profile: str) -> float | None:
        if isinstance(self.min_accuracy, dict):
            return self.min_accuracy.get(profile)  # type: ignore[call-overload]
        return self.min_accuracy


class AccuracyObservation(Observation):
    """What the sandbox reports: each draw's network, captured (``model_capture``) with an
    eval-mode graph on a batch of ``EVAL_BATCH`` training images. With ``trainer: student`` the
    student's loop has trained it; with ``trainer: harness`` it is untrained, and one training-mode
    graph per batch size of the harness's loop rides along, for the measure stage to train it. No
    prediction: the student's process never sees the images it is scored on."""

    models: list[CapturedModel] = Field(max_length=5)  # one per draw
    train_images: int
    epochs: int
    device: str  # where the network was when captured: a student's loop may have moved it
    seconds: float
    channels_last: bool = False  # (harness) the loop's memory format for this network, as grader.train decides it


class AccuracyMeasurement(Observation):
    """What the measure stage computed: per draw, the predicted class of every scored image (the
    captured graph run on the host's images), or why that draw could not be measured. Where the
    first draw reached the threshold the host gave (``draws`` above 1) it is the only one. Where the
    harness trains (``trainer: harness``) the measure stage trained the network first, on
    ``trained_on``, and ``initial`` holds what it predicted with the weights it was built with."""

    predictions: list[Array | None] = Field(max_length=5)
    problems: list[str] = Field(max_length=5)
    initial: list[Array | None] = Field([], max_length=5)
    trained_on: str = ""  # the device kind the measure stage trained on; "" where the student's loop trained
    seconds: float = 0.0  # the measure stage's training, every draw it trained


@dataclass(frozen=True)
class AccuracyTruth:
    """What the host knows for judging one accuracy check, none of it from the sandbox.

    ``calibrations`` holds the current calibration of the active profile and data origin per
    device kind; ``stale`` says, per device kind, why a calibration on file no longer applies.
    """

    labels: np.ndarray
    classes: int
    profile: str
    images: np.ndarray  # the scored images, uint8 [N, C, H, W] (grader.data.evaluation); the measure stage's input
    scored_on: str  # in words, e.g. "500 held-out synthetic images"
    data: str
    calibrations: dict[str, CheckStats] = field(default_factory=dict)
    stale: dict[str, str] = field(default_factory=dict)
    calibrate_hint: str = "run `grader calibrate`"  # what to do where no calibration applies (calibration.hint)
    changes: str = ""  # what the harness changed in what the student's code got (grader.profiles.changes)
    # the kind of device the run was given (grader.executors.slots.device_kind): the host's knowledge,
    # set per slot by grader.profiles.on_device. The record's own `device` never picks a calibration:
    # a forged one would turn a failed check into "no calibration, not counted".
    device: str = "cpu"


class NotCalibrated(CheckSkipped):
    """A calibrated check has no usable calibration for the run's profile, device and data."""


# ---------------------------------------------------------------- shared by both sides


def subset(count: int, size: int | None, seed: int, stream: int) -> np.ndarray:
    """Indices of a fixed random subset of ``size`` out of ``count`` items, in increasing order.

    The same on every machine for the same arguments (numpy's PCG64 from a seed sequence);
    ``stream`` keeps the training and test subsets independent."""
    if size is None or size >= count:
        return np.arange(count)
    return np.sort(np.random.default_rng([seed, stream]).choice(count, size, replace=False))


TRAIN_STREAM, TEST_STREAM = 0, 1


@lru_cache(maxsize=4)
def _split(dataset: str, root: str, train: bool) -> tuple[Any, Any]:
    from grader.data import tensors

    return tensors.load(dataset, Path(root), train)


@dataclass(frozen=True)
class Scored:
    """Accuracy, per-class accuracy and the confusion matrix (rows: true class, columns: predicted)."""

    accuracy: float
    confusion: np.ndarray
    out_of_range: int

    @property
    def per_class(self) -> np.ndarray:
        images = self.confusion.sum(axis=1)
        return np.divide(np.diag(self.confusion), images, out=np.zeros(len(images)), where=images > 0)

    def table(self) -> list[dict[str, Any]]:
        """One row per true class: images, accuracy, and how its images were classified."""
        rows = []
        for c, (row, accuracy) in enumerate(zip(self.confusion, self.per_class)):
            rows.append({"class": c, "images": int(row.sum()), "accuracy": round(float(accuracy), 4),
                         **{f"as {p}": int(n) for p, n in enumerate(row)}})
        return rows


def judged_draw(accuracies: list[float], needed: float) -> int:
    """Which of a check's trainings (index, in draw order) it is judged on: the first, where it
    reaches ``needed``; else the median of all of them. So a check fails correct work only when its
    first training falls short and so do enough of the others to pull the median down (for 3
    draws, one of the other two: about 2p², where p is how often a single training falls short).
    The caller has every draw once the first fell short (the measure stage trains the others only
    then)."""
    if accuracies[0] >= needed or len(accuracies) == 1:
        return 0
    order = sorted(range(len(accuracies)), key=lambda i: accuracies[i])
    return order[len(order) // 2]


def score(predictions: np.ndarray, labels: np.ndarray, classes: int) -> Scored:
    """Score predictions against labels; a prediction outside 0..classes-1 is wrong, not an error."""
    valid = (predictions >= 0) & (predictions < classes)
    cells = labels[valid].astype(np.int64) * classes + predictions[valid].astype(np.int64)
    confusion = np.bincount(cells, minlength=classes * classes).reshape(classes, classes)
    correct = int(np.trace(confusion))
    return Scored(correct / len(labels) if len(labels) else 0.0, confusion, int((~valid).sum()))


# ---------------------------------------------------------------- the kind


EVAL_BATCH = 256  # images per forward of a captured network, in the sandbox's capture and in the measure stage
# A trained network travels whole: up to 8M float32 weights, so that 5 draws stay within a run's
# 256 MiB of arrays (observations.MAX_ARRAYS_BYTES). A larger one is not measured: a person grades it.
MAX_WEIGHT_BYTES = 32 * 2**20


@register("accuracy")
class Accuracy(CheckKind):
    Spec = AccuracySpec
    Observation = AccuracyObservation
    Measurement = AccuracyMeasurement

    @staticmethod
    def probe(spec: AccuracySpec, ctx: ProbeContext) -> AccuracyObservation:
        import torch

        if spec.run is None:
            raise RuntimeError("the accuracy probe ran without planned data (grader.profiles.plan adds it)")
        train_x, train_y = _images(spec, train=True)
        visible_test = _images(spec, train=False) if spec.trainer == "student" else None
        start = time.monotonic()
        models, device, channels_last = [], "cpu", False
        with numerics.pinned():
            for draw in range(spec.run.trained_draws or spec.draws):
                seed = ctx.seed + DRAW_SEED_STEP * draw
                if draw:  # the first draw is seeded as a single-draw check is (seed_everything before the probe)
                    torch._C.default_generator.manual_seed(seed)
                model = call_target(ctx, spec.target, spec.args)
                name = describe_call(ctx.found_name(spec.target), spec.args)
                with ctx.student_code(f"checking what {name} returned"):
                    if not isinstance(model, torch.nn.Module):
                        raise TypeError(f"{name} returned a {type_name(model)}, not a torch.nn.Module")
                if spec.trainer == "student":
                    _train_with_student_loop(spec, ctx, model, (train_x, train_y), visible_test, seed)
                with ctx.student_code(f"moving {name} to the CPU"):
                    device = device_kind(next(torch.nn.Module.parameters(model), torch.empty(0)).device)
                    torch.nn.Module.to(model, "cpu")
                example = model_inputs(spec, _batch_of(train_x, EVAL_BATCH))
                shapes, examples, modes = [list(example.shape)], [example], ["eval"]
                if spec.trainer == "harness":  # trained in the measure stage: one graph per batch size of its loop
                    channels_last = _channels_last(spec, ctx, model, name, train_x)
                    for size in training_batches(len(train_y), spec.batch_size):
                        batch = harness_inputs(spec, train_x[:size], channels_last)
                        shapes.append(list(batch.shape)), examples.append(batch), modes.append("train")
                what = f"the trained {name}" if spec.trainer == "student" else name
                models.append(model_capture.capture(model, shapes, torch.float32, ctx, what, examples=examples,
                                                    value_bytes=MAX_WEIGHT_BYTES, modes=modes,
                                                    channels_last=channels_last))
        return AccuracyObservation(models=models, train_images=len(train_y), epochs=spec.epochs, device=device,
                                   seconds=round(time.monotonic() - start, 3), channels_last=channels_last)

    @staticmethod
    def host_inputs(spec: AccuracySpec, truth: "AccuracyTruth | None") -> dict[str, Any]:
        if truth is None:
            return {}
        given: dict[str, Any] = {"images": truth.images}
        if spec.draws > 1:  # to stop at a first training that passes: the labels and the threshold
            try:
                needed = _threshold(spec, truth, truth.device).needed
            except (NotCalibrated, GraderError):
                return given  # the judge says why; the stage trains every draw
            given.update(labels=truth.labels, classes=truth.classes, needed=needed)
        return given

    @staticmethod
    def measure(spec: AccuracySpec, obs: AccuracyObservation, seed: int, given: dict[str, Any]) -> AccuracyMeasurement:
        images = given.get("images")
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4:
            raise ValueError("the host gave no scored images (uint8 [N, C, H, W])")
        if spec.trainer == "harness":
            return _train_and_predict(spec, obs, images, _first_passes(given, len(images)))
        rows: list[np.ndarray | None] = []
        problems: list[str] = []
        for captured in obs.models:
            try:
                rows.append(_predict(spec, captured, images))
                problems.append("")
            except (model_capture.Refused, artifacts.ArtifactError) as exc:
                rows.append(None)
                problems.append(str(exc)[:500])
        return AccuracyMeasurement(predictions=rows, problems=problems)

    @staticmethod
    def reuse_view(spec: AccuracySpec, obs: AccuracyObservation) -> dict[str, Any] | None:
        # Training is most of a batch's time; predicting with a student's trained network is not.
        return obs.model_dump(mode="python", exclude={"seconds"}) if spec.trainer == "harness" else None

    @staticmethod
    def worth_keeping(measurement: AccuracyMeasurement) -> bool:
        return not any(measurement.problems)

    @staticmethod
    def judge(spec: AccuracySpec, obs: AccuracyObservation, truth: AccuracyTruth | None,
              measured: Measured | None = None) -> Verdict:
        if truth is None:
            raise GraderError(f"no test labels on the host for accuracy check {spec.id!r}", where="grader.pipeline",
                              hint="the plan's host truths (grader.profiles.plan(...).expected) must reach judge_all")
        n = len(truth.labels)
        unmeasured = _why_unmeasured(spec, obs, measured, n)
        if unmeasured:
            return Verdict(0.0, f"not measured: {unmeasured}; the trained network was not scored",
                           review=f"the trained network could not be scored by the measure stage ({unmeasured}); "
                                  "a person may grade it by hand")
        rows = measured.data.predictions  # type: ignore[union-attr]
        draws = [score(row, truth.labels, truth.classes) for row in rows]
        threshold = _threshold(spec, truth, truth.device)
        if len(draws) < spec.draws and draws[0].accuracy < threshold.needed:
            stage = "the measure stage" if spec.trainer == "harness" else "the runs of the submission"
            unmeasured = (f"{stage} trained {len(draws)} of {spec.draws} draws, and the first fell short "
                          f"({draws[0].accuracy:.3f} < {threshold.needed:.3f})")
            return Verdict(0.0, f"not measured: {unmeasured}", review=f"{unmeasured}; a person may grade it by hand")
        scored = draws[judged_draw([d.accuracy for d in draws], threshold.needed)]
        weakest = int(np.argmin(scored.per_class))
        on = f"on {truth.scored_on}"
        detail = f"weakest class {weakest}: {scored.per_class[weakest]:.3f}"
        if scored.out_of_range:
            detail += f"; {scored.out_of_range} prediction(s) outside 0..{truth.classes - 1}"
        accuracy = f"accuracy {scored.accuracy:.3f}"
        if spec.draws > 1 and len(draws) == 1:  # the first reached the threshold: no more were trained
            accuracy += f" in the first training (a first that fell short would be followed by {spec.draws - 1} more)"
        elif spec.draws > 1 and draws[0].accuracy >= threshold.needed:  # all trained, yet the first decides
            accuracy += (f" in the first training, which decides where it reaches the threshold (all {len(draws)}: "
                         f"{', '.join(f'{d.accuracy:.3f}' for d in draws)})")
        elif spec.draws > 1:
            accuracy = (f"median accuracy {scored.accuracy:.3f} of {spec.draws} trainings from different seeds "
                        f"({', '.join(f'{d.accuracy:.3f}' for d in draws)}): the first fell short, "
                        f"so {spec.draws - 1} more were trained")
        message = f"{accuracy} {on}, needed {threshold.needed:.3f} ({threshold.why}); {detail}"
        if truth.changes:
            message += f"; trained with {truth.changes}"
        ended_on = measured.data.trained_on or obs.device  # type: ignore[union-attr]
        if ended_on != truth.device:
            message += f"; the model ended on {ended_on}, judged for {truth.device}, the device this run was given"
        verdict = Verdict.passed if scored.accuracy >= threshold.needed else Verdict.failed
        return replace(verdict(message, scored.table()),
                       review=_trained_before(spec, measured.data, truth, threshold.needed))  # type: ignore[arg-type]


def first_fell_short(spec: CheckSpec, truth: AccuracyTruth | None, measured: Measured | None) -> bool:
    """Whether the first of ``spec``'s trainings, trained alone in the student's run
    (``PlannedData.trained_draws``), fell short of the threshold, so that the others must be
    trained too; False where there is nothing more to train or the judge cannot use them (no
    calibration, nothing measured: the judge says why)."""
    if not isinstance(spec, AccuracySpec) or spec.trainer != "student" or spec.draws == 1:
        return False
    if spec.run is None or spec.run.trained_draws is None or truth is None or measured is None or measured.data is None:
        return False
    rows = measured.data.predictions
    if len(rows) != 1 or rows[0] is None or rows[0].shape != truth.labels.shape:
        return False
    # the rule the measure stage stops by, from what the host would hand it (labels and threshold)
    passes = _first_passes(Accuracy.host_inputs(spec, truth), len(truth.labels))
    return passes is not None and not passes(rows[0])


def _trained_before(spec: AccuracySpec, measured: AccuracyMeasurement, truth: AccuracyTruth, needed: float) -> str | None:
    """Why a person should look: the network the harness was given already reached the threshold
    before the harness trained it (weights trained in the student's own process, or loaded),
    else None. It keeps its points: such a network does compute the accuracy it is scored on."""
    if spec.trainer != "harness":
        return None
    before = [score(row, truth.labels, truth.classes).accuracy for row in measured.initial if row is not None]
    if not before or max(before) < needed:
        return None
    return (f"before the harness trained it, the network as the student's code built it already scored "
            f"{max(before):.3f} (needed {needed:.3f}): its weights were trained or loaded by the student's own code, "
            "not by the harness's loop; a person may check that this is allowed")


def _why_unmeasured(spec: AccuracySpec, obs: AccuracyObservation, measured: Measured | None, n: int) -> str:
    """Why the measure stage gave no usable predictions for every draw, or ""."""
    if measured is None:
        return "no measure stage ran"
    if measured.data is None:
        return measured.problem or "the measure stage gave nothing"
    # The harness's networks are all captured untrained (the measure stage trains them lazily); a
    # student's loop trains the first of several alone in the first run (PlannedData.trained_draws)
    if len(obs.models) not in ({spec.draws} if spec.trainer == "harness" else {1, spec.draws}):
        return f"{len(obs.models)} network(s) were captured for {spec.draws} training(s)"
    if not 1 <= len(measured.data.predictions) <= spec.draws:
        return f"the measure stage gave {len(measured.data.predictions)} result(s) for {spec.draws} training(s)"
    for draw, (captured, row, problem) in enumerate(zip(obs.models, measured.data.predictions, measured.data.problems)):
        which = f"training {draw + 1}: " if spec.draws > 1 else ""
        if captured.problem or not captured.graphs or captured.graphs[0] is None:
            return which + captured.why_not(0)
        if row is None:
            return which + (problem or "its graph gave no predictions")
        if list(row.shape) != [n] or row.dtype.kind not in "iu":
            return which + f"expected one class per scored image ({n}), got {row.dtype} of shape {list(row.shape)}"
    return ""


def _predict(spec: AccuracySpec, captured: CapturedModel, images: np.ndarray,
             weights: list[Any] | None = None) -> np.ndarray:
    """The class the captured network predicts for each of ``images``: its eval-mode graph (the
    first) run with ``weights`` (default: the shipped ones) on ``EVAL_BATCH`` images at a time (the
    shape it was captured on; the last batch is filled up with copies of its first image, whose
    outputs are dropped)."""
    import torch

    _must_be_whole(captured)
    if weights is None:
        weights = model_capture.weight_tensors(captured, seed=0)  # every value shipped: the seed draws nothing
    graph = captured.graphs[0]
    out = []
    for first in range(0, len(images), EVAL_BATCH):
        chunk = images[first:first + EVAL_BATCH]
        x = model_inputs(spec, _batch_of(torch.from_numpy(chunk), EVAL_BATCH))
        if list(x.shape) != captured.input_shapes[0]:
            raise model_capture.Refused(f"it was captured on inputs of shape {captured.input_shapes[0]}, and the "
                                        f"scored images make inputs of shape {list(x.shape)}")
        with torch.no_grad():
            logits = (model_capture.run_on(captured, 0, x, weights) if first == 0
                      else artifacts.run(graph, [x, *weights])[0])
        if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] != EVAL_BATCH:
            shape = list(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
            raise model_capture.Refused(f"its output for a batch of {EVAL_BATCH} images is {shape}, not one row "
                                        "of class scores per image")
        out.append(logits.argmax(dim=1)[:len(chunk)].numpy().astype(np.int64))
    return np.concatenate(out) if out else np.empty(0, dtype=np.int64)


def _must_be_whole(captured: CapturedModel) -> None:
    """``Refused`` unless there is an eval-mode graph first and every weight's values travelled."""
    if captured.problem or not captured.graphs or captured.graphs[0] is None:
        raise model_capture.Refused(captured.why_not(0))
    if captured.modes and captured.modes[0] != "eval":
        raise model_capture.Refused("its first graph is not of the network in evaluation mode")
    if any(w.values is None for w in captured.weights):
        raise model_capture.Refused("its weights were too large to travel whole, so it cannot be scored")


def _first_passes(given: dict[str, Any], images: int) -> Callable[[np.ndarray], bool] | None:
    """Whether a draw's predictions reach the threshold the host gave with the scored labels
    (``Accuracy.host_inputs``, ``draws`` above 1), or None where it gave none."""
    labels, classes, needed = given.get("labels"), given.get("classes"), given.get("needed")
    if not (isinstance(labels, np.ndarray) and labels.shape == (images,) and isinstance(classes, int)
            and isinstance(needed, float)):
        return None
    return lambda predictions: score(predictions, labels, classes).accuracy >= needed


def _train_and_predict(spec: AccuracySpec, obs: AccuracyObservation, images: np.ndarray,
                       first_passes: Callable[[np.ndarray], bool] | None = None) -> AccuracyMeasurement:
    """``trainer: harness``, in the measure stage: each draw's network, as the student's code
    built it, trained by ``grader.train`` through its training-mode graphs on the profile's
    training images, from the host's seed; then its eval-mode graph with the trained weights
    predicts the scored ``images``. Nothing of the training is the student's process's to choose:
    the loop, its hyper-parameters, the data, the seed and the device are the host's. Where
    ``first_passes`` says the first draw reached the threshold, the others are not trained
    (``judged_draw`` would not look at them)."""
    import torch

    from grader import train as harness

    assert spec.run is not None
    x, y = _images(spec, train=True)
    sizes = training_batches(len(y), spec.batch_size)
    feature_shape = list(harness_inputs(spec, x[:1], False).shape[1:])
    measured = AccuracyMeasurement(predictions=[], problems=[])
    start = time.monotonic()
    for draw, captured in enumerate(obs.models):
        initial = trained = None
        problem = ""
        try:
            _must_be_whole(captured)
            graphs = _training_graphs(captured, sizes, feature_shape)
            weights = model_capture.weight_tensors(captured, seed=0)
            initial = _predict(spec, captured, images, weights)
            network = model_capture.as_module(captured, weights, graphs)
            with numerics.pinned():
                done = harness.train(network, _inputs(spec, x, as_float=False), y,
                                     _settings(spec, spec.run.train_seed + DRAW_SEED_STEP * draw,
                                               channels_last=obs.channels_last), device=spec.run.device)
            measured.trained_on = device_kind(torch.device(done.device))
            network = torch.nn.Module.to(done.model, "cpu")
            # laid out afresh, as weights that came through an array are (a channels-last [4, 1, 3, 3]
            # also counts as contiguous, and would make a convolution's output channels-last)
            trained_weights = [torch.Tensor.clone(torch.Tensor.detach(t), memory_format=torch.contiguous_format)
                               for t in network.current()]
            trained = _predict(spec, captured, images, trained_weights)
        except (model_capture.Refused, artifacts.ArtifactError) as exc:
            problem = str(exc)[:500]
        except Exception as exc:  # noqa: BLE001 - a crafted graph may fail anywhere in autograd or the optimiser
            problem = f"training the captured network failed: {type(exc).__name__}: {str(exc)[:400]}"
        measured.predictions.append(trained)
        measured.initial.append(initial)
        measured.problems.append(problem)
        if draw == 0 and trained is not None and first_passes is not None and first_passes(trained):
            break
    measured.seconds = round(time.monotonic() - start, 3)
    return measured


def training_batches(images: int, batch_size: int) -> list[int]:
    """The batch sizes the harness's loop trains on: full batches, and the last one's where it is short."""
    sizes = [min(images, batch_size)]
    if images > batch_size and images % batch_size:
        sizes.append(images % batch_size)
    return sizes


def _training_graphs(captured: CapturedModel, sizes: list[int],
                     feature_shape: list[int]) -> dict[tuple[str, int], artifacts.Graph]:
    """The eval-mode graph and one training-mode graph per batch size, each checked, by (mode,
    batch size); ``Refused`` when one the loop needs is missing or was traced on another shape."""
    graphs = {("eval", EVAL_BATCH): model_capture.checked(captured, 0)}
    for size in sizes:
        wanted = [size, *feature_shape]
        index = next((i for i, (shape, mode) in enumerate(zip(captured.input_shapes, captured.modes))
                      if mode == "train" and shape == wanted), None)
        if index is None or index >= len(captured.graphs) or captured.graphs[index] is None:
            why = captured.why_not(index) if index is not None else "none was captured"
            raise model_capture.Refused(f"no training-mode graph for a batch of {size} images of shape "
                                        f"{wanted[1:]}: {why}")
        graphs[("train", size)] = model_capture.checked(captured, index)
    return graphs


def _batch_of(images: Any, size: int) -> Any:
    """``images`` cut or filled up (with copies of the first) to exactly ``size``."""
    import torch

    if len(images) >= size:
        return images[:size]
    return torch.cat([images, images[:1].expand(size - len(images), *images.shape[1:])])


def _threshold(spec: AccuracySpec, truth: AccuracyTruth, device: str) -> Threshold:
    absolute = spec.min_accuracy_for(truth.profile)
    if spec.threshold == "absolute":
        if absolute is None:
            raise GraderError(f"check {spec.id!r} has no min_accuracy for profile {truth.profile}",
                              where=f"check {spec.id!r}", hint="give min_accuracy for every profile, or one number")
        return Threshold(absolute, f"the rubric's minimum for profile {truth.profile}")
    stats = truth.calibrations.get(device)
    if stats is not None:
        return calibrated_threshold(stats.accuracies, len(truth.labels), spec.floor)
    why = truth.stale.get(device) or f"no calibration for profile {truth.profile} on {device} ({truth.data} data)"
    if absolute is not None:
        return Threshold(absolute, f"the rubric's minimum: {why}")
    raise NotCalibrated(why, where=f"check {spec.id!r}", hint=truth.calibrate_hint)


# ---------------------------------------------------------------- probe helpers


def device_kind(device: Any) -> str:
    """``cpu``, or ``cuda:<device name>``: calibrations are kept per kind of device."""
    import torch

    return f"cuda:{torch.cuda.get_device_name(device)}" if device.type == "cuda" else device.type


def _images(spec: AccuracySpec, train: bool) -> tuple[Any, Any]:
    """The profile's subset of one split: uint8 images ``[N, C, H, W]`` and int64 labels."""
    assert spec.run is not None
    images, labels = _split(spec.run.dataset, spec.run.root, train)
    size, stream = (spec.train_subset, TRAIN_STREAM) if train else (spec.test_subset, TEST_STREAM)
    import torch

    index = torch.from_numpy(subset(len(labels), size, spec.run.subset_seed, stream))
    return images[index], labels[index]


def model_inputs(spec: AccuracySpec, images: Any) -> Any:
    """Images as the trained network is scored on them, float32 on the CPU, contiguous: what
    ``grader.train.predict`` gives a network (the harness's loop's uint8 scaled to [0, 1], a
    student's loop's floats), normalised and flattened as the handout says."""
    import torch

    x = _inputs(spec, images, as_float=True)
    if x.dim() == 3:
        x = x.unsqueeze(1)
    return torch.Tensor.contiguous(x)


def _inputs(spec: AccuracySpec, images: Any, as_float: bool) -> Any:
    """Images as the model sees them: uint8 for the harness's loop (it scales them on the device),
    else float in [0, 1], normalised as the handout says; one row each with ``flatten``."""
    x = images
    if spec.normalize is not None or as_float:
        x = images.float().div_(255)
    if spec.normalize is not None:
        import torch

        mean = torch.tensor(spec.normalize.mean).view(1, -1, 1, 1)
        std = torch.tensor(spec.normalize.std).view(1, -1, 1, 1)
        x = (x - mean) / std
    return x.reshape(len(x), -1) if spec.flatten else x


def _settings(spec: AccuracySpec, seed: int, channels_last: bool) -> dict[str, Any]:
    """The harness's hyper-parameters for one training: the rubric's, the check's own fields, the seed."""
    from grader import train as harness

    unknown = sorted(set(spec.hyperparameters) - set(harness.HYPERPARAMETERS))
    if unknown:
        raise GraderError(f"unknown hyper-parameter(s) {', '.join(unknown)}", where=f"check {spec.id!r}",
                          hint=f"known: {', '.join(harness.HYPERPARAMETERS)}")
    return {**spec.hyperparameters, "channels_last": channels_last, "epochs": spec.epochs,
            "batch_size": spec.batch_size, "lr": spec.lr, "seed": seed}


def _channels_last(spec: AccuracySpec, ctx: ProbeContext, model: Any, name: str, images: Any) -> bool:
    """The memory format the harness's loop gives this network (``grader.train.channels_last_for``
    on the built module): its training graphs are traced in it, and the measure stage trains in it.
    A wrong answer costs only speed or a failed graph, never points it did not earn."""
    from grader import train as harness

    with ctx.student_code(f"listing the layers of {name}"):
        return harness.channels_last_for(spec.hyperparameters.get("channels_last", "auto"), model, images)


def harness_inputs(spec: AccuracySpec, images: Any, channels_last: bool) -> Any:
    """Training images as the harness's loop hands them to the network, on the CPU."""
    import torch

    from grader import train as harness

    return harness.as_inputs(_inputs(spec, images, as_float=False), torch.device("cpu"), channels_last)


def _train_with_student_loop(spec: AccuracySpec, ctx: ProbeContext, model: Any, train: tuple[Any, Any],
                             test: tuple[Any, Any], seed: int) -> None:
    """Call the student's function on the harness's loaders (shuffled training images, test images
    in order, both as the handout prepares them); it trains ``model`` in place."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from grader.checks.training import in_globals

    (x, y), (test_x, test_y) = train, test
    loaders = {
        "train": DataLoader(TensorDataset(_inputs(spec, x, True), y), batch_size=spec.batch_size, shuffle=True,
                            generator=torch.Generator().manual_seed(seed)),
        "test": DataLoader(TensorDataset(_inputs(spec, test_x, True), test_y), batch_size=spec.batch_size)}
    values = {"$network": model, "$epochs": spec.epochs, "$lr": spec.lr, "$train_data": loaders["train"], "$test_data": loaders["test"],
              "$device": torch.device(spec.run.device or ("cuda" if torch.cuda.is_available() else "cpu"))}

    def given(value: Any) -> Any:
        return values[value] if isinstance(value, str) and value in PLACEHOLDERS else value

    fn = ctx.resolve(spec.train_fn)  # type: ignore[arg-type]
    name = ctx.found_name(spec.train_fn)  # type: ignore[arg-type]
    args, kwargs = [given(a) for a in spec.train_args], {k: given(v) for k, v in spec.train_kwargs.items()}
    replacements = {global_name: loaders[split] for key, split in spec.data_globals.items()
                    for global_name in ctx.global_names(key)}
    with in_globals(fn, replacements) as replaced:
        if spec.data_globals and not replaced and "$train_data" not in [*spec.train_args, *spec.train_kwargs.values()]:
            raise StudentRaised("handing the harness's data to the training function", TrainingDataUnreachable(
                f"{name} reads none of the globals {', '.join(sorted(replacements))}, so the harness "
                          "cannot hand it the training data; define the loaders at the top level of the notebook "
                          "under one of these names and let the training function use them"))
        with ctx.student_code(f"training with {name} for {spec.epochs} epoch(s) on {len(y)} images"):
            fn(*args, **kwargs)


class TrainingDataUnreachable(Exception):
    """The student's training function offers no way to give it the harness's data."""
