"""Run a batch's work in parallel slots on this machine.

One thread per slot, each taking the next item when its previous one is done. Threads suffice: a
submission's grading spends its time waiting on its sandbox's child process. Because a slot
belongs to one thread, no two running items ever share a slot (its GPU place); sandbox uids are
not tied to slots but leased per run, host-wide (``grader.sandbox.uid_lease``).

Every callback runs in the calling thread, in completion order, so the caller needs no locks.
Ctrl-C arrives in that thread too; the executor then stops handing out work, sets ``stopping``
(work that finishes after it must not count: its child was killed under it), ends the child
processes (again and again while it waits a little for the threads, so that a run started in the
meantime is ended too), and lets the KeyboardInterrupt go on.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any, Callable, Generic, Sequence, TypeVar

from grader import sandbox
from grader.sandbox import Slot

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")
JOIN_SECONDS = 15.0  # after a stop, how long the threads get to record what they were doing
SWEEP_SECONDS = 0.5  # after a stop, how often runs started late are ended


class LocalExecutor(Generic[Item, Outcome]):
    """Runs ``work(item, slot)`` for many items, as many at once as there are slots.

    Args:
        slots: the places to run in; indices must be unique.
        stop_children: ends the processes the work started, when the batch stops early
            (default: :func:`grader.sandbox.stop_all`).
    """

    def __init__(self, slots: Sequence[Slot], stop_children: Callable[[], Any] | None = None):
        if not slots:
            raise ValueError("an executor needs at least one slot")
        if len({s.index for s in slots}) != len(slots):
            raise ValueError(f"slot indices must be unique: {[s.index for s in slots]}")
        self.slots = list(slots)
        self.stopping = threading.Event()
        self._stop_children = stop_children

    def run(self, items: Sequence[Item], work: Callable[[Item, Slot], Outcome],
            on_done: Callable[[Item, Outcome], None] | None = None,
            on_start: Callable[[Item, Slot], None] | None = None) -> list[Outcome]:
        """Run every item; returns the outcomes in the items' order.

        ``on_start`` and ``on_done`` are called as items start and finish. An exception raised by
        ``work`` or a callback stops the batch (as Ctrl-C does) and is raised here.
        """
        todo: queue.SimpleQueue[tuple[int, Item]] = queue.SimpleQueue()
        for position, item in enumerate(items):
            todo.put((position, item))
        events: queue.SimpleQueue[tuple[str, int, Any]] = queue.SimpleQueue()
        threads = [threading.Thread(target=self._serve, args=(slot, todo, events, work), daemon=True,
                                    name=f"grader-slot-{slot.index}") for slot in self.slots[:len(items)]]
        outcomes: list[Any] = [None] * len(items)
        left = len(items)
        try:
            for thread in threads:
                thread.start()
            while left:
                kind, position, value = events.get()
                if kind == "raised":
                    raise value
                if kind == "started" and on_start:
                    on_start(items[position], value)
                elif kind == "done":
                    outcomes[position], left = value, left - 1
                    if on_done:
                        on_done(items[position], value)
        except BaseException:
            self._stop(threads)
            raise
        for thread in threads:
            thread.join()
        return outcomes

    def _serve(self, slot: Slot, todo: queue.SimpleQueue, events: queue.SimpleQueue,
               work: Callable[[Item, Slot], Outcome]) -> None:
        """One slot's thread: take items until none is left or the batch stops."""
        while not self.stopping.is_set():
            try:
                position, item = todo.get_nowait()
            except queue.Empty:
                return
            events.put(("started", position, slot))
            try:
                outcome = work(item, slot)
            except BaseException as exc:  # noqa: BLE001 - handed to the calling thread, which raises it
                events.put(("raised", position, exc))
                return
            events.put(("done", position, outcome))

    def _stop(self, threads: list[threading.Thread]) -> None:
        # `stopping` first: any work that returns from now on had its child killed under it.
        self.stopping.set()
        stop_children = self._stop_children or sandbox.stop_all
        deadline = time.monotonic() + JOIN_SECONDS
        # Sweep again while waiting: a slot that was about to start its child when the first sweep
        # ran starts it just after, and that child would otherwise run to its wall limit.
        while True:
            stop_children()
            alive = [t for t in threads if t.is_alive()]
            if not alive or time.monotonic() >= deadline:
                return
            alive[0].join(min(SWEEP_SECONDS, max(0.0, deadline - time.monotonic())))
