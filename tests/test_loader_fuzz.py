"""Fuzzing the host's reading of a sandbox run: everything the student's code could have written.

A run's output folder is hostile input: ``observations.json``, ``arrays.npz`` and
``execution.json`` come from the student's process, and at the ``process`` level so do
``stdout.txt`` and ``stderr.txt`` (or a FIFO, a link or a folder in their place). This file feeds
``sandbox.read_back`` (the function ``sandbox.run`` reads a finished run with) and then
``judging.judge_all`` (with specs of the bundled rubrics) mutated and hand-made outputs, and
requires of every input that

* nothing raises out of the host's path, and every check gets an outcome a tampered output may
  have, never "the judge failed" (a judge fed something the boundary should have refused);
* a broken output is ``invalid-output`` for the run, or ``errored`` ("invalid observation") for
  one check, with a message that says what was wrong and where;
* no pickle is ever loaded (the loaders are replaced by tripwires, and a planted payload would
  leave a marker file);
* each input is read and judged within ``SECONDS_PER_INPUT`` of CPU time (typically a few milliseconds).

Seeds are fixed, so a failure here is reproducible; the whole file runs in seconds.
"""

from __future__ import annotations

import copy
import io
import json
import math
import os
import pickle
import random
import struct
import threading
import time
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from grader import checks, observations, rubric
from grader.checks.accuracy import AccuracyTruth
from grader.checks.base import HarnessSeed
from grader.checks.dataset import CourseData
from grader.judging import INVALID_OBSERVATION, judge_all
from grader.sandbox import read_back
from grader.sandbox.statuses import Ending

RUBRICS = Path(__file__).resolve().parents[1] / "rubrics"
# Reading and judging one input takes ~10 ms of CPU here; a blow-up takes far longer. The bound is on
# the reading thread's own CPU time, which a busy machine does not stretch; a hang is caught by a wall
# clock far above anything a loaded machine makes of 10 ms.
SECONDS_PER_INPUT = 5.0
HANG_SECONDS = 120.0
LIMITS = {"wall_seconds": 60.0, "cell_seconds": 30.0, "output_chars": 2000, "memory_mb": 1024, "disk_mb": 64,
          "output_mb": 1}
RUN_STATUSES = {"ok", "invalid-output", "no-result", "rejected", "sandbox-error", "output-limit", "kernel-died",
                "crash", "timeout-cpu", "cell-timeout", "memory", "gpu-oom", "gpu-fault"}
OUTCOMES = {"passed", "failed", "errored", "skipped", "needs-review", "grader-error"}
# A forged record may claim the probe failed or leave a check out; both cost the student the check
# and are said as such. What must never appear is a judge crashing on what the boundary let through.
FORGEABLE_GRADER_ERRORS = ("the probe failed", "the probes reported nothing")
FILES = (observations.JSON_NAME, observations.ARRAYS_NAME, "execution.json")


# ---------------------------------------------------------------- valid outputs of real check kinds


def _specs() -> tuple[list[Any], dict[str, Any]]:
    """Every check of resmlp-densenet (residual, architecture, shape, training, accuracy...),
    custom-ops's op_equivalence checks and fc-vs-cnn's data set and loader checks (held to the
    course's data), without ``requires``: every judge runs on every input."""
    loaded = [rubric.load(RUBRICS / name) for name in ("resmlp-densenet.yaml", "custom-ops.yaml", "fc-vs-cnn.yaml")]
    specs = list(loaded[0].model.checks)
    specs += [c for c in loaded[1].model.checks if c.kind == "op_equivalence" and c.id.startswith("relu")]
    specs += [c for c in loaded[2].model.checks if c.kind == "dataset"]
    targets = {**loaded[2].model.targets, **loaded[1].model.targets, **loaded[0].model.targets}
    return [s.model_copy(update={"requires": []}) for s in specs], targets


SPECS, TARGETS = _specs()


def _observation(spec: Any) -> Any:
    """A well-formed observation of ``spec``'s kind, as a probe could have made it."""
    kind = checks.get(spec.kind)
    model = kind.Observation
    f32 = np.linspace(-1, 1, 4 * 32).reshape(4, 32)
    if spec.kind == "defined":
        return model(found_as="ResBlock", how="name", is_class=True, is_callable=True, parameters=["d", "h"],
                     bases=["main.ResBlock", "torch.nn.modules.module.Module", "builtins.object"])
    if spec.kind == "shape":
        from grader.checks.shape import Forward

        return model(forwards=[Forward(input_shape=[b, 32], output_type="torch.Tensor", output_shape=[b, 32])
                               for b in spec.batch_sizes])
    if spec.kind == "architecture":
        from grader.checks.architecture import Call

        calls = [Call(type="main.ResBlock", path="", parent=-1, instance=0, input=[2, 20], output=[2, 20],
                      output_type="torch.Tensor"),
                 Call(type="torch.nn.modules.linear.Linear", path="fc1", parent=0, instance=1, input=[2, 20],
                      output=[2, 50], output_type="torch.Tensor"),
                 Call(type="torch.nn.modules.linear.Linear", path="fc2", parent=0, instance=2, input=[2, 50],
                      output=[2, 20], output_type="torch.Tensor")]
        return model(model_type="main.ResBlock", is_module=True, calls=calls, truncated=False)
    if spec.kind == "param_count":
        return model(module_type="main.ResBlock", total=1984, trainable=1984)
    if spec.kind == "residual":
        return model(module_type="main.ResBlock", is_module=True, parameters_zeroed=4, input=f32,
                     output=f32 * 2, output_type="torch.Tensor", zeroed_output=np.maximum(f32, 0),
                     zeroed_output_type="torch.Tensor")
    if spec.kind == "training":
        from grader.checks.training import LoopRecord
        from grader.checks.training import Element

        loop = LoopRecord(data_in_globals=[], train_steps=16, train_steps_in_eval_mode=0, validation_passes=2,
                          validation_forwards=6, validation_forwards_in_train_mode=0, validation_forwards_with_grad=0,
                          parameters_by_pass=np.arange(10, dtype=np.float32).reshape(2, 5),
                          validation_orders=np.tile(np.arange(4), (2, 1)), returned_parameters=np.arange(5, dtype=np.float32))
        elements = [Element(type="list", length=2, numeric=True, finite=True, values=[2.2, 2.0]),
                    Element(type="list", length=2, numeric=True, finite=True, values=[0.3, 0.4])]
        return model(return_type="tuple", elements=elements, weights_changed=True, seconds=0.5, loop=loop,
                     training_loss_readings={"sample-mean": [2.2, 2.0]})
    if spec.kind == "accuracy":
        from grader.checks.toolkit.model_capture import CapturedModel

        return model(models=[CapturedModel(problem="not captured in this test")] * spec.draws, train_images=600,
                     epochs=1, device="cpu", seconds=1.5)
    if spec.kind == "notebook":
        from grader.checks.notebook import FailedCell

        return model(form="notebook", code_cells=6, markdown_cells=5, markdown_words=120, figures=2,
                     failed_cells=[FailedCell(number=4, status="error", error="NameError: x", line=2)])
    if spec.kind == "op_equivalence":
        from grader.checks.op_equivalence import CaseRun

        runs = []
        for config in spec.sweep():
            x = np.random.default_rng(0).standard_normal(config.input)  # the probe writes float64 copies
            runs.append(CaseRun(output_type="torch.Tensor", output=np.maximum(x, 0),
                                gradients={"input": (x > 0).astype(np.float64)}))
        return model(runs=runs, forward_ops=["aten::clamp_min"], backward_ops=[], sources=[], source_problems=[])
    if spec.kind == "dataset":
        from grader.checks.dataset import DatasetInfo, ItemsObservation, LoaderObservation

        if spec.items is not None:
            info = DatasetInfo(type="torchvision.datasets.mnist.MNIST", length=40, item_types=[["PIL.Image.Image", "int"]] * 3,
                               read_indices=[0, 20, 39], read_samples=[11, 12, 13], read_labels=[0, 1, 2])
            return model(items=ItemsObservation(returned_type="tuple", datasets=[info, info]))
        return model(loader=LoaderObservation(
            returned_type="torch.utils.data.dataloader.DataLoader", batch_structure=["list[2]"], batch_sizes=[16, 16, 8],
            input_types=["torch.Tensor"], target_types=["torch.Tensor"], input_min=0.0, input_max=1.0, target_min=0.0,
            target_max=9.0, fingerprints=[3.0, 4.0], served_classes=np.arange(40) % 10))
    raise AssertionError(f"no valid observation written for kind {spec.kind}")


OBSERVED = {spec.id: _observation(spec) for spec in SPECS}


def _expected() -> dict[str, Any]:
    """What the host would know: the reference's own observation where a kind compares with one,
    the test labels for accuracy checks, the seed of a check's harness data."""
    expected: dict[str, Any] = {}
    for spec in SPECS:
        if spec.kind == "accuracy":
            expected[spec.id] = AccuracyTruth(labels=np.arange(20) % 10, classes=10, profile="quick", data="synthetic",
                                              images=np.zeros((20, 3, 32, 32), dtype=np.uint8),
                                              scored_on="20 held-out synthetic images")
        elif checks.get(spec.kind).made_from_seed(spec):
            expected[spec.id] = HarnessSeed(seed=0)
        elif spec.kind == "dataset":  # a course of 40 training and 40 test images, 4 of each class
            expected[spec.id] = CourseData(dataset="mnist", class_counts={"train": (4,) * 10, "test": (4,) * 10},
                                           image_labels={11: (0,), 12: (1,), 13: (2,)})
        elif checks.get(spec.kind).needs_reference(spec):
            expected[spec.id] = OBSERVED[spec.id]
    return expected


EXPECTED = _expected()
SUBMITTED = [("main.py", "import torch\n\nclass ResBlock(torch.nn.Module):\n    pass\n")]
EXTRA_ARRAYS = {  # unreferenced in the valid output; mutations point records at them
    "zero_d": np.array(3.5), "empty": np.zeros((0, 32)), "fortran": np.asfortranarray(np.ones((4, 32))),
    "big_endian": np.ones((4, 32), dtype=">f8"), "half": np.ones((4, 32), dtype=np.float16),
    "bools": np.ones((4, 32), dtype=bool), "complex": np.ones((4, 32), dtype=np.complex128),
    "structured": np.zeros(4, dtype=[("a", "<f8"), ("b", "<i4")]), "void": np.zeros(4, dtype="V8"),
    "text": np.array(["a", "b"]), "nan": np.full((4, 32), np.nan), "inf": np.full((4, 32), -np.inf),
    "uint_max": np.full((20,), np.iinfo(np.uint64).max, dtype=np.uint64), "huge_ints": np.full((20,), -2**63),
    "wide": np.zeros((1, 100_000), dtype=np.uint8), "datetime": np.zeros(3, dtype="datetime64[s]"),
}


def valid_records() -> tuple[list[dict[str, Any]], observations.ArrayWriter]:
    writer = observations.ArrayWriter()
    records = [{"check": spec.id, "status": "observed", "found_as": "ResBlock", "found_how": "alias",
                "data": writer.encode(OBSERVED[spec.id].model_dump(mode="python")), "seconds": 0.01}
               for spec in SPECS]
    records.append({"check": "not-in-the-rubric", "status": "raised", "error": {
        "type": "ValueError", "message": "bad", "during": "calling f", "traceback": "Traceback ..."}})
    writer.arrays.update(EXTRA_ARRAYS)
    return records, writer


def valid_execution() -> dict[str, Any]:
    cell = {"index": 0, "type": "code", "status": "ok", "source": "import torch", "output": ""}
    failing = {"index": 3, "type": "code", "status": "error", "error": "NameError: name 'x' is not defined",
               "raised": {"type": "NameError", "message": "name 'x' is not defined", "line": 2}, "source": "x"}
    markdown = {"index": 1, "type": "markdown", "status": "ok", "words": 12}
    return {"form": "notebook", "cells": [cell, markdown, failing], "modules": [], "removed_commands": ["!pip x"],
            "cuda_on_cpu": [], "kernel_died": False, "died_in_cell": None}


def write_valid(out: Path) -> Path:
    records, writer = valid_records()
    observations.write(out, records, writer)
    (out / "execution.json").write_text(json.dumps(valid_execution()))
    (out / "stdout.txt").write_text("hello\n")
    (out / "stderr.txt").write_text("")
    return out


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    out = write_valid(tmp_path_factory.mktemp("valid"))
    return {name: (out / name).read_bytes() for name in FILES}


# ---------------------------------------------------------------- the host's path, with its assertions


def host_reads(out: Path) -> tuple[Any, list[Any]]:
    """Read ``out`` and judge it as the pipeline does, within the time bound, and check that every
    outcome is one a tampered output may get, with a message that says something."""
    box: dict[str, Any] = {}

    def read_and_judge() -> None:
        start = time.thread_time()
        try:
            run = read_back(out, Ending(exit_code=0), LIMITS)
            box["run"] = run
            box["results"] = judge_all(SPECS, run.records, run.arrays, EXPECTED, run.status, run.message,
                                       SUBMITTED, execution=run.execution, targets=TARGETS)
        except BaseException as exc:  # noqa: BLE001 - reported below with the input that caused it
            box["raised"] = exc
        box["cpu"] = time.thread_time() - start

    worker = threading.Thread(target=read_and_judge, daemon=True)  # a hang fails the test instead of stalling it
    worker.start()
    worker.join(HANG_SECONDS)
    assert not worker.is_alive(), f"reading and judging {out} did not end within {HANG_SECONDS}s"
    assert box["cpu"] < SECONDS_PER_INPUT, f"reading and judging {out} took {box['cpu']:.1f}s of CPU"
    if "raised" in box:
        raise AssertionError(f"reading or judging {out} raised") from box["raised"]
    run, results = box["run"], box["results"]
    assert run.status in RUN_STATUSES, (run.status, run.message)
    if run.status == "invalid-output":
        assert any(name in run.message or what in run.message for name, what in (
            (observations.JSON_NAME, "observations"), (observations.ARRAYS_NAME, "arrays"),
            ("execution.json", "execution"))), run.message
        assert len(run.message.split(": ", 1)[-1]) > 10, run.message
    assert len(run.stdout) <= 2 * LIMITS["output_chars"] + 100 and len(run.stderr) <= 2 * LIMITS["output_chars"] + 100
    assert [r.id for r in results] == [s.id for s in SPECS]
    for result in results:
        assert result.outcome in OUTCOMES, (result.id, result.outcome, result.message)
        assert result.message.strip(), (result.id, result.outcome)
        if result.outcome == "grader-error":
            assert result.message.startswith(FORGEABLE_GRADER_ERRORS), (result.id, result.message, result.traceback)
        if result.message.startswith(INVALID_OBSERVATION):
            assert len(result.message.split("): ", 1)[-1]) > 5, result.message
    return run, results


@pytest.fixture(autouse=True)
def no_pickle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tripwires on every way a pickle could be loaded while the host reads a run."""
    def tripped(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the host tried to unpickle the sandbox's output")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, tripped)
    real_read_array = np.lib.format.read_array

    def read_array(*args: Any, allow_pickle: bool = False, **kwargs: Any) -> Any:
        assert not allow_pickle, "the host read an array with allow_pickle=True"
        return real_read_array(*args, allow_pickle=False, **kwargs)

    monkeypatch.setattr(np.lib.format, "read_array", read_array)
    real_np_load = np.load

    def np_load(*args: Any, allow_pickle: bool = False, **kwargs: Any) -> Any:
        assert not allow_pickle, "the host called np.load with allow_pickle=True"
        return real_np_load(*args, allow_pickle=False, **kwargs)

    monkeypatch.setattr(np, "load", np_load)
    import torch

    monkeypatch.setattr(torch, "load", tripped)


def test_the_valid_output_is_read_and_judged_cleanly(tmp_path):
    run, results = host_reads(write_valid(tmp_path))
    assert run.status == "ok", run.message
    assert run.execution is not None and len(run.records) == len(SPECS) + 1
    assert not [r for r in results if r.message.startswith(INVALID_OBSERVATION)]
    assert {r.outcome for r in results} <= {"passed", "failed", "skipped", "needs-review"}


# ---------------------------------------------------------------- seeded random mutation


def _write_files(out: Path, files: dict[str, bytes]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (out / name).write_bytes(data)
    return out


def _flip(rng: random.Random, data: bytes) -> bytes:
    raw = bytearray(data)
    for _ in range(rng.choice((1, 2, 8, 64))):
        at = rng.randrange(len(raw))
        raw[at] = rng.choice((raw[at] ^ (1 << rng.randrange(8)), rng.randrange(256), 0xFF, 0x00))
    return bytes(raw)


def _splice(rng: random.Random, data: bytes) -> bytes:
    """A stretch cut out, repeated or replaced by junk."""
    a = rng.randrange(len(data))
    b = min(len(data), a + rng.choice((1, 4, 30, 500)))
    how = rng.randrange(3)
    if how == 0:
        return data[:a] + data[b:]
    if how == 1:
        return data[:b] + data[a:b] * rng.choice((2, 50)) + data[b:]
    return data[:a] + bytes(rng.randrange(256) for _ in range(b - a)) + data[b:]


@pytest.mark.parametrize("name", FILES)
def test_byte_flips_and_splices(tmp_path, valid_files, name):
    rng = random.Random(f"bytes-{name}")
    for trial in range(50):
        mutate = _flip if trial % 2 else _splice
        host_reads(_write_files(tmp_path / str(trial), {**valid_files, name: mutate(rng, valid_files[name])}))


@pytest.mark.parametrize("name", FILES)
def test_truncation_everywhere(tmp_path, valid_files, name):
    data = valid_files[name]
    offsets = sorted({*range(0, len(data), max(1, len(data) // 40)), *range(max(0, len(data) - 30), len(data))})
    for offset in offsets:
        host_reads(_write_files(tmp_path / str(offset), {**valid_files, name: data[:offset]}))


NASTY_VALUES: list[Any] = [
    None, True, False, 0, -1, 1, 2**63 - 1, -2**63, 2**64 - 1, 10**30, 0.0, -0.0, 1e308, 1e-320, float("nan"),
    float("inf"), float("-inf"), "", "x" * 5000, "\u0000\ud7ff\U0001f600", "../../etc/passwd", [], [[]], [1, 2, 3],
    [None], ["a", 1, 2.5], {}, {"$array": "a0"}, {"$array": "zero_d"}, {"$array": "empty"}, {"$array": "fortran"},
    {"$array": "big_endian"}, {"$array": "half"}, {"$array": "bools"}, {"$array": "complex"},
    {"$array": "structured"}, {"$array": "void"}, {"$array": "text"}, {"$array": "nan"}, {"$array": "inf"},
    {"$array": "uint_max"}, {"$array": "huge_ints"}, {"$array": "wide"}, {"$array": "datetime"},
    {"$array": "missing"}, {"$array": 3}, {"$array": None}, {"$array": "a0", "more": 1}, {"score": 100},
]


def _paths(value: Any, here: tuple = ()) -> list[tuple]:
    """Every place in a JSON value, as a path of keys and indexes."""
    found = [here]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*here, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*here, index))
    return found


def _replace(doc: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return doc


def _mutated_json(rng: random.Random, doc: Any) -> Any:
    """One to three changes: a nasty value put in place of another, a key dropped or added, a
    list emptied or lengthened."""
    doc = copy.deepcopy(doc)
    for _ in range(rng.choice((1, 1, 2, 3))):
        path = rng.choice(_paths(doc))
        target = doc
        for step in path:
            target = target[step]
        how = rng.randrange(10)
        if how == 0 and isinstance(target, dict) and target:
            del target[rng.choice(list(target))]
        elif how == 1 and isinstance(target, dict):
            target[rng.choice(("extra", "score", "passed", "$array", "check"))] = rng.choice(NASTY_VALUES)
        elif how == 2 and isinstance(target, list) and target:
            target.extend(copy.deepcopy(target) * rng.choice((1, 30)))
        elif how == 3 and isinstance(target, list):
            target.clear()
        else:
            doc = _replace(doc, path, copy.deepcopy(rng.choice(NASTY_VALUES)))
    return doc


@pytest.mark.parametrize("name, seed", [(observations.JSON_NAME, s) for s in range(6)] + [("execution.json", 0)])
def test_values_of_right_and_wrong_types_in_valid_records(tmp_path, valid_files, name, seed):
    rng = random.Random(f"values-{name}-{seed}")
    doc = json.loads(valid_files[name])
    for trial in range(60):
        text = json.dumps(_mutated_json(rng, doc), allow_nan=True)
        host_reads(_write_files(tmp_path / str(trial), {**valid_files, name: text.encode()}))


def _npz(arrays: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # judges computing with NaN and infinity, as they may
def test_arrays_swapped_for_nasty_ones(tmp_path, valid_files):
    """Every array a record refers to, replaced in turn by each odd kind of array."""
    with np.load(io.BytesIO(valid_files[observations.ARRAYS_NAME])) as npz:
        arrays = {key: npz[key] for key in npz.files}
    referenced = [key for key in arrays if key not in EXTRA_ARRAYS]
    for key in referenced:
        for odd, value in EXTRA_ARRAYS.items():
            files = {**valid_files, observations.ARRAYS_NAME: _npz({**arrays, key: value})}
            host_reads(_write_files(tmp_path / f"{key}-{odd}", files))


# ---------------------------------------------------------------- hand-written nasty cases


def _npy_header(descr: str, shape: tuple, fortran: bool = False) -> bytes:
    header = repr({"descr": descr, "fortran_order": fortran, "shape": shape}).encode("latin1")
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


def _zip(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _with_arrays(tmp_path: Path, valid_files: dict[str, bytes], data: bytes) -> tuple[Any, list[Any]]:
    return host_reads(_write_files(tmp_path / "out", {**valid_files, observations.ARRAYS_NAME: data}))


def _refused(run: Any, *words: str) -> None:
    assert run.status == "invalid-output", (run.status, run.message)
    for word in words:
        assert word in run.message, (word, run.message)


@pytest.mark.parametrize("shape, words", [
    ((10**12,), ["declares shape (1000000000000,)", "holds 16 bytes"]),
    ((2**40, 2**40), ["declares shape"]),
    ((-2, -1), ["negative dimension"]),
])
def test_npy_header_declaring_more_than_its_member_holds(tmp_path, valid_files, shape, words):
    data = _zip({"a0.npy": _npy_header("<f8", shape) + b"\x00" * 16})
    _refused(_with_arrays(tmp_path, valid_files, data)[0], "array 'a0'", *words)


def test_zip_bomb_declaring_small_sizes_is_cut_at_the_declared_size(tmp_path, valid_files):
    """A member whose directory entry claims 200 bytes but unpacks to 50 MB: zipfile stops at the
    claim and the checksum fails; nothing near 50 MB is ever held."""
    payload = _npy_header("<f8", (25,)) + b"\x00" * (50 * 2**20)
    data = bytearray(_zip({"a0.npy": payload}, zipfile.ZIP_DEFLATED))
    directory = data.rfind(b"PK\x01\x02")
    local = data.find(b"PK\x03\x04")
    for at in (directory + 24, local + 22):  # uncompressed size, in the directory and the local header
        data[at:at + 4] = struct.pack("<L", len(_npy_header("<f8", (25,))) + 200)
    _refused(_with_arrays(tmp_path, valid_files, bytes(data))[0], "arrays file")


def test_arrays_unpacking_past_the_cap_are_refused_before_unpacking(tmp_path, valid_files, monkeypatch):
    monkeypatch.setattr(observations, "MAX_ARRAYS_BYTES", 4096)
    data = _zip({"a0.npy": _npy_header("<f8", (1000,)) + b"\x00" * 8000}, zipfile.ZIP_DEFLATED)
    _refused(_with_arrays(tmp_path, valid_files, data)[0], "over the 4,096-byte cap")


def test_too_many_arrays_are_refused(tmp_path, valid_files, monkeypatch):
    monkeypatch.setattr(observations, "MAX_ARRAYS", 5)
    data = _npz({f"a{i}": np.zeros(1) for i in range(6)})
    _refused(_with_arrays(tmp_path, valid_files, data)[0], "5 arrays")


def test_zip64_and_oversized_directories_are_refused(tmp_path, valid_files, monkeypatch):
    data = bytearray(_npz({"a0": np.zeros(3)}))
    end = data.rfind(b"PK\x05\x06")
    data[end + 8:end + 12] = struct.pack("<HH", 0xFFFF, 0xFFFF)
    _refused(_with_arrays(tmp_path / "zip64", valid_files, bytes(data))[0], "ZIP64")
    monkeypatch.setattr(observations, "MAX_ZIP_DIRECTORY_BYTES", 100)
    _refused(_with_arrays(tmp_path / "directory", valid_files, _npz({f"a{i}": np.zeros(1) for i in range(4)}))[0],
             "100 bytes")


@pytest.mark.parametrize("members, words", [
    ({"a0.npy": b"", "notes.txt": b"hello"}, ["'notes.txt'", "not a .npy array"]),
    ({"a0.npy": _npy_header("<f8", (1,)) + bytes(8), "dir/": b""}, ["not a .npy array"]),
    ({"a0.npy": b"\x93NUMPY\x03\x00" + bytes(20)}, ["array 'a0'", "format (3, 0)"]),
    ({"a0.npy": b"not an npy file at all"}, ["arrays file"]),
    ({"a0.npy": _npy_header("<f8", (2,))[:-1] + b"X" + bytes(16)}, ["arrays file"]),
])
def test_members_that_are_not_arrays(tmp_path, valid_files, members, words):
    _refused(_with_arrays(tmp_path, valid_files, _zip(members))[0], *words)


def test_a_member_twice_is_refused(tmp_path, valid_files):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive, pytest.warns(UserWarning):
        archive.writestr("a0.npy", _npy_header("<f8", (1,)) + bytes(8))
        archive.writestr("a0.npy", _npy_header("<f8", (1,)) + bytes(8))
    _refused(_with_arrays(tmp_path, valid_files, buffer.getvalue())[0], "'a0.npy' twice")


class _Planted:
    """Unpickling this creates the marker file: proof that a pickle ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return Path.touch, (self.marker,)


def test_a_planted_pickle_never_runs(tmp_path, valid_files):
    marker = tmp_path / "pickle-ran"
    buffer = io.BytesIO()
    np.save(buffer, np.array([_Planted(marker), None], dtype=object), allow_pickle=True)
    data = _zip({"a0.npy": buffer.getvalue()})
    _refused(_with_arrays(tmp_path, valid_files, data)[0], "array 'a0'", "Python objects")
    with open(tmp_path / "payload.pkl", "wb") as f:  # the same payload as a bare file in place of the arrays
        pickle.dump(_Planted(marker), f)
    _refused(_with_arrays(tmp_path / "bare", valid_files, (tmp_path / "payload.pkl").read_bytes())[0], "arrays file")
    assert not marker.exists()


def test_npy_file_in_place_of_the_archive_is_refused(tmp_path, valid_files):
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(3))
    _refused(_with_arrays(tmp_path, valid_files, buffer.getvalue())[0], "not a zip archive")


@pytest.mark.parametrize("name", [observations.JSON_NAME, "execution.json"])
@pytest.mark.parametrize("content, words", [
    (b"\xff\xfe{\"format\": 1}", ["not UTF-8", "byte 0"]),
    (b"[" * 100_000 + b"]" * 100_000, []),
    (b"", []),
    (b"[1, 2, 3]", []),
    (b"null", []),
    (b"{\"format\": 1, \"format\": 1, \"records\": []}", ["'format' appears twice"]),
    (b"{\"format\": 1, \"records\": [], \"" + b"k" * 100_000 + b"\": 1}", []),
    (b"{\"format\": 1, \"records\": [{\"check\": \"x\", \"status\": \"observed\", \"seconds\": 1" + b"0" * 5000 + b"}]}",
     ["does not fit in 64 bits"]),
    (b"{\"format\": 18446744073709551616, \"records\": []}", ["does not fit in 64 bits"]),
])
def test_malformed_json_files(tmp_path, valid_files, name, content, words):
    run, _ = host_reads(_write_files(tmp_path, {**valid_files, name: content}))
    _refused(run, *words)
    assert len(run.message) < 1000, run.message


@pytest.mark.parametrize("number", ["1e309", "-1e309", "NaN", "Infinity", "-Infinity", "1e-400", "-0.0"])
def test_special_numbers_where_numbers_belong(tmp_path, valid_files, number):
    """Out-of-range and non-finite floats in every number of every record: each check still gets
    an outcome of its own (a diverged loss is a real observation), never a judge crash."""
    doc = json.loads(valid_files[observations.JSON_NAME])
    for path in _paths(doc):
        value = doc
        for step in path:
            value = value[step]
        if type(value) is float:
            _replace(doc, path, "@@")
    text = json.dumps(doc).replace('"@@"', number)
    host_reads(_write_files(tmp_path, {**valid_files, observations.JSON_NAME: text.encode()}))


def test_nesting_within_the_cap_everywhere(tmp_path, valid_files):
    deep: Any = 1
    for _ in range(observations.MAX_DEPTH - 4):
        deep = {"k": [deep]} if isinstance(deep, list) else [deep]
    doc = json.loads(valid_files[observations.JSON_NAME])
    for record in doc["records"]:
        if record.get("data"):
            for key in record["data"]:
                record["data"][key] = deep
    host_reads(_write_files(tmp_path, {**valid_files, observations.JSON_NAME: json.dumps(doc).encode()}))


def test_two_records_for_one_check_are_refused(tmp_path, valid_files):
    doc = json.loads(valid_files[observations.JSON_NAME])
    doc["records"].append(copy.deepcopy(doc["records"][0]))
    run, _ = host_reads(_write_files(tmp_path, {**valid_files, observations.JSON_NAME: json.dumps(doc).encode()}))
    _refused(run, "both report check 'resblock-defined'")


def test_a_long_forged_key_is_cut_in_the_message(tmp_path, valid_files):
    doc = json.loads(valid_files[observations.JSON_NAME])
    doc["records"][0]["k" * 100_000] = 1
    run, _ = host_reads(_write_files(tmp_path, {**valid_files, observations.JSON_NAME: json.dumps(doc).encode()}))
    _refused(run, "Extra inputs are not permitted")
    assert len(run.message) < 1000


def test_huge_lists_within_the_size_cap_are_judged_in_time(tmp_path, valid_files):
    """Eight megabytes of calls, forwards and elements: the judges see them, within the bound."""
    doc = json.loads(valid_files[observations.JSON_NAME])
    for record in doc["records"]:
        data = record.get("data") or {}
        for key in ("calls", "forwards", "elements", "failed_cells", "runs"):
            if key in data and data[key]:
                data[key] = data[key] * (1500 if key != "runs" else 1)
    text = json.dumps(doc).encode()
    assert len(text) <= observations.MAX_JSON_BYTES
    host_reads(_write_files(tmp_path, {**valid_files, observations.JSON_NAME: text}))


# ---------------------------------------------------------------- files that are not files


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _dev_zero(path: Path) -> None:
    path.symlink_to("/dev/zero")


def _folder(path: Path) -> None:
    path.mkdir()


def _dangling(path: Path) -> None:
    path.symlink_to(path.parent / "nowhere")


def _sparse_huge(path: Path) -> None:
    with open(path, "wb") as f:
        f.truncate(50 * 2**30)  # 50 GB that take no disk


@pytest.mark.parametrize("name", [*FILES, "stdout.txt", "stderr.txt"])
@pytest.mark.parametrize("make", [_fifo, _dev_zero, _folder, _dangling, _sparse_huge],
                         ids=["fifo", "dev-zero", "folder", "dangling-link", "sparse-50GB"])
def test_special_files_in_place_of_outputs(tmp_path, valid_files, name, make: Callable[[Path], None]):
    """At the process level the student's code writes the output folder itself: a FIFO would
    block a reader forever, ``/dev/zero`` never ends, a sparse file claims 50 GB."""
    out = write_valid(tmp_path / "out")
    (out / name).unlink()
    make(out / name)
    run, _ = host_reads(out)
    if name in FILES and make is not _dangling:
        _refused(run, name)
    elif name in FILES:  # a link to nothing reads as no file; a missing arrays file fails the records that need it
        assert run.status in RUN_STATUSES
    else:
        assert run.status == "ok", run.message


def test_a_whole_folder_of_garbage_reads_as_invalid_output(tmp_path):
    rng = random.Random("garbage")
    for trial in range(20):
        files = {name: bytes(rng.randrange(256) for _ in range(rng.choice((1, 50, 3000)))) for name in FILES}
        host_reads(_write_files(tmp_path / str(trial), files))


def test_execution_record_numbers_out_of_range(tmp_path, valid_files):
    record = valid_execution()
    record["cells"][2]["raised"]["line"] = -2**63
    record["died_in_cell"] = 2**63 - 1
    record["kernel_died"] = True
    record["kernel_signal"] = 2**62
    run, results = host_reads(_write_files(tmp_path, {**valid_files, "execution.json": json.dumps(record).encode()}))
    assert run.status == "crash" and "signal" in run.message
    assert math.isfinite(run.seconds)
