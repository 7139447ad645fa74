"""Measurements kept for the same inputs: what the key covers, what is kept, slots that wait for
each other, and a graded submission whose network is trained once and then reused."""

from __future__ import annotations

import shutil
import threading
import time

import numpy as np
import pytest

from grader import checks, measure_cache, measuring, numerics, pipeline, rubric, submission
from tests.conftest import FIXTURES

ACCURACY = checks.get("accuracy")


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADER_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def harness_spec(trainer: str = "harness"):
    loaded = rubric.load(FIXTURES / "accuracy" / "rubric.yaml")
    spec = next(c for c in loaded.model.checks if c.id == "harness-accuracy")
    return spec.model_copy(update={"trainer": trainer})


def observation(seconds: float = 1.5, channels_last: bool = False):
    return ACCURACY.Observation(models=[], train_images=600, epochs=2, device="cpu", seconds=seconds,
                                channels_last=channels_last)


def key(spec=None, obs=None, seed=7, given=None, device="cpu", read_only=()):
    return measure_cache.key_for(spec or harness_spec(), obs or observation(), seed,
                                 {"images": np.zeros((2, 1, 4, 4), np.uint8)} if given is None else given,
                                 measure_cache.setting(device, list(read_only)))


def test_the_key_follows_every_input_of_the_measurement_and_nothing_else(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.bin").write_bytes(b"1234")
    first = key(read_only=[data])
    assert key(read_only=[data]) == first
    assert key(obs=observation(seconds=99.0), read_only=[data]) == first  # how long the probe took changes nothing
    assert key(obs=observation(channels_last=True), read_only=[data]) != first
    assert key(seed=8, read_only=[data]) != first
    assert key(given={"images": np.ones((2, 1, 4, 4), np.uint8)}, read_only=[data]) != first
    assert key(device="cuda device 0", read_only=[data]) != first
    assert key(spec=harness_spec().model_copy(update={"epochs": 5}), read_only=[data]) != first
    (data / "train.bin").write_bytes(b"12345")
    assert key(read_only=[data]) != first  # data that changed
    changed = key(read_only=[data])
    monkeypatch.setattr(numerics, "describe", lambda device="cpu": {"threads": 3, "device": device})
    assert key(read_only=[data]) != changed  # another numeric configuration or CPU


def test_a_network_the_student_trained_is_measured_every_time():
    assert key(spec=harness_spec("student")) is None


def test_a_measurement_is_kept_and_read_back_validated(own_cache):
    made = ACCURACY.Measurement(predictions=[np.arange(4)], problems=[""], initial=[np.zeros(4, np.int64)],
                                trained_on="cpu", seconds=3.0)
    measure_cache.keep("k1", "accuracy", made)
    back = measure_cache.load("k1", "accuracy")
    assert back is not None and back.trained_on == "cpu" and np.array_equal(back.predictions[0], np.arange(4))
    assert measure_cache.load("k2", "accuracy") is None
    (own_cache / measure_cache.FOLDER / "k1" / "observations.json").write_text("{not json")
    assert measure_cache.load("k1", "accuracy") is None  # unreadable: measured again, never a traceback


def test_a_measurement_that_failed_is_not_kept(own_cache):
    failed = ACCURACY.Measurement(predictions=[None], problems=["training the captured network failed: "
                                                                "RuntimeError: out of memory"])
    measure_cache.keep("k1", "accuracy", failed)
    assert measure_cache.load("k1", "accuracy") is None


def test_a_slot_waits_for_a_measurement_another_slot_is_making():
    order: list[str] = []
    first_holds = threading.Event()

    def first() -> None:
        with measure_cache.claimed(["b", "a"]):
            first_holds.set()
            time.sleep(0.3)
            order.append("first done")

    thread = threading.Thread(target=first)
    thread.start()
    first_holds.wait()
    with measure_cache.claimed(["a"]):
        order.append("second started")
    thread.join()
    assert order == ["first done", "second started"]
    with measure_cache.claimed(["c"]):  # another key is not held up
        pass


@pytest.mark.slow  # three sandboxed runs of the tiny accuracy rubric
def test_a_network_is_trained_once_then_reused_until_force(own_cache, tmp_path, monkeypatch):
    """The same submission graded again measures nothing again and grades the same; ``remeasure``
    (``grade --force``) trains again and still grades the same."""
    folder = tmp_path / "accuracy"
    shutil.copytree(FIXTURES / "accuracy", folder)
    loaded = rubric.load(folder / "rubric.yaml")
    good = submission.single(folder / "submissions" / "good.py")
    runs: list[list[str]] = []
    sandboxed = measuring._measure_in_sandbox

    def counted(items, *args, **kwargs):
        runs.append([spec.id for spec, _ in items])
        return sandboxed(items, *args, **kwargs)

    monkeypatch.setattr(measuring, "_measure_in_sandbox", counted)
    grades = []
    for remeasure in (False, False, True):
        prep = pipeline.prepare(loaded, pipeline.Settings(profile="quick", isolation="process", remeasure=remeasure))
        result = pipeline.grade_one(good, prep)
        grades.append([(c.id, c.points, c.message) for c in result.checks])
    assert runs == [["harness-accuracy", "loop-accuracy"], ["loop-accuracy"], ["harness-accuracy", "loop-accuracy"]]
    assert grades[0] == grades[1] == grades[2]
    assert len(list((own_cache / measure_cache.FOLDER).iterdir())) == 1
