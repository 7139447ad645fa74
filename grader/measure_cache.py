"""Measurements kept for the same inputs: a network the harness trains is trained once.

Training captured networks (an accuracy check with ``trainer: harness``) is most of a batch's
time. The measure stage is a function of what it is given and nothing else: the artifacts, the
check's spec and seed, what the host hands it, the data it reads, the numeric configuration and
the grader's own code. So two submissions whose captured networks are the same bytes (the
handout's network, written the same way and built from the rubric's seed) get the same
measurement, and so does a submission graded again. This module keeps such measurements in the
grader's cache (``<cache>/measured/<key>``), keyed on all of those inputs, and hands them back.

What is kept is only what the host validated from a measure run (never anything the student's
process wrote), in the observations format (JSON and ``.npz``, never a pickle). A kind says what
its measurement depends on (``CheckKind.reuse_view``; None: not kept) and which measurements may be
kept (``worth_keeping``). ``grade --force`` measures everything again.

Within one grader process, a slot that needs a measurement another slot is computing waits for it
(``claimed``) instead of computing it too.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from pydantic import BaseModel

from grader import checks, numerics, observations
from grader.checks.base import CheckSpec
from grader.paths import cache_dir
from grader.source_hash import exact_version

FOLDER = "measured"


def setting(device: str, read_only: list[Path]) -> dict[str, Any]:
    """What every measurement of one measure call depends on besides its own inputs: the grader's
    code, the numeric configuration on ``device``, and the state of the data files it may read.
    Read once per call (the data folders are walked), and passed to ``key_for``."""
    return {"grader": exact_version(), "numerics": numerics.describe(device),
            "data": [_files_of(path) for path in read_only]}


def key_for(spec: CheckSpec, obs: BaseModel, seed: int, given: dict[str, Any], shared: dict[str, Any]) -> str | None:
    """The key of ``spec``'s measurement of ``obs`` in the ``setting`` ``shared``; None where the
    kind keeps none."""
    view = checks.get(spec.kind).reuse_view(spec, obs)
    if view is None:
        return None
    digest = hashlib.sha256()
    header = shared | {"spec": spec.as_job(), "seed": seed}
    digest.update(json.dumps(header, sort_keys=True, default=str).encode())
    _hash_value(digest, given)
    _hash_value(digest, view)
    return digest.hexdigest()[:40]


def load(key: str, kind: str) -> BaseModel | None:
    """The measurement kept under ``key``, validated as a fresh one is; None when there is none."""
    model = checks.get(kind).Measurement
    assert model is not None
    return observations.stored(cache_dir() / FOLDER / key, model)


def keep(key: str, kind: str, measurement: BaseModel) -> None:
    """Keep ``measurement`` under ``key`` where its kind says it may be reused."""
    if not checks.get(kind).worth_keeping(measurement):
        return
    try:
        observations.store(cache_dir() / FOLDER / key, measurement)
    except OSError:
        pass  # a cache that cannot be written only costs time


_claims: dict[str, threading.Lock] = {}
_claims_guard = threading.Lock()


@contextmanager
def claimed(keys: list[str]) -> Iterator[None]:
    """Hold ``keys`` against the other slots of this process while their measurements are made:
    a slot that needs one of them waits, then finds it kept. Taken in sorted order, so two slots
    that need overlapping keys cannot wait for each other."""
    with _claims_guard:
        locks = [_claims.setdefault(key, threading.Lock()) for key in sorted(set(keys))]
    for lock in locks:
        lock.acquire()
    try:
        yield
    finally:
        for lock in reversed(locks):
            lock.release()


def _files_of(root: Path) -> list[tuple[str, int, int]]:
    """Every file under ``root`` with its size and modification time: data that changes changes the key."""
    found = []
    for folder, _, names in os.walk(root, followlinks=False):
        for name in names:
            path = Path(folder) / name
            try:
                stat = path.stat()
            except OSError:
                continue
            found.append((str(path.relative_to(root)), stat.st_size, stat.st_mtime_ns))
    return sorted(found)


def _hash_value(digest: Any, value: Any) -> None:
    """Feed ``value`` (plain data and numpy arrays) into ``digest``: its structure as JSON, then
    each array's type, shape and bytes in order."""
    writer = observations.ArrayWriter()
    digest.update(json.dumps(writer.encode(value), sort_keys=True, default=str).encode())
    for name, array in writer.arrays.items():
        digest.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
        digest.update(array.tobytes())
