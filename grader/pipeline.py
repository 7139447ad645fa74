"""Grade one submission, or a batch: the stages strung together, nothing more.

    rubric ─► submission ─► stage files ─► sandbox.run(probes) ─► judge ─► score ─► result
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from grader import (__version__, data, environment, mappings, measuring, numerics, observations, profiles, provided,
                    references, sandbox, source_scan, submission)
from grader.checks import accuracy
from grader.checks.base import Observation
from grader.data import synthetic
from grader.errors import GraderError
from grader.executors.slots import device_kind
from grader.executors.local import LocalExecutor
from grader.journal import MAX_INFRA_RETRIES, JobKey, Journal, is_infrastructure_failure, key_for, retry_delay
from grader.judging import has_invalid_observation, judge_all
from grader.sandbox import data_paths, data_sizes, provided_aliases
from grader.results import CheckResult, SubmissionResult
from grader.rubric import LoadedRubric
from grader.scoring import totals


@dataclass
class Settings:
    """How to grade, beyond the rubric: where data is, and limits overridden on the command line."""

    data_root: Path | None = None
    allow_synthetic: bool = True
    download: bool = False  # fetch a missing data set into the data root (grader.data.fetch) before grading
    limit_overrides: dict[str, float] = field(default_factory=dict)
    keep_work: bool = False
    isolation: str = "auto"
    profile: str = "auto"  # quick | full | auto (quick on synthetic data, full on real data); see grader.profiles
    mappings: mappings.Mappings = field(default_factory=dict)  # per student, target -> the student's name for it
    remeasure: bool = False  # measure again what an earlier run measured for the same inputs (grader.measure_cache)


@dataclass
class Prepared:
    """What every submission of a batch shares, computed once."""

    rubric: LoadedRubric
    expected: dict[str, Observation]
    data: data.DataRoot
    settings: Settings
    planned: profiles.Plan  # the checks as the sandbox gets them (profile applied), and the host's truths
    isolation: sandbox.Isolation = "process"


def _check_provided(rubric: LoadedRubric) -> None:
    missing = [p for p in rubric.model.submission.provided if not (rubric.reference_dir / p).exists()]
    if missing:
        raise GraderError(f"provided file(s) missing from the reference: {', '.join(missing)}",
                          where=f"{rubric.path.name}: submission.provided",
                          hint=f"put them under {rubric.reference_dir} or fix the list")


def prepare(rubric: LoadedRubric, settings: Settings) -> Prepared:
    _check_provided(rubric)
    environment.require(rubric)
    resolved = data.resolve(rubric.model.data.dataset, settings.data_root, settings.allow_synthetic,
                            download=settings.download)
    planned = profiles.plan(rubric, resolved, settings.profile)
    return Prepared(rubric=rubric, expected=references.expectations(rubric) | planned.expected, data=resolved,
                    settings=settings, planned=planned, isolation=sandbox.choose_isolation(settings.isolation))


def grade_one(sub: submission.Submission, prep: Prepared, slot: sandbox.Slot | None = None) -> SubmissionResult:
    """Grade one submission in ``slot``; every failure becomes a status on the result, never an exception."""
    start = time.monotonic()
    try:
        return _grade(sub, prep, start, slot or sandbox.Slot())
    except Exception as exc:  # noqa: BLE001 - a harness bug must cost one row, not the batch
        result = _unrun(sub, prep, "sandbox-error", f"the grader failed on this submission: "
                        f"{type(exc).__name__}: {exc}", start)
        for check in result.checks:
            check.outcome, check.message = "grader-error", f"not graded: {result.message}"
        result.stderr = traceback.format_exc()[-4000:]
        return result


def _grade(sub: submission.Submission, prep: Prepared, start: float, slot: sandbox.Slot) -> SubmissionResult:
    rubric = prep.rubric.model
    base = Path(tempfile.mkdtemp(prefix=f"grader-{sub.student[:40]}-"))
    try:
        if sub.problem:
            return _unrun(sub, prep, "rejected", sub.problem, start)
        try:
            entry = submission.stage(sub, base / "work", rubric.submission.modules, tuple(rubric.submission.forms))
        except submission.Rejected as exc:
            return _unrun(sub, prep, "rejected", str(exc), start)
        if entry.form not in rubric.submission.forms:
            return _unrun(sub, prep, "rejected", f"submitted as a {entry.form}; this assignment accepts "
                          f"{' or '.join(rubric.submission.forms)}", start)
        kept = _copy_provided(prep.rubric, entry.root)
        submitted = submission.code_texts(entry)  # read before the student's process can touch the files
        # Only staged code is scanned: a rejected submission runs nothing, so it can reach nothing.
        flags = source_scan.scan_submission(submitted, rubric)
        read_only = _link_data(prep, entry.root)
        limits = rubric.limits.model_dump() | prep.settings.limit_overrides
        mapping = prep.settings.mappings.get(sub.student, {})
        plan = {"seed": rubric.seed, "targets": {k: t.model_dump(mode="json") for k, t in rubric.targets.items()},
                "checks": prep.planned.checks, "profile": prep.planned.profile, "mapping": mapping}
        job = sandbox.Job(entry=entry, plan=plan, limits=limits, out_dir=base / "out", slot=slot,
                          isolation=prep.isolation, read_only=read_only,
                          env=_served_data(prep) | provided_aliases.env_for(*_aliases(prep),
                                                                            [text for _, text in submitted]))
        run = sandbox.run(job)
        expected = profiles.on_device(prep.expected, device_kind(slot.gpu))

        def measure(specs: list, records: list, arrays: dict, work: Path) -> dict | None:
            return measuring.measure(specs, records, arrays, work=work, isolation=prep.isolation, limits=limits,
                                     slot=slot, expected=expected, read_only=read_only,
                                     reuse=not prep.settings.remeasure)

        measured = measure(prep.planned.specs, run.records, run.arrays, base)
        run, measured = _every_draw(sub, prep, job, run, measured, expected, measure, base / "every-draw")
        results = judge_all(rubric.checks, run.records, run.arrays, expected, run.status, run.message,
                            submitted, execution=run.execution, targets=rubric.targets, measured=measured)
        status = "invalid-output" if run.status == "ok" and has_invalid_observation(results) else run.status
        ex = run.execution
        return _assemble(sub, prep, results, status, run.message, start, isolation=run.isolation,
                         form=entry.form, cells=[c.model_dump() for c in ex.cells] if ex else [],
                         modules=[m.model_dump() for m in ex.modules] if ex else [],
                         removed_commands=ex.removed_commands if ex else [],
                         cuda_on_cpu=ex.cuda_on_cpu if ex else [], data_served=ex.data_served if ex else [],
                         stdout=run.stdout, stderr=run.stderr,
                         numerics=_numerics(prep, slot), mapping=mapping, flags=flags,
                         notes=[*entry.notes, *kept, *_harness_notes(prep, submitted)])
    finally:
        if not prep.settings.keep_work:
            shutil.rmtree(base, ignore_errors=True)


def _every_draw(sub: submission.Submission, prep: Prepared, job: sandbox.Job, run: sandbox.RunResult,
                measured: dict | None, expected: dict, measure: Callable[[list, list, dict, Path], dict | None],
                work: Path) -> tuple[sandbox.RunResult, dict | None]:
    """The student's run trained only the first of an accuracy check's several trainings where
    the student's loop trains (``PlannedData.trained_draws``): where that first fell short, run
    the submission again, staged afresh in ``work``, for those checks with every training, and take
    their records from that run (``checks.accuracy.first_fell_short``). Correct work costs one
    training; work that falls short, one more run. A second run that observes nothing leaves the
    first run's record, which the judge reports as not measured, for a person."""
    again = [spec for spec in prep.planned.specs
             if accuracy.first_fell_short(spec, expected.get(spec.id), (measured or {}).get(spec.id))]
    if not again:
        return run, measured
    rubric = prep.rubric.model
    entry = submission.stage(sub, work / "work", rubric.submission.modules, tuple(rubric.submission.forms))
    _copy_provided(prep.rubric, entry.root)
    _link_data(prep, entry.root)
    every = [spec.model_copy(update={"run": spec.run.model_copy(update={"trained_draws": None})}) for spec in again]
    second = sandbox.run(dataclasses.replace(job, entry=entry, out_dir=work / "out",
                                             plan=job.plan | {"checks": [spec.as_job() for spec in every]}))
    if second.status == "sandbox-error":  # the machine's fault: the batch retries the submission
        raise GraderError(f"the run for more trainings could not run: {second.message}", where="grader.pipeline",
                          hint="the batch retries it; if it persists, check the sandbox (docs/security.md)")
    redone = {r.check for r in second.records if r.status == "observed"}
    if not redone:
        return run, measured
    records, arrays = observations.rekeyed([r for r in second.records if r.check in redone], second.arrays, "d")
    run = dataclasses.replace(run, records=[r for r in run.records if r.check not in redone] + records,
                              arrays=run.arrays | arrays)
    remeasured = measure([spec for spec in prep.planned.specs if spec.id in redone], run.records, run.arrays, work)
    return run, (measured or {}) | (remeasured or {})


class BatchEvents(Protocol):
    """What a batch reports while it runs (``progress.Progress`` shows it), all in one thread."""

    def reused(self, results: list[SubmissionResult]) -> None: ...
    def started(self, sub: submission.Submission) -> None: ...
    def finished(self, result: SubmissionResult) -> None: ...


class _Unwatched:
    """The listener of a batch nobody watches."""

    def reused(self, results: list[SubmissionResult]) -> None:
        pass

    def started(self, sub: submission.Submission) -> None:
        pass

    def finished(self, result: SubmissionResult) -> None:
        pass


GradeFunction = Callable[[submission.Submission, Prepared, sandbox.Slot], SubmissionResult]


def _copy_provided(rubric: LoadedRubric, root: Path) -> list[str]:
    """The course's own files (readers, helpers) go next to the student's code, replacing any
    copy the student handed in: graded code runs against the course's versions. A student's copy
    that adds to the course's file keeps its additions importable (``provided.keep_additions``);
    returns what was said about that, for the result."""
    notes = []
    for relative in rubric.model.submission.provided:
        source = rubric.reference_dir / relative
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif provided.keep_additions(source, target, root):
            notes.append(f"{relative}: the course's file is graded as provided; what your copy adds stays importable")
            continue
        else:
            target.unlink(missing_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, target)
    return notes


def _served_data(prep: Prepared) -> dict[str, str]:
    """Where torchvision's data sets are served from inside the sandbox (``sandbox.data_paths``):
    the data root, which ``_link_data`` shows read-only at its own path; and, for a synthetic
    stand-in, the real and stand-in sizes that literal splits are scaled between (``sandbox.data_sizes``)."""
    if prep.data.path is None:
        return {}
    return {data_paths.ENV: str(prep.data.path.resolve())} | data_sizes.env_for(_stand_ins(prep))


def _aliases(prep: Prepared) -> tuple[list, str]:
    """The names and data paths the provided modules also answer to (``sandbox.provided_aliases``),
    and the folder that serves the data."""
    return prep.rubric.model.submission.provided_aliases, prep.rubric.model.data.dirname


def _harness_notes(prep: Prepared, submitted: list[tuple[str, str]]) -> list[str]:
    """What the harness changes in what the student's code receives, found in the host's copy of
    the code: literal splits scaled to a synthetic stand-in, provided modules served under other names."""
    return [*data_sizes.notes_for(submitted, _stand_ins(prep)), *provided_aliases.notes_for(*_aliases(prep), submitted)]


def _stand_ins(prep: Prepared) -> list[tuple[int, int]]:
    return synthetic.stand_ins(prep.data.dataset) if prep.data.origin == "synthetic" else []


def _link_data(prep: Prepared, root: Path) -> list[Path]:
    """Expose the data set at the rubric's ``data.dirname``; return the folders to show read-only."""
    if prep.data.path is None:
        return []
    source = prep.data.mount_source(prep.rubric.model.data.layout).resolve()
    link = root / prep.rubric.model.data.dirname
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.exists() and not link.is_symlink():
        link.symlink_to(source, target_is_directory=True)
    return sorted({prep.data.path.resolve(), source})


def grade_batch(subs: list[submission.Submission], prep: Prepared, events: BatchEvents | None = None, *,
                journal: Journal | None = None, force: bool = False, slots: list[sandbox.Slot] | None = None,
                grade: GradeFunction = grade_one) -> list[SubmissionResult]:
    """Grade a batch in parallel slots, journaled; results come back in the order of ``subs``.

    Results the journal already holds for the same file, content, rubric and grader are reused
    unless ``force``; everything else is graded in ``slots`` (default: one at a time), and each
    result is in the journal before the next event. One bad submission never stops the batch;
    Ctrl-C does (KeyboardInterrupt is raised once the running children are ended), and the journal
    then holds every result finished so far.
    """
    own_journal = journal is None
    journal = journal or Journal.in_memory()
    events = events or _Unwatched()
    try:
        results, todo = kept_and_todo(subs, prep, journal, force)
        events.reused([r for r in results if r is not None])
        journal.add((key, subs[positions[0]]) for key, positions in todo.items())
        executor: LocalExecutor[JobKey, SubmissionResult | None] = LocalExecutor(slots or [sandbox.Slot()])
        prep = shared_cores(prep, min(len(slots or [None]), max(1, len(todo))))

        def work(key: JobKey, slot: sandbox.Slot) -> SubmissionResult | None:
            return _grade_journaled(subs[todo[key][0]], key, prep, slot, journal, grade, executor.stopping)

        def started(key: JobKey, slot: sandbox.Slot) -> None:
            for position in todo[key]:
                events.started(subs[position])

        def finished(key: JobKey, result: SubmissionResult | None) -> None:
            assert result is not None  # None only comes back after a stop, when no one listens any more
            for position in todo[key]:
                results[position] = as_submitted(result, subs[position])
                events.finished(results[position])  # type: ignore[arg-type]

        try:
            executor.run(list(todo), work, on_done=finished, on_start=started)
        except BaseException:
            journal.release_running(todo)  # what a slot cut short and could not put back itself
            raise
        return results  # type: ignore[return-value]
    finally:
        if own_journal:
            journal.close()


def kept_and_todo(subs: list[submission.Submission], prep: Prepared, journal: Journal, force: bool
                   ) -> tuple[list[SubmissionResult | None], dict[JobKey, list[int]]]:
    """Results the journal holds (by position; None where missing), and the jobs left to grade with
    the positions each one stands for: identical files given twice (same name and content) are
    one job, graded once and reported twice."""
    results: list[SubmissionResult | None] = [None] * len(subs)
    todo: dict[JobKey, list[int]] = {}
    for position, sub in enumerate(subs):
        key = key_for(sub, graded_against(prep, sub))
        kept = None if force else journal.finished(key)
        if kept is not None:
            results[position] = as_submitted(kept, sub)
        else:
            todo.setdefault(key, []).append(position)
    return results, todo


def _grade_journaled(sub: submission.Submission, key: JobKey, prep: Prepared, slot: sandbox.Slot, journal: Journal,
                     grade: GradeFunction, stopping: threading.Event) -> SubmissionResult | None:
    """Grade one job, retrying infrastructure failures a bounded number of times after growing
    pauses, and store the result. Returns None, and puts the job back to ``pending``, when the
    batch was stopped meanwhile."""
    for attempt in range(1 + MAX_INFRA_RETRIES):
        if stopping.is_set() or (attempt and stopping.wait(retry_delay(attempt))):  # stopped before a run
            journal.release(key)
            return None
        journal.start(key)
        result = grade(sub, prep, slot)
        if stopping.is_set():  # its child may have been killed under it: the result says nothing
            journal.release(key)
            return None
        if not is_infrastructure_failure(result):
            break
    journal.finish(key, result)
    return result


def shared_cores(prep: Prepared, side_by_side: int) -> Prepared:
    """Runs side by side share the cores: each gets its part for its math threads (unless the
    caller fixed ``threads``). Two runs of two threads each on two cores are several times slower
    than two of one (the threads spin while they wait for each other)."""
    if "threads" in prep.settings.limit_overrides:
        return prep
    threads = max(1, (os.cpu_count() or 1) // side_by_side)
    settings = dataclasses.replace(prep.settings, limit_overrides={**prep.settings.limit_overrides, "threads": threads})
    return dataclasses.replace(prep, settings=settings)


def graded_against(prep: Prepared, sub: submission.Submission) -> str:
    """The rubric's hash, and the student's mapping when an instructor gave one: a new mapping
    regrades that submission alone."""
    mapped = mappings.key(prep.settings.mappings.get(sub.student, {}))
    return f"{prep.rubric.text_hash}+{mapped}" if mapped else prep.rubric.text_hash


def _numerics(prep: Prepared, slot: sandbox.Slot) -> dict[str, object] | None:
    """The numeric configuration the accuracy checks trained under (the host's own knowledge of
    the slot, never the sandbox's word); None when nothing trained."""
    if not prep.planned.trains:
        return None
    return numerics.describe(numerics.device_name(slot.gpu))


def as_submitted(result: SubmissionResult, sub: submission.Submission) -> SubmissionResult:
    """A result graded for an identical file, made to name this one (the batch folder may have moved)."""
    return result.model_copy(update={"student": sub.student, "source": str(sub.source)})


def _unrun(sub: submission.Submission, prep: Prepared, status: str, message: str, start: float) -> SubmissionResult:
    results = [CheckResult(id=c.id, kind=c.kind, title=c.title, visibility=c.visibility, outcome="skipped",
                           points=0.0, max_points=c.points, message=f"not graded: {message}")
               for c in prep.rubric.model.checks]
    return _assemble(sub, prep, results, status, message, start, isolation=prep.isolation)


def _assemble(sub: submission.Submission, prep: Prepared, results: list[CheckResult], status: str, message: str,
              start: float, **extra: object) -> SubmissionResult:
    t = totals(results)
    return SubmissionResult(
        student=sub.student, source=str(sub.source), content_hash=sub.content_hash, status=status, message=message,
        data=prep.data.origin, profile=prep.planned.profile["name"] if prep.planned.trains else None,
        score=t.score, max_score=t.max_score, visible_score=t.visible_score,
        visible_max=t.visible_max, checks=results, seconds=round(time.monotonic() - start, 2),
        assignment=prep.rubric.model.assignment, rubric_hash=prep.rubric.text_hash,
        grader_version=__version__, **extra)  # type: ignore[arg-type]
