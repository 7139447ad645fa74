"""The local executor: outcomes in item order, callbacks in completion order, a slot never used
by two running items, and a clean stop on Ctrl-C or on a failing item."""

from __future__ import annotations

import threading
import time

import pytest

from grader.executors.local import LocalExecutor
from grader.sandbox import Slot


def slots(n: int) -> list[Slot]:
    return [Slot(index=i) for i in range(n)]


def test_outcomes_come_back_in_item_order_and_callbacks_in_completion_order():
    delays = {"slow": 0.3, "medium": 0.15, "fast": 0.0}
    finished: list[str] = []
    outcomes = LocalExecutor(slots(3)).run(
        list(delays), lambda item, slot: (time.sleep(delays[item]), item.upper())[1],
        on_done=lambda item, outcome: finished.append(outcome))
    assert outcomes == ["SLOW", "MEDIUM", "FAST"]
    assert finished == ["FAST", "MEDIUM", "SLOW"]


def test_no_two_running_items_share_a_slot():
    busy: set[int] = set()
    lock = threading.Lock()
    most = 0
    clashes: list[int] = []

    def work(item: int, slot: Slot) -> int:
        nonlocal most
        with lock:
            if slot.index in busy:
                clashes.append(slot.index)
            busy.add(slot.index)
            most = max(most, len(busy))
        time.sleep(0.01 * (item % 3))
        with lock:
            busy.discard(slot.index)
        return slot.index

    used = LocalExecutor(slots(4)).run(list(range(30)), work)
    assert clashes == []
    assert 1 < most <= 4
    assert set(used) <= {0, 1, 2, 3}


def test_callbacks_run_in_the_calling_thread():
    caller = threading.get_ident()
    threads: set[int] = set()
    LocalExecutor(slots(3)).run(list(range(6)), lambda item, slot: item,
                                on_done=lambda item, outcome: threads.add(threading.get_ident()),
                                on_start=lambda item, slot: threads.add(threading.get_ident()))
    assert threads == {caller}


def test_fewer_items_than_slots_and_no_items():
    started: list[int] = []
    assert LocalExecutor(slots(8)).run([5], lambda item, slot: item * 2,
                                       on_start=lambda item, slot: started.append(slot.index)) == [10]
    assert started == [0]
    assert LocalExecutor(slots(8)).run([], lambda item, slot: item) == []


def test_ctrl_c_stops_handing_out_work_and_ends_the_children():
    ended = threading.Event()
    ran: list[int] = []

    def work(item: int, slot: Slot) -> int:
        ran.append(item)
        if item > 0:
            ended.wait(10)  # a run blocked on its child until the child is killed
        return item

    def on_done(item: int, outcome: int) -> None:
        if item == 0:
            raise KeyboardInterrupt

    executor = LocalExecutor(slots(2), stop_children=ended.set)
    with pytest.raises(KeyboardInterrupt):
        executor.run(list(range(10)), work, on_done=on_done)
    assert ended.is_set() and executor.stopping.is_set()
    assert sorted(ran) in ([0, 1], [0, 1, 2])  # at most one more item per slot's thread, then the stop


def test_a_child_started_just_after_the_stop_is_ended_too(monkeypatch):
    """The race of a slot that was about to start its child when Ctrl-C came: the executor keeps
    ending children while it waits for the threads, so the late child does not run to its limit."""
    import grader.executors.local as local

    monkeypatch.setattr(local, "SWEEP_SECONDS", 0.05)
    sweeps: list[float] = []
    late_child = threading.Event()
    killed = threading.Event()

    def stop_children() -> None:
        sweeps.append(time.monotonic())
        if late_child.is_set():
            killed.set()

    def work(item: int, slot: Slot) -> int:
        if item == 0:
            raise KeyboardInterrupt
        time.sleep(0.2)  # still setting up when the first sweep runs
        late_child.set()
        assert killed.wait(10), "the late child was never ended"
        return item

    executor = LocalExecutor(slots(2), stop_children=stop_children)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        executor.run([0, 1], work)
    assert killed.is_set() and len(sweeps) >= 2
    assert time.monotonic() - started < 5


def test_a_failing_item_stops_the_batch_and_is_raised():
    ended = threading.Event()

    def work(item: int, slot: Slot) -> int:
        if item == 2:
            raise OSError("journal disk full")
        return item

    with pytest.raises(OSError, match="journal disk full"):
        LocalExecutor(slots(1), stop_children=ended.set).run(list(range(5)), work)
    assert ended.is_set()


def test_slot_indices_must_be_unique():
    with pytest.raises(ValueError, match="unique"):
        LocalExecutor([Slot(0), Slot(0, gpu="1")])
    with pytest.raises(ValueError, match="at least one slot"):
        LocalExecutor([])
