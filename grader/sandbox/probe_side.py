"""The probe side: runs inside the student's process, after the student's code, and only observes.

For each check of the plan it rebuilds the spec from its capture view (``grader.checks.toolkit.capture``:
the spec without what only the judge reads), resolves the target, runs the kind's ``probe`` and
records what it saw. Student exceptions, missing targets and the probe's own bugs become different
record statuses, so the host can tell ``errored`` from ``failed`` from ``grader-error``. Records are
written after every check, so a run killed half-way still reports what it had observed; a check
whose captured artifacts do not fit in what the run may write (``disk_mb``) loses only its own
record, which says so, and the other checks' stand.
"""

from __future__ import annotations

import errno
import json
import shutil
import time
import traceback
from pathlib import Path
from typing import Any

from grader import checks, observations
from grader.checks.base import ProbeContext, StudentRaised, Unresolved
from grader.checks.toolkit.capture import from_capture_view
from grader.targets import Namespace, TargetSpec


def run_in_kernel(kernel_globals: dict[str, Any], job_path: str) -> None:
    """Entry point of the probe cell that the runner appends to a notebook."""
    job = json.loads(Path(job_path).read_text())
    run(job, [("notebook", kernel_globals)])


def run(job: dict[str, Any], namespaces: list[Namespace]) -> None:
    out_dir = Path(job["out_dir"])
    plan = job["plan"]
    execution_path = out_dir / "execution.json"
    execution = json.loads(execution_path.read_text()) if execution_path.exists() else {}
    ctx = ProbeContext(namespaces=namespaces, seed=plan["seed"], execution=execution, mapping=plan.get("mapping", {}),
                       targets={k: TargetSpec.model_validate(v) for k, v in plan["targets"].items()})
    writer = observations.ArrayWriter()
    records: list[dict[str, Any]] = []
    for raw in plan["checks"]:
        before = len(writer.arrays)
        records.append(probe_one(raw, ctx, writer))
        try:
            _write_atomically(out_dir, records, writer)
        except OSError as exc:
            if exc.errno not in NO_ROOM:
                raise
            records[-1] = _did_not_fit(records[-1], writer, before, exc)
            _write_atomically(out_dir, records, writer)
    _write_atomically(out_dir, records, writer)


NO_ROOM = {errno.EFBIG, errno.ENOSPC, errno.EDQUOT}  # over RLIMIT_FSIZE, a full tmpfs, a quota


def _did_not_fit(record: dict[str, Any], writer: observations.ArrayWriter, before: int,
                 exc: OSError) -> dict[str, Any]:
    """``record``'s replacement when writing it failed for want of room: its arrays (those
    encoded after the first ``before``) dropped, and a ``probe-error`` that says why, which the
    host grades as a grader-error for a person to look at, never as the student's failure."""
    for key in list(writer.arrays)[before:]:
        del writer.arrays[key]
    return {"check": record["check"], "status": "probe-error", "seconds": record.get("seconds", 0.0), "error": {
        "type": "CaptureTooLarge",
        "message": f"its captured artifacts did not fit in what the run may write (the limits' disk_mb, shared with "
                   f"the student's own files): {exc.strerror or exc}; the other checks' records were kept",
        "during": f"writing check {record['check']!r}'s record", "traceback": ""}}


def probe_one(raw: dict[str, Any], ctx: ProbeContext, writer: observations.ArrayWriter) -> dict[str, Any]:
    """Probe one check, given as its capture view; never raises (anything unexpected, a probe
    reading a judge-only field included, is a ``probe-error`` record)."""
    record: dict[str, Any] = {"check": raw["id"], "status": "probe-error"}
    start = time.monotonic()
    try:
        kind = checks.get(raw["kind"])
        spec = from_capture_view(kind.Spec, raw)
        ctx.seed_everything()
        obs = kind.probe(spec, ctx)
        record.update(status="observed", data=writer.encode(obs.model_dump(mode="python")))
    except StudentRaised as exc:
        record.update(status="raised", error={
            "type": type(exc.exc).__name__, "message": _safe_str(exc.exc)[:2000],
            "during": exc.during, "traceback": exc.traceback})
    except Unresolved as exc:
        record.update(status="unresolved", unresolved={
            "target": exc.key, "looked_for": exc.spec.label(), "problem": exc.resolution.problem,
            "candidates": exc.resolution.candidates})
    except Exception as exc:  # noqa: BLE001 - a bug in the probe itself, reported as grader-error
        record.update(error={"type": type(exc).__name__, "message": _safe_str(exc)[:2000],
                             "during": f"probing check {raw.get('id')!r}", "traceback": traceback.format_exc()[-4000:]})
    target = raw.get("target")
    found = ctx.found.get(target) if isinstance(target, str) else None
    if found is not None and found.ok:
        record.update(found_as=found.found_as, found_how=found.how)
        if found.built:
            record.update(built_as=found.built)
    record["seconds"] = round(time.monotonic() - start, 3)
    return record


def _safe_str(exc: BaseException) -> str:
    """``str(exc)`` of a student's exception may itself raise; never let it."""
    try:
        return str(exc)
    except BaseException:  # noqa: BLE001
        return f"<{type(exc).__name__} whose message cannot be shown>"


def _write_atomically(out_dir: Path, records: list[dict[str, Any]], writer: observations.ArrayWriter) -> None:
    tmp = out_dir / ".partial"
    tmp.mkdir(exist_ok=True)
    try:
        observations.write(tmp, records, writer)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # a half-written file would keep taking the room
        raise
    for name in (observations.ARRAYS_NAME, observations.JSON_NAME):  # json last: it marks completeness
        if (tmp / name).exists():  # student code may have replaced the writer; the host judges what is there
            (tmp / name).replace(out_dir / name)
