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

Seeds run side by side in ``jobs`` worker processes, each under the pinned numeric configuration
(``grader.numerics``), which the file records: a calibration made under another one is flagged,
never applied (``grader.profiles.truth_for``).

A submission passes when its accuracy is at least::

    min(lowest - 2 * sqrt(lowest * (1 - lowest) / n_test), mean - floor)

the reference's lowest accuracy over the seeds (a low empirical quantile: with 30 seeds, about the
3rd percentile), less twice the binomial standard error of an accuracy measured on ``n_test``
images, and never closer to the mean than the rubric's ``floor``. A rule on the mean and the
standard deviation alone (mean - 3σ from 3 to 5 seeds) failed the reference itself on 11-13% of
fresh seeds: training accuracy has a long lower tail that few seeds do not show. Each check also
stores the rate at which the reference would fail its own threshold, estimated from a normal fit
of the seeds (``false_fail_estimate``); ``grader calibrate`` prints it and warns above
``FALSE_FAIL_GOAL``. Fewer than ``ENOUGH_SEEDS`` seeds give a warning: the tail is not measured.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import hashlib
import json
import math
import multiprocessing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from grader.data import evaluation
from grader.errors import GraderError

if TYPE_CHECKING:
    from grader.checks.accuracy import AccuracySpec
    from grader.rubric import LoadedRubric

FOLDER = "calibration"
# Fields of an accuracy check that do not change what training produces.
NOT_TRAINING = {"id", "title", "points", "visibility", "requires", "partial_credit", "threshold", "min_accuracy",
                "floor", "run", "draws"}  # draws: a calibration is of single trainings, whatever the check judges on


# ---------------------------------------------------------------- the pass rule


ENOUGH_SEEDS = 20
DEFAULT_SEEDS = 30
FALSE_FAIL_GOAL = 1e-3


@dataclass(frozen=True)
class Threshold:
    """The accuracy a submission needs, and why, in words for the message."""

    needed: float
    why: str


def calibrated_threshold(accuracies: list[float], n_test: int, floor: float) -> Threshold:
    """The lowest seed's accuracy less 2 binomial SE, at most ``mean - floor``; ``why`` names the
    term that won."""
    mean, lowest = sum(accuracies) / len(accuracies), min(accuracies)
    margin = 2 * math.sqrt(max(lowest * (1 - lowest), 0.0) / n_test)
    seeds = f"{len(accuracies)} seed{'s' if len(accuracies) != 1 else ''}"
    if lowest - margin <= mean - floor:
        return Threshold(lowest - margin, f"calibrated over {seeds}: lowest {lowest:.3f} less 2 SE {margin:.3f}")
    return Threshold(mean - floor, f"calibrated over {seeds}: mean {mean:.3f} less floor {floor:.3f}")


SPREAD_WARNING = 0.2  # the seeds' accuracies this far apart: one training says little about a submission


def doubts(stats: "CheckStats", classes: int) -> list[str]:
    """What a person should know about a calibration before trusting it: a threshold at or near
    chance (it fails only networks that learn nothing), or seeds that disagree widely."""
    said = []
    chance = 1 / classes if classes else 0.0
    if stats.threshold is not None and stats.threshold < 2 * chance:
        said.append(f"the threshold {stats.threshold:.3f} is at or near chance ({chance:.3f} for {classes} classes): "
                    "it fails only networks that learn nothing; give the check more epochs on this profile "
                    "(profiles: <profile>: check_epochs) or an absolute min_accuracy")
    lowest, highest = min(stats.accuracies), max(stats.accuracies)
    if highest - lowest > SPREAD_WARNING:
        said.append(f"the seeds disagree widely (accuracies from {lowest:.3f} to {highest:.3f}): one training says "
                    "little about a submission; a longer budget, or `draws: 3` (a first training that falls short "
                    "is followed by two more), narrows it")
    return said


def false_fail_estimate(accuracies: list[float], needed: float) -> float:
    """How often the reference itself would fall below ``needed`` on a fresh seed, from a normal
    fit of its accuracies over the calibration's seeds (0 when they do not vary)."""
    mean = sum(accuracies) / len(accuracies)
    std = _sample_std(accuracies)
    if std == 0:
        return 0.0 if needed <= mean else 1.0
    return 0.5 * math.erfc((mean - needed) / (std * math.sqrt(2)))


def judged_rate(single: float, draws: int) -> float:
    """How often a check with ``draws`` fails correct work (``checks.accuracy.judged_draw``) when
    one training falls short independently at rate ``single``: the first falls short, and so do
    enough of the others that most of all of them do (for 3 draws, one of the other two)."""
    others, need = draws - 1, draws // 2
    return single * sum(math.comb(others, k) * single ** k * (1 - single) ** (others - k)
                        for k in range(need, others + 1)) if draws > 1 else single


def _sample_std(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0


# ---------------------------------------------------------------- the file


class CheckStats(BaseModel):
    """One check's accuracies over the seeds of a calibration run."""

    model_config = ConfigDict(extra="forbid")
    mean: float
    std: float = Field(description="sample standard deviation over the seeds")
    accuracies: list[float]
    test_images: int
    threshold: float | None = Field(None, description="the accuracy needed on the check's floor at calibration time "
                                                      "(for people reading the file; grading recomputes it)")
    false_fail_estimate: float | None = Field(None, description="how often the reference would fail its own "
                                                                "threshold on a fresh seed (normal fit)")
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
    numerics: dict[str, Any] = Field({}, description="the numeric configuration it trained under (grader.numerics)")
    checks: dict[str, CheckStats]


class CalibrationFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    assignment: str
    runs: list[CalibrationRun] = []


HEADER = ("# Calibrated accuracy thresholds, written by `grader calibrate`; run it again rather than editing.\n"
          "# A submission needs accuracy >= min(lowest - 2 * sqrt(lowest * (1 - lowest) / test_images), mean - floor),\n"
          "# lowest and mean over the seeds' accuracies.\n")


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
    its points and threshold, the reference objects it builds and calls (by where they are defined,
    so loosening how a target is found in student work leaves the calibration current), the data
    set, the seed, the reference, and which images are scored (``grader.data.evaluation``)."""
    training = spec.model_dump(mode="json", exclude=NOT_TRAINING)
    objects = _reference_objects(rubric, tuple(spec.target_refs()), reference_hash)
    payload = json.dumps([training, objects, rubric.model.data.dataset, rubric.model.seed, reference_hash,
                          evaluation.SCORED_ON], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


_objects_cache: dict[tuple[str, tuple[str, ...], str], list[str]] = {}


def _reference_objects(rubric: "LoadedRubric", keys: tuple[str, ...], reference_hash: str) -> list[str]:
    """``module.qualname`` of the reference object each target resolves to (cached per process)."""
    from grader import references
    from grader.targets import resolve

    cache_key = (str(rubric.path), keys, reference_hash)
    if cache_key not in _objects_cache:
        namespaces = references.load_namespaces(rubric)
        names = []
        for key in keys:
            found = resolve(rubric.model.targets[key], namespaces)
            obj = found.obj if found.ok else None
            names.append(f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', found.found_as)}"
                         if found.ok else f"unresolved {key}")
        _objects_cache[cache_key] = names
    return _objects_cache[cache_key]


def command(rubric: "LoadedRubric", profile: str) -> str:
    """The command that calibrates this rubric for ``profile``, for messages."""
    return f"grader calibrate {rubric.path} --seeds {DEFAULT_SEEDS} --profile {profile}"


def hint(rubric: "LoadedRubric", profile: str) -> str:
    """What to do where no calibration applies: calibrate; in a student kit, which holds no
    reference to calibrate with, ask the course (or try the other profile or data)."""
    if rubric.kit_dir:
        return ("this kit holds no calibration for it; the check is graded when you submit (course staff can "
                "calibrate it and release the kit again)")
    return f"run `{command(rubric, profile)}`"


# ---------------------------------------------------------------- calibrating


def calibrate(rubric: "LoadedRubric", seeds: int, requested_profile: str = "auto", data_root: Path | None = None,
              allow_synthetic: bool = True, progress: Callable[[str], None] = lambda line: None,
              device: str | None = None, download: bool = False, jobs: int = 1,
              only: set[str] | None = None) -> Path:
    """Train the reference ``seeds`` times for every calibrated accuracy check (or the ones in
    ``only``, keeping the other checks' stats of the same run on file); write the file.

    ``device`` pins where the reference trains (``cpu`` on a GPU machine calibrates for sandboxes
    that get no GPU); by default CUDA when visible, as in a sandbox given a GPU. ``jobs`` seeds
    train at once, each in its own process with the pinned number of math threads, so the
    accuracies do not depend on ``jobs``.

    Returns the path written. Raises ``GraderError`` when the rubric has no calibrated accuracy
    check, when fewer than two seeds are asked for (no spread from one run), or when the
    reference fails.
    """
    from grader import __version__, data, numerics, profiles
    from grader.checks.accuracy import AccuracySpec

    wanted = [c for c in rubric.model.checks if isinstance(c, AccuracySpec) and c.threshold == "calibrated"]
    if not wanted:
        raise GraderError("the rubric has no accuracy check with `threshold: calibrated`", where=str(rubric.path),
                          hint="nothing to calibrate; absolute thresholds (min_accuracy) need no calibration")
    if only:
        unknown = sorted(only - {c.id for c in wanted})
        if unknown:
            raise GraderError(f"no calibrated accuracy check {', '.join(map(repr, unknown))} in the rubric",
                              where="--check", hint=f"one of {', '.join(c.id for c in wanted)}")
        wanted = [c for c in wanted if c.id in only]
    if seeds < 2:
        raise GraderError(f"{seeds} seed(s) give no standard deviation", where="--seeds",
                          hint=f"use at least {ENOUGH_SEEDS} ({DEFAULT_SEEDS} is usual)")
    if seeds < ENOUGH_SEEDS:
        progress(f"warning: {seeds} seeds cannot show the lower tail of the reference's accuracy; thresholds from "
                 f"them may fail correct work (use --seeds {DEFAULT_SEEDS})")
    found = data.resolve(rubric.model.data.dataset, data_root, allow_synthetic, download=download)
    profile = profiles.choose(requested_profile, found.origin)
    reference_hash = profiles.reference_hash(rubric)
    seed_list = [rubric.model.seed + i for i in range(seeds)]
    planned = {spec.id: profiles.planned_spec(rubric, spec, profile, found, device) for spec in wanted}
    truths = {check_id: profiles.truth_for(rubric, spec, profile, found) for check_id, spec in planned.items()}
    accuracies, trained_on = reference_accuracies(rubric, planned, truths, seed_list, jobs, progress)
    stats = {check_id: _stats(rubric, planned[check_id], [by_seed[s] for s in seed_list],
                              len(truths[check_id].labels), reference_hash)
             for check_id, by_seed in accuracies.items()}
    for check_id, check_stats in stats.items():
        for doubt in doubts(check_stats, truths[check_id].classes):
            progress(f"warning: {check_id}: {doubt}")
    run = CalibrationRun(profile=profile, device=trained_on, data=found.origin,
                         date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                         seeds=seed_list, grader_version=__version__, numerics=numerics.describe(trained_on),
                         checks=stats)
    if only:
        run.checks = _kept_from_file(rubric, run) | stats
    return write(rubric, run)


def _kept_from_file(rubric: "LoadedRubric", run: CalibrationRun) -> dict[str, CheckStats]:
    """The other checks' stats of the run on file that ``run`` replaces: kept only when that run
    trained on the same seeds under the same numeric configuration, so the file stays one run."""
    from grader import numerics

    for old in read(rubric).runs:
        if (old.profile, old.device, old.data) == (run.profile, run.device, run.data):
            if old.seeds == run.seeds and not numerics.differences(old.numerics, run.numerics):
                return {check_id: stats for check_id, stats in old.checks.items() if check_id not in run.checks}
            raise GraderError("the calibration on file used other seeds or another numeric configuration, so one "
                              "check cannot be redone alone", where=str(path_for(rubric)),
                              hint="calibrate every check (leave out --check)")
    return {}


def reference_accuracies(rubric: "LoadedRubric", planned: dict[str, "AccuracySpec"], truths: dict[str, Any],
                         seeds: list[int], jobs: int = 1, progress: Callable[[str], None] = lambda line: None
                         ) -> tuple[dict[str, dict[int, float]], str]:
    """The reference's test accuracy for every planned check and seed (``{check: {seed: accuracy}}``)
    and the device kind it trained on; ``truths`` are the checks' ``AccuracyTruth``s."""
    from grader.checks.accuracy import score

    accuracies: dict[str, dict[int, float]] = {check_id: {} for check_id in planned}
    devices = set()
    images = {check_id: truths[check_id].images for check_id in planned}
    for check_id, seed, (predictions, where, seconds) in _train_seeds(rubric, planned, seeds, jobs, images):
        truth = truths[check_id]
        accuracies[check_id][seed] = score(predictions, truth.labels, truth.classes).accuracy
        devices.add(where)
        progress(f"{check_id}: seed {seed}: accuracy {accuracies[check_id][seed]:.4f} on {truth.scored_on} "
                 f"({where}, {seconds:.1f}s)")
    if len(devices) != 1:
        raise GraderError(f"the reference trained on several devices ({', '.join(sorted(devices))})",
                          where="grader calibrate", hint="make one device visible (CUDA_VISIBLE_DEVICES)")
    return accuracies, devices.pop()


def _stats(rubric: "LoadedRubric", planned: "AccuracySpec", accuracies: list[float], n_test: int,
           reference_hash: str) -> CheckStats:
    threshold = calibrated_threshold(accuracies, n_test, planned.floor).needed
    return CheckStats(mean=round(sum(accuracies) / len(accuracies), 6), std=round(_sample_std(accuracies), 6),
                      accuracies=[round(a, 6) for a in accuracies], test_images=n_test,
                      fingerprint=fingerprint(rubric, planned, reference_hash), threshold=round(threshold, 6),
                      false_fail_estimate=float(f"{false_fail_estimate(accuracies, threshold):.3g}"))


Trained = tuple[Any, str, float]  # (predictions, device kind, seconds)


def _train_seeds(rubric: "LoadedRubric", planned: dict[str, "AccuracySpec"], seeds: list[int],
                 jobs: int, images: dict[str, Any]) -> Iterator[tuple[str, int, Trained]]:
    """(check id, seed, what training gave) for every check and seed, in the order they finish;
    ``images`` are each check's scored images."""
    work = [(check_id, seed) for check_id in planned for seed in seeds]
    if jobs <= 1:
        from grader import references

        namespaces = references.load_namespaces(rubric)
        for check_id, seed in work:
            yield check_id, seed, _trained(rubric, planned[check_id], namespaces, seed, images[check_id])
        return
    # spawn, not fork: a fresh interpreter per worker, with no state of this one's torch threads
    context = multiprocessing.get_context("spawn")
    specs = {check_id: (spec.model_dump(mode="json"), spec.run.model_dump()) for check_id, spec in planned.items()}
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context, initializer=_worker_start,
                                                initargs=(str(rubric.path), specs, images)) as pool:
        futures = {pool.submit(_worker_train, check_id, seed): (check_id, seed) for check_id, seed in work}
        try:
            for future in concurrent.futures.as_completed(futures):
                check_id, seed = futures[future]
                yield check_id, seed, future.result()
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


_worker: dict[str, Any] = {}


def _worker_start(rubric_path: str, specs: dict[str, tuple[dict[str, Any], dict[str, Any]]],
                  images: dict[str, Any]) -> None:
    import signal

    from grader import references
    from grader.checks.accuracy import AccuracySpec, PlannedData
    from grader.rubric import load

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the pool
    _worker["rubric"] = rubric = load(Path(rubric_path))
    _worker["images"] = images
    _worker["namespaces"] = references.load_namespaces(rubric)
    _worker["specs"] = {check_id: AccuracySpec.model_validate(spec).model_copy(
        update={"run": PlannedData.model_validate(run)}) for check_id, (spec, run) in specs.items()}


def _worker_train(check_id: str, seed: int) -> Trained:
    return _trained(_worker["rubric"], _worker["specs"][check_id], _worker["namespaces"], seed,
                    _worker["images"][check_id])


def _trained(rubric: "LoadedRubric", spec: "AccuracySpec", namespaces: list[Any], seed: int, images: Any) -> Trained:
    """The reference trained from ``seed`` and scored as a submission is: its captured network run
    on the scored images by the measure stage's own code (here in the trusted host process)."""
    import gc

    from grader.checks.accuracy import Accuracy

    assert spec.run is not None
    spec = spec.model_copy(update={"run": spec.run.model_copy(update={"train_seed": seed})})
    try:
        obs = _probe_reference(rubric, spec, namespaces, seed)
        measured = Accuracy.measure(spec, obs, seed, {"images": images})
    finally:
        # A training leaves reference cycles that hold its tensors (captured graphs, the trained
        # network), which the collector's own schedule reaches too seldom: a worker that trained a
        # few hundred seeds of cifar10-cnn grew by about 40 MB a seed to 12 GB and was killed.
        gc.collect()
    predictions = measured.predictions[0] if measured.predictions else None
    if predictions is None:
        problem = measured.problems[0] if measured.problems else "nothing was captured"
        raise GraderError(f"the reference's trained network could not be scored: {obs.models[0].problem or problem}",
                          where=f"{rubric.path.name}: check {spec.id!r}",
                          hint="the reference's network must be capturable as a graph of torch operators")
    return predictions, measured.trained_on or obs.device, obs.seconds + measured.seconds


def _probe_reference(rubric: "LoadedRubric", spec: "AccuracySpec", namespaces: list[Any], seed: int) -> Any:
    """The accuracy probe on the reference, seeded as the sandbox seeds it; reference failures are
    the rubric's or the reference's problem, said as such."""
    from grader.checks.accuracy import Accuracy
    from grader.checks.base import ProbeContext, StudentRaised, Unresolved

    ctx = ProbeContext(namespaces=namespaces, targets=rubric.model.targets, seed=seed, execution={"form": "module"})
    where = f"{rubric.path.name}: check {spec.id!r}"
    try:
        ctx.seed_everything()
        return Accuracy.probe(spec.model_copy(update={"draws": 1}), ctx)  # seeds are the calibration's draws
    except Unresolved as exc:
        raise GraderError(f"the reference has no {exc.spec.label()} ({exc.resolution.problem})", where=where,
                          hint=f"fix reference/{rubric.model.assignment} or the target in the rubric") from None
    except StudentRaised as exc:
        if isinstance(exc.exc, KeyboardInterrupt):  # Ctrl-C, or SIGTERM (the CLI turns it into one), while it trained
            raise exc.exc from None
        raise GraderError(f"the reference failed while {exc.during}: {type(exc.exc).__name__}: {exc.exc}",
                          where=where, hint="the reference must train cleanly") from None
