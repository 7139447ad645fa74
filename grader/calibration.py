"""Calibrated accuracy thresholds: train the reference several times, keep the mean and spread.

``grader calibrate ASSIGNMENT --seeds N`` runs every ``threshold: calibrated`` accuracy check on
the reference N times (seeds ``seed``, ``seed + 1``, ...) and stores, per profile, device kind and
data origin, the mean and standard deviation of its test accuracy in a YAML file next to the
rubric: ``<rubric folder>/calibration/<rubric name>.yaml`` (a folder of its own, so nothing that
lists ``*.yaml`` rubrics mistakes it for one).

The reference is trained in the trusted host process, by the very probe the sandbox runs on a
submission: the reference is trusted code that ``references`` already imports there, a sandbox
would only add start-up time, and running the same probe (same data subset, same seeding,
same deterministic settings) keeps calibration and grading comparable.

A submission passes when its accuracy is at least::

    mean - max(3 * std, 2 * sqrt(mean * (1 - mean) / n_test), floor)

three standard deviations of the reference over seeds; twice the binomial standard error of an
accuracy measured on ``n_test`` images (what the test subset alone makes it wobble); and the
rubric's ``floor``, for a reference so stable that both are tiny.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from grader.errors import GraderError

if TYPE_CHECKING:
    from grader.checks.accuracy import AccuracySpec
    from grader.rubric import LoadedRubric

FOLDER = "calibration"
# Fields of an accuracy check that do not change what training produces.
NOT_TRAINING = {"id", "title", "points", "visibility", "requires", "partial_credit", "threshold", "min_accuracy",
                "floor", "run"}


# ---------------------------------------------------------------- the pass rule


@dataclass(frozen=True)
class Threshold:
    """The accuracy a submission needs, and why, in words for the message."""

    needed: float
    why: str


def calibrated_threshold(mean: float, std: float, n_test: int, floor: float) -> Threshold:
    """``mean - max(3σ, 2·SE, floor)``; ``why`` names the mean and the term that won."""
    standard_error = math.sqrt(max(mean * (1 - mean), 0.0) / n_test)
    margins = {"3σ": 3 * std, "2 SE": 2 * standard_error, "floor": floor}
    term = max(margins, key=lambda name: margins[name])
    return Threshold(mean - margins[term], f"calibrated: mean {mean:.3f}, {term} {margins[term]:.3f}")


# ---------------------------------------------------------------- the file


class CheckStats(BaseModel):
    """One check's accuracies over the seeds of a calibration run."""

    model_config = ConfigDict(extra="forbid")
    mean: float
    std: float = Field(description="sample standard deviation over the seeds")
    accuracies: list[float]
    test_images: int
    fingerprint: str = Field(description="hash of what training depends on (the check, its targets, the data "
                                         "set, the reference); a different one means the calibration is stale")


class CalibrationRun(BaseModel):
    """One ``grader calibrate`` run: one profile, one device kind, one data origin."""

    model_config = ConfigDict(extra="forbid")
    profile: str
    device: str = Field(description="cpu, or cuda:<device name>")
    data: str = Field(description="real or synthetic")
    date: str
    seeds: list[int]
    grader_version: str
    checks: dict[str, CheckStats]


class CalibrationFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    assignment: str
    runs: list[CalibrationRun] = []


HEADER = ("# Calibrated accuracy thresholds, written by `grader calibrate`; run it again rather than editing.\n"
          "# A submission needs accuracy >= mean - max(3 * std, 2 * sqrt(mean * (1 - mean) / test_images), floor).\n")


def path_for(rubric: "LoadedRubric") -> Path:
    return rubric.path.parent / FOLDER / f"{rubric.path.stem}.yaml"


def read(rubric: "LoadedRubric") -> CalibrationFile:
    """The rubric's calibration file; an empty one when there is none yet."""
    path = path_for(rubric)
    if not path.is_file():
        return CalibrationFile(assignment=rubric.model.assignment)
    try:
        return CalibrationFile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (yaml.YAMLError, ValidationError) as exc:
        raise GraderError(f"the calibration file cannot be read: {str(exc).splitlines()[0]}", where=str(path),
                          hint=f"delete it and run `grader calibrate {rubric.model.assignment}` again") from None


def write(rubric: "LoadedRubric", run: CalibrationRun) -> Path:
    """Add ``run`` to the rubric's file, replacing an earlier run of the same profile, device and data."""
    from grader.fsutil import atomic_write

    current = read(rubric)
    kept = [r for r in current.runs if (r.profile, r.device, r.data) != (run.profile, run.device, run.data)]
    document = CalibrationFile(assignment=rubric.model.assignment, runs=[*kept, run])
    path = path_for(rubric)
    atomic_write(path, HEADER + yaml.safe_dump(document.model_dump(), sort_keys=False, allow_unicode=True))
    return path


def fingerprint(rubric: "LoadedRubric", spec: "AccuracySpec", reference_hash: str) -> str:
    """What the reference's accuracy depends on, hashed: the check (with the profile applied) minus
    its points and threshold, the targets it builds and calls, the data set, the seed, the reference."""
    training = spec.model_dump(mode="json", exclude=NOT_TRAINING)
    targets = {key: rubric.model.targets[key].model_dump(mode="json") for key in spec.target_refs()}
    payload = json.dumps([training, targets, rubric.model.data.dataset, rubric.model.seed, reference_hash],
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def command(rubric: "LoadedRubric", profile: str) -> str:
    """The command that calibrates this rubric for ``profile``, for messages."""
    return f"grader calibrate {rubric.path} --seeds 5 --profile {profile}"


# ---------------------------------------------------------------- calibrating


def calibrate(rubric: "LoadedRubric", seeds: int, requested_profile: str = "auto", data_root: Path | None = None,
              allow_synthetic: bool = True, progress: Callable[[str], None] = lambda line: None,
              device: str | None = None, download: bool = False) -> Path:
    """Train the reference ``seeds`` times for every calibrated accuracy check; write the file.

    ``device`` pins where the reference trains (``cpu`` on a GPU machine calibrates for sandboxes
    that get no GPU); by default CUDA when visible, as in a sandbox given a GPU.

    Returns the path written. Raises ``GraderError`` when the rubric has no calibrated accuracy
    check, when fewer than two seeds are asked for (no spread from one run), or when the
    reference fails.
    """
    from grader import __version__, data, profiles, references
    from grader.checks.accuracy import AccuracySpec, score

    wanted = [c for c in rubric.model.checks if isinstance(c, AccuracySpec) and c.threshold == "calibrated"]
    if not wanted:
        raise GraderError("the rubric has no accuracy check with `threshold: calibrated`", where=str(rubric.path),
                          hint="nothing to calibrate; absolute thresholds (min_accuracy) need no calibration")
    if seeds < 2:
        raise GraderError(f"{seeds} seed(s) give no standard deviation", where="--seeds", hint="use at least 2 (5 is usual)")
    found = data.resolve(rubric.model.data.dataset, data_root, allow_synthetic, download=download)
    profile = profiles.choose(requested_profile, found.origin)
    namespaces = references.load_namespaces(rubric)
    reference_hash = profiles.reference_hash(rubric)
    seed_list = [rubric.model.seed + i for i in range(seeds)]
    stats: dict[str, CheckStats] = {}
    devices = set()
    for spec in wanted:
        planned = profiles.planned_spec(rubric, spec, profile, found, device)
        truth = profiles.truth_for(rubric, planned, profile, found)
        accuracies = []
        for seed in seed_list:
            obs = _probe_reference(rubric, planned, namespaces, seed)
            devices.add(obs.device)
            accuracies.append(score(obs.predictions, truth.labels, truth.classes).accuracy)
            progress(f"{spec.id}: seed {seed}: accuracy {accuracies[-1]:.4f} on {len(truth.labels)} test images "
                     f"({obs.device}, {obs.seconds:.1f}s)")
        mean = sum(accuracies) / len(accuracies)
        std = math.sqrt(sum((a - mean) ** 2 for a in accuracies) / (len(accuracies) - 1))
        stats[spec.id] = CheckStats(mean=round(mean, 6), std=round(std, 6), accuracies=[round(a, 6) for a in accuracies],
                                    test_images=len(truth.labels), fingerprint=fingerprint(rubric, planned, reference_hash))
    if len(devices) != 1:
        raise GraderError(f"the reference trained on several devices ({', '.join(sorted(devices))})",
                          where="grader calibrate", hint="make one device visible (CUDA_VISIBLE_DEVICES)")
    run = CalibrationRun(profile=profile, device=devices.pop(), data=found.origin,
                         date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                         seeds=seed_list, grader_version=__version__, checks=stats)
    return write(rubric, run)


def _probe_reference(rubric: "LoadedRubric", spec: "AccuracySpec", namespaces: list[Any], seed: int) -> Any:
    """The accuracy probe on the reference, seeded as the sandbox seeds it; reference failures are
    the rubric's or the reference's problem, said as such."""
    from grader.checks.accuracy import Accuracy
    from grader.checks.base import ProbeContext, StudentRaised, Unresolved

    ctx = ProbeContext(namespaces=namespaces, targets=rubric.model.targets, seed=seed, execution={"form": "module"})
    where = f"{rubric.path.name}: check {spec.id!r}"
    try:
        ctx.seed_everything()
        return Accuracy.probe(spec, ctx)
    except Unresolved as exc:
        raise GraderError(f"the reference has no {exc.spec.label()} ({exc.resolution.problem})", where=where,
                          hint=f"fix reference/{rubric.model.assignment} or the target in the rubric") from None
    except StudentRaised as exc:
        if isinstance(exc.exc, KeyboardInterrupt):  # Ctrl-C, or SIGTERM (the CLI turns it into one), while it trained
            raise exc.exc from None
        raise GraderError(f"the reference failed while {exc.during}: {type(exc.exc).__name__}: {exc.exc}",
                          where=where, hint="the reference must train cleanly") from None
