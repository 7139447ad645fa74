"""The measure stage, host side: artifacts the student's run captured, measured where no student
code runs.

After the student's sandbox has run, every *measured* check (a kind with a ``Measurement``,
``checks.base.CheckKind``) whose probe observed something goes to a second sandbox, at the same
isolation level and limits: a fresh runner (``sandbox/measure.py``) that imports no student code
and only loads plain data. The host writes its input from observations it has already validated
(re-encoded, so nothing the student's process wrote crosses as it was written), with each check's
full spec and a seed only the host knows (``seed_for``). What comes back is validated against the
kind's ``Measurement`` and handed to the judge as a ``Measured``; a measure run that fails is a
``Measured`` with the reason, and the judge says the check was only observed.

The seed is what makes measuring worth it: a graph that computed the right numbers only on the
inputs the student's process saw (values baked in, a tracer switched off) gives wrong ones on
inputs drawn from a secret it never had. The secret is the machine's own
(``<cache>/measure-secret``, made on first use, readable only by the grader's user), or
``GRADER_MEASURE_SECRET`` to pin it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any

from grader import checks, measure_cache, numerics, observations, paths, sandbox
from grader.checks.base import CheckSpec, Measured
from grader.errors import GraderError
from grader.submission import Entry

SECRET_ENV = "GRADER_MEASURE_SECRET"
SECRET_FILE = "measure-secret"
JOB_NAME = "measure.json"


def is_measured(spec: CheckSpec) -> bool:
    return checks.get(spec.kind).measures(spec)


def seed_for(check_id: str) -> int:
    """The seed of one check's fresh inputs: the same on this machine for every run (grades do not
    change between runs), unknown to the student's process."""
    digest = hmac.new(_secret(), check_id.encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def _secret() -> bytes:
    pinned = os.environ.get(SECRET_ENV)
    if pinned:
        return pinned.encode()
    path = paths.cache_dir() / SECRET_FILE
    try:
        return path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
                out.write(secrets.token_hex(32).encode())
        except FileExistsError:
            pass  # another grader made it a moment ago
        return path.read_bytes()


def measure(specs: list[CheckSpec], records: list[observations.ProbeRecord], arrays: dict[str, Any], *, work: Path,
            isolation: sandbox.Isolation, limits: dict[str, Any], slot: sandbox.Slot,
            expected: dict[str, Any] | None = None, read_only: list[Path] | None = None,
            reuse: bool = True) -> dict[str, Measured] | None:
    """Measure every measured check the student's run observed; None when there is none.
    ``specs`` are as the run was planned (``profiles.Plan.specs``: an accuracy check's budget and data).
    ``expected`` holds the host's truths by check id, from which each kind takes what it hands the
    measure stage (``CheckKind.host_inputs``); ``read_only`` is what the stage may read besides
    its input (the data root an accuracy check trains from, as the student's run had it).
    Measurements made before for the same inputs are reused (``grader.measure_cache``) unless
    ``reuse`` is false; the rest are made here, and kept."""
    by_id = {r.check: r for r in records}
    items: list[tuple[CheckSpec, Any]] = []
    for spec in specs:
        record = by_id.get(spec.id)
        if not is_measured(spec) or record is None or record.status != "observed" or record.data is None:
            continue
        try:
            items.append((spec, observations.validate_data(checks.get(spec.kind).Observation, record.data, arrays)))
        except observations.InvalidOutput:
            continue  # judging reports the record as invalid; there is nothing to measure
    if not items:
        return None
    seeds = {spec.id: seed_for(spec.id) for spec, _ in items}
    given = {spec.id: checks.get(spec.kind).host_inputs(spec, (expected or {}).get(spec.id)) for spec, _ in items}
    shared = measure_cache.setting(numerics.device_name(slot.gpu), read_only or [])
    keys = {spec.id: measure_cache.key_for(spec, obs, seeds[spec.id], given[spec.id], shared) for spec, obs in items}

    def already_kept() -> dict[str, Measured]:
        found = {spec.id: measure_cache.load(keys[spec.id], spec.kind) if keys[spec.id] and reuse else None
                 for spec, _ in items}
        return {check: Measured(seeds[check], data=data) for check, data in found.items() if data is not None}

    measured = already_kept()
    missing = [keys[spec.id] for spec, _ in items if spec.id not in measured and keys[spec.id]]
    with measure_cache.claimed(missing):  # a slot measuring the same inputs finishes first
        measured |= already_kept() if missing else {}  # made by another slot while this one waited
        todo = [(spec, obs) for spec, obs in items if spec.id not in measured]
        if todo:
            made = _measure_in_sandbox(todo, seeds, given, work=work, isolation=isolation, limits=limits, slot=slot,
                                       read_only=read_only or [])
            for spec, _ in todo:
                measured[spec.id] = made[spec.id]
                key = keys[spec.id]
                if key is not None and made[spec.id].data is not None:
                    measure_cache.keep(key, spec.kind, made[spec.id].data)
    return {spec.id: measured[spec.id] for spec, _ in items}


def _measure_in_sandbox(items: list[tuple[CheckSpec, Any]], seeds: dict[str, int], given: dict[str, Any], *,
                        work: Path, isolation: sandbox.Isolation, limits: dict[str, Any], slot: sandbox.Slot,
                        read_only: list[Path]) -> dict[str, Measured]:
    """One run of the measure sandbox over ``items``: each check's ``Measured``."""
    inputs = work / "measure-in"
    inputs.mkdir(parents=True, exist_ok=True)
    writer = observations.ArrayWriter()
    encoded = {spec.id: writer.encode(given[spec.id]) for spec, _ in items}  # first: write() stores every array encoded so far
    observations.write(inputs, [{"check": spec.id, "status": "observed",
                                 "data": writer.encode(obs.model_dump(mode="python"))} for spec, obs in items], writer)
    (inputs / JOB_NAME).write_text(json.dumps({"items": [
        {"check": spec.id, "kind": spec.kind, "spec": spec.as_job(), "seed": seeds[spec.id],
         "given": encoded[spec.id]} for spec, _ in items]}))
    run = sandbox.run(sandbox.Job(entry=Entry(form="measure", root=inputs), plan={}, limits=limits,
                                  out_dir=work / "measure-out", slot=slot, isolation=isolation,
                                  read_only=read_only))
    if run.status == "sandbox-error":  # the machine's fault, not the artifacts': the batch retries the submission
        raise GraderError(f"the measure stage could not run: {run.message}", where="grader.measuring",
                          hint="the batch retries it; if it persists, check the sandbox (docs/security.md)")
    found = {r.check: r for r in run.records}
    return {spec.id: _read(spec, found.get(spec.id), run, seeds[spec.id]) for spec, _ in items}


def _read(spec: CheckSpec, record: observations.ProbeRecord | None, run: sandbox.RunResult, seed: int) -> Measured:
    if record is None:
        return Measured(seed, problem=f"the measure stage ended {run.status}: {run.message}")
    if record.status != "observed" or record.data is None:
        detail = f"{record.error.type}: {record.error.message}" if record.error else record.status
        return Measured(seed, problem=f"the measure stage failed: {detail}")
    model = checks.get(spec.kind).Measurement
    assert model is not None
    try:
        return Measured(seed, data=observations.validate_data(model, record.data, run.arrays))
    except observations.InvalidOutput as exc:
        return Measured(seed, problem=f"the measure stage's output is invalid: {exc}")
