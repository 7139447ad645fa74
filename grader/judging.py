"""Judge: turn the sandbox's records into check results. Runs on the host only.

Each record is validated against its kind's observation model before the kind's ``judge`` sees
it; a check without a valid observation gets an outcome that says why (student error, missing
target, run stopped, harness bug), never a silent zero.
"""

from __future__ import annotations

import traceback
from typing import Any

from grader import checks, observations, unresolved
from grader.checks.base import CheckSkipped, CheckSpec, Measured, Observation
from grader.results import CheckResult
from grader.sandbox.statuses import STUDENT_FAULT
from grader.scoring import points_for
from grader.targets import HOW_SAID, TargetSpec

# Run statuses after which a missing observation is the student's run's fault, not ours.
STUDENT_RUN_FAILURES = STUDENT_FAULT


INVALID_OBSERVATION = "invalid observation"


def judge_all(specs: list[CheckSpec], records: list[observations.ProbeRecord], arrays: dict[str, Any],
              expected: dict[str, Observation], run_status: str, run_message: str,
              submitted: list[tuple[str, str]] | None = None, execution: Any = None,
              targets: dict[str, TargetSpec] | None = None,
              measured: dict[str, Measured] | None = None) -> list[CheckResult]:
    """One result per spec, in rubric order. A record that fails its kind's validation makes the
    check ``errored`` with a message starting with ``INVALID_OBSERVATION``. ``submitted`` is the
    host's own copy of the code, for kinds that rescan it (``CheckKind.recheck``) and to find
    where a missing target was defined; ``execution`` the run's record of failing cells and
    modules; ``targets`` the rubric's, to name what a missing target could be called;
    ``measured`` what the measure stage found for measured kinds (``grader.measuring``; None when
    no measure stage ran)."""
    by_id = {r.check: r for r in records}
    results: dict[str, CheckResult] = {}
    for spec in specs:
        unmet = [r for r in spec.requires if results[r].outcome != "passed"]
        if unmet:
            result = result_for(spec, "skipped", 0.0, f"skipped: needs {', '.join(unmet)} to pass first")
            # waiting only on checks this machine could not run is not the student's doing either
            result.counted = any(results[r].counted for r in unmet)
        else:
            result = judge_one(spec, by_id.get(spec.id), arrays, expected.get(spec.id), run_status, run_message,
                               submitted, execution, targets, measured)
        results[spec.id] = result
    return list(results.values())


def has_invalid_observation(results: list[CheckResult]) -> bool:
    return any(r.outcome == "errored" and r.message.startswith(INVALID_OBSERVATION) for r in results)


def judge_one(spec: CheckSpec, record: observations.ProbeRecord | None, arrays: dict[str, Any],
              expected: Observation | None, run_status: str, run_message: str,
              submitted: list[tuple[str, str]] | None = None, execution: Any = None,
              targets: dict[str, TargetSpec] | None = None, measured: dict[str, Measured] | None = None
              ) -> CheckResult:
    kind = checks.get(spec.kind)
    if record is None:
        if run_status == "rejected":  # the run refused it as given (a notebook that is not JSON): as the host's rejections
            return result_for(spec, "skipped", 0.0, f"not graded: {run_message}")
        if run_status in STUDENT_RUN_FAILURES:
            return result_for(spec, "errored", 0.0, f"not observed: {run_message}")
        return result_for(spec, "grader-error", 0.0, "the probes reported nothing for this check (a grader bug)")
    if record.status == "raised" and record.error:
        err = record.error
        return result_for(spec, "errored", 0.0, f"{err.type}: {err.message} (while {err.during})",
                       traceback=err.traceback, record=record)
    if record.status == "unresolved" and record.unresolved:
        return unresolved.judged(spec, record, execution, submitted or [], (targets or {}).get(record.unresolved.target))
    if record.status != "observed" or record.data is None:
        detail = f"{record.error.type}: {record.error.message}" if record.error else record.status
        return result_for(spec, "grader-error", 0.0, f"the probe failed: {detail}",
                       traceback=record.error.traceback if record.error else None, record=record)
    if kind.needs_reference(spec) and expected is None:
        return result_for(spec, "grader-error", 0.0, "no expectation from the reference for this check", record=record)
    try:
        obs = observations.validate_data(kind.Observation, record.data, arrays)
    except observations.InvalidOutput as exc:
        return result_for(spec, "errored", 0.0, f"{INVALID_OBSERVATION} (tampered output?): {exc}", record=record)
    try:
        if kind.Measurement is not None:
            verdict = kind.judge(spec, obs, expected, measured.get(spec.id) if measured is not None else None)
        else:
            verdict = kind.judge(spec, obs, expected)
        if submitted is not None:
            verdict = kind.recheck(spec, obs, verdict, record.found_as, submitted, expected, own_names(spec, targets))
    except CheckSkipped as exc:
        result = result_for(spec, "skipped", 0.0, f"skipped: {exc.render()} (not counted in the score)", record=record)
        result.counted = False
        return result
    except Exception as exc:  # noqa: BLE001 - a judge bug must not sink the batch
        return result_for(spec, "grader-error", 0.0, f"the judge failed: {type(exc).__name__}: {exc}",
                       traceback=traceback.format_exc(), record=record)
    fraction = min(1.0, max(0.0, verdict.fraction))
    outcome = "passed" if fraction == 1.0 else "failed"
    message = verdict.message
    if record.found_how in HOW_SAID and record.found_as:
        message += f" (graded `{record.found_as}`, found {HOW_SAID[record.found_how]})"
    if record.built_as:
        message += f" ({record.built_as})"
    result = result_for(spec, outcome, points_for(spec.points, fraction, spec.partial_credit), message,
                     table=verdict.table, record=record)
    result.review = verdict.review
    if kind.measures(spec) and kind.graded_on_measurement and measured is not None and spec.id in measured:
        result.basis = "measured"
    return result


def own_names(spec: CheckSpec, targets: dict[str, TargetSpec] | None) -> tuple[str, ...]:
    """The names and aliases the rubric gives the targets ``spec`` uses (some checks use several)."""
    found = [(targets or {}).get(ref) for ref in spec.target_refs()]
    return tuple(name for target in found if target is not None for name in [target.name, *target.aliases] if name)


def result_for(spec: CheckSpec, outcome: str, points: float, message: str, *, table: list[dict[str, Any]] | None = None,
            traceback: str | None = None, record: observations.ProbeRecord | None = None) -> CheckResult:
    return CheckResult(id=spec.id, kind=spec.kind, title=spec.title, visibility=spec.visibility,
                       outcome=outcome, points=points, max_points=spec.points, message=message,  # type: ignore[arg-type]
                       table=table or [], traceback=traceback,
                       found_as=record.found_as if record else None, seconds=record.seconds if record else 0.0)
