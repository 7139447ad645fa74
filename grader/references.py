"""The reference implementation: loaded in the trusted process, probed to get expectations.

An expectation is each kind's ``expect`` stage applied to what the same probe observes on the
reference (e.g. the reference model's parameter count), so a rubric says ``expected: reference``
instead of typing a number. The probe
gets the check's capture view, as in the sandbox. Results are cached on disk, keyed by the
reference's content, that capture view (a new title or threshold changes no expectation), the
targets, the seed and the grader's exact version (its source hash: a changed probe recomputes).
``forget`` drops a rubric's cached expectations (``grader grade --force``).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from grader import checks, observations
from grader.checks.base import Observation, ProbeContext
from grader.checks.toolkit.capture import capture_view
from grader.errors import GraderError
from grader.paths import cache_dir
from grader.rubric import LoadedRubric
from grader.sandbox import probe_side
from grader.source_hash import exact_version
from grader.submission import content_hash


class ReferenceProblem(GraderError):
    """The reference does not provide what a check needs: a rubric or reference bug."""


def load_namespaces(rubric: LoadedRubric) -> list[tuple[str, dict[str, Any]]]:
    """Import every module of the reference folder (in the rubric's module order if given)."""
    folder = rubric.reference_dir
    if not folder.is_dir():
        raise GraderError("reference folder not found", where=str(folder),
                          hint=f"the rubric's `reference:` ({rubric.model.reference}) is relative to {rubric.path.parent}")
    names = rubric.model.submission.modules or sorted(p.stem for p in folder.glob("*.py") if p.stem.isidentifier())
    saved_path, saved_modules = list(sys.path), set(sys.modules)
    sys.path.insert(0, str(folder))
    try:
        modules = []
        for name in names:
            try:
                modules.append((name, vars(importlib.import_module(name))))
            except Exception as exc:  # noqa: BLE001
                raise GraderError(f"the reference module {name}.py fails to import: {type(exc).__name__}: {exc}",
                                  where=str(folder / f"{name}.py")) from None
        return modules
    finally:
        sys.path[:] = saved_path
        for name in set(sys.modules) - saved_modules:  # another reference may use the same module names
            if getattr(sys.modules[name], "__file__", "") and str(folder) in (sys.modules[name].__file__ or ""):
                del sys.modules[name]


def expectations(rubric: LoadedRubric) -> dict[str, Observation]:
    """Expected observations for every check that needs the reference, by check id (from the
    kit for a student kit, which has no reference)."""
    if rubric.kit_dir is not None:
        from grader import kit

        return kit.expectations(rubric)
    needed = [c for c in rubric.model.checks if checks.get(c.kind).needs_reference(c)]
    if not needed:
        return {}
    ref_hash = content_hash(rubric.reference_dir)
    result: dict[str, Observation] = {}
    missing = []
    for spec in needed:
        cached = _read_cache(_cache_key(ref_hash, rubric, spec), spec.kind)
        if cached is not None:
            result[spec.id] = cached
        else:
            missing.append(spec)
    if missing:
        namespaces = load_namespaces(rubric)
        ctx = ProbeContext(namespaces=namespaces, targets=rubric.model.targets, seed=rubric.model.seed,
                           execution={"form": "module"})
        for spec in missing:
            expectation = checks.get(spec.kind).expect(spec, _probe_reference(spec, ctx, rubric))
            result[spec.id] = expectation
            _write_cache(_cache_key(ref_hash, rubric, spec), expectation)
    return result


def _probe_reference(spec: Any, ctx: ProbeContext, rubric: LoadedRubric) -> Observation:
    writer = observations.ArrayWriter()
    record = probe_side.probe_one(capture_view(spec), ctx, writer)  # as the sandbox gets it
    where = f"{rubric.path.name}: check {spec.id!r}"
    if record["status"] == "unresolved":
        info = record["unresolved"]
        raise ReferenceProblem(f"the reference has no {info['looked_for']} ({info['problem']}; "
                              f"candidates: {', '.join(info['candidates']) or 'none'})", where=where,
                              hint=f"fix reference/{rubric.model.assignment} or the target in the rubric")
    if record["status"] != "observed":
        err = record["error"]
        raise ReferenceProblem(f"the reference failed while {err['during']}: {err['type']}: {err['message']}",
                              where=where, hint="the reference must run every check cleanly")
    kind = checks.get(spec.kind)
    return observations.validate_data(kind.Observation, record["data"], writer.arrays)  # type: ignore[return-value]


def forget(rubric: LoadedRubric) -> int:
    """Drop the cached expectations of ``rubric``'s checks as they stand (reference, grader and
    all), so the next ``expectations`` probes the reference again; returns how many were dropped."""
    needed = [c for c in rubric.model.checks if checks.get(c.kind).needs_reference(c)]
    if not needed:
        return 0
    ref_hash = content_hash(rubric.reference_dir)
    dropped = 0
    for spec in needed:
        folder = cache_dir() / "expect" / _cache_key(ref_hash, rubric, spec)
        if folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
            dropped += 1
    return dropped


def _cache_key(ref_hash: str, rubric: LoadedRubric, spec: Any) -> str:
    """Everything the expectation depends on: grader source, reference content, what the probe
    gets of the check, its targets, seed."""
    targets = [rubric.model.targets[key].model_dump(mode="json") for key in spec.target_refs()]
    payload = json.dumps([exact_version(), ref_hash, capture_view(spec), targets, rubric.model.seed], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def _read_cache(key: str, kind_name: str) -> Observation | None:
    return load_expectation(cache_dir() / "expect" / key, kind_name)


def load_expectation(folder: Path, kind_name: str) -> Observation | None:
    """An expectation written by ``save_expectation`` (the cache, a student kit); None when missing
    or unreadable. JSON and ``.npz`` arrays, never a pickle."""
    return observations.stored(folder, checks.get(kind_name).Observation)  # type: ignore[return-value]


def save_expectation(folder: Path, obs: Observation) -> None:
    """Write ``obs`` into ``folder`` (made here; written aside, then renamed into place)."""
    observations.store(folder, obs)


def _write_cache(key: str, obs: Observation) -> None:
    try:
        save_expectation(cache_dir() / "expect" / key, obs)
    except OSError:
        pass  # a cache that cannot be written only costs time
