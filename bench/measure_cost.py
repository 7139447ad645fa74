"""What the measure stage adds to grading each assignment's examples.

    .venv/bin/python bench/measure_cost.py                                    # all five, auto isolation
    .venv/bin/python bench/measure_cost.py --assignments custom-ops --limit 2  # a smoke run, a minute

Issue 12 allows the measure stage (``grader.measuring``: a second sandbox per submission that runs
the captured graphs) to add at most a third to the median time of grading an assignment's
examples. For each assignment (``submissions/<assignment>/``), its examples are graded twice, in
this process, with ``pipeline.prepare`` and ``pipeline.grade_batch`` as ``tests/test_examples.py``
does: the quick profile, 2 workers, the chosen ``--isolation``, synthetic data (an empty data root):

- ``with``: the grader as it is;
- ``without``: ``grader.measuring.measure`` replaced by a function returning None, so every check
  is judged as if no measure stage existed (a measured kind then falls back to what the student's
  run reported, and its grade may differ: the table counts the examples whose score changed). The
  capture itself is part of the student's run and is in both.

The two runs alternate which goes first from one assignment to the next, so a machine that slows
down or warms up over the bench hits both alike. Per assignment the table gives the median and the
total per-submission seconds (``SubmissionResult.seconds``: staging to judging) of each run, the
ratio of the medians, and the median wall time of the measure stage itself, timed around each call
that started a measure sandbox, with its share of the median submission without it (on a busy
machine the two runs' medians wander more than the stage costs; its own time does not). JSON goes to ``bench/results/measure_cost.json`` (or ``--json``),
with the load average before and after: on a shared machine it moves the numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from grader import measuring, pipeline, rubric, submission, validation  # noqa: E402
from grader.executors.slots import plan_slots  # noqa: E402

ASSIGNMENTS = sorted(p.parent.name for p in (ROOT / "submissions").glob(f"*/{validation.MANIFEST}"))
WORKERS = 2


class MeasureTimer:
    """Stands in for ``measuring.measure`` during a ``with`` run: calls it and keeps the wall time
    of each call that had something to measure (a call that finds nothing starts no sandbox)."""

    def __init__(self, measure: Any):
        self.measure = measure
        self.seconds: list[float] = []
        self.lock = threading.Lock()  # the workers call it from their own threads

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        start = time.monotonic()
        found = self.measure(*args, **kwargs)
        if found is not None:
            with self.lock:
                self.seconds.append(time.monotonic() - start)
        return found


def no_measure_stage(*args: Any, **kwargs: Any) -> None:
    """The baseline's ``measuring.measure``: nothing measured, as before the stage existed."""
    return None


@contextlib.contextmanager
def measure_replaced(by: Any) -> Iterator[None]:
    # pipeline calls measuring.measure through the module, so replacing the attribute reaches it
    original = measuring.measure
    measuring.measure = by
    try:
        yield
    finally:
        measuring.measure = original


def grade(subs: list[submission.Submission], prep: pipeline.Prepared, measure: Any) -> list[Any]:
    with measure_replaced(measure):
        return pipeline.grade_batch(subs, prep, slots=plan_slots(WORKERS, [], 1))


def bench_assignment(name: str, isolation: str, limit: int | None, baseline_first: bool, data_root: Path
                     ) -> dict[str, Any]:
    loaded = rubric.load(ROOT / "rubrics" / f"{name}.yaml")
    prep = pipeline.prepare(loaded, pipeline.Settings(profile="quick", data_root=data_root, isolation=isolation))
    subs = submission.discover([validation.examples_folder(loaded)])[:limit]
    timer = MeasureTimer(measuring.measure)
    runs: dict[str, list[Any]] = {}
    for mode in (("without", "with") if baseline_first else ("with", "without")):
        runs[mode] = grade(subs, prep, no_measure_stage if mode == "without" else timer)
    row: dict[str, Any] = {"assignment": name, "isolation": prep.isolation, "examples": len(subs),
                           "first": "without" if baseline_first else "with"}
    for mode, results in runs.items():
        seconds = [r.seconds for r in results]
        row[mode] = {"median_seconds": round(statistics.median(seconds), 2), "total_seconds": round(sum(seconds), 2),
                     "seconds": {Path(r.source).name: round(r.seconds, 2) for r in results}}
    row["ratio"] = round(row["with"]["median_seconds"] / max(row["without"]["median_seconds"], 1e-9), 3)
    row["measure_runs"] = len(timer.seconds)
    row["measure_median_seconds"] = round(statistics.median(timer.seconds), 2) if timer.seconds else 0.0
    # the stage's own time against a submission's: steadier on a busy machine than the ratio of two runs
    row["measure_share"] = round(row["measure_median_seconds"] / max(row["without"]["median_seconds"], 1e-9), 3)
    row["scores_changed"] = sorted(Path(a.source).name for a, b in zip(runs["with"], runs["without"])
                                   if a.score != b.score)
    return row


def table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'assignment':<16} {'n':>3} {'median with':>11} {'without':>8} {'ratio':>6} {'total with':>10} "
             f"{'without':>8} {'measure runs':>12} {'median':>7} {'share':>6} {'scores changed':>14}"]
    for r in rows:
        lines.append(f"{r['assignment']:<16} {r['examples']:>3} {r['with']['median_seconds']:>11.2f} "
                     f"{r['without']['median_seconds']:>8.2f} {r['ratio']:>6.2f} {r['with']['total_seconds']:>10.1f} "
                     f"{r['without']['total_seconds']:>8.1f} {r['measure_runs']:>12} "
                     f"{r['measure_median_seconds']:>7.2f} {r['measure_share']:>6.2f} {len(r['scores_changed']):>14}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assignments", nargs="+", choices=ASSIGNMENTS, default=ASSIGNMENTS)
    parser.add_argument("--isolation", default="auto", choices=["auto", "namespace", "process", "none"])
    parser.add_argument("--limit", type=int, default=None, help="grade only the first N examples of each assignment")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "measure_cost.json")
    args = parser.parse_args(argv)
    report: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "cores": os.cpu_count(), "workers": WORKERS,
                              "profile": "quick", "command": " ".join(["bench/measure_cost.py", *sys.argv[1:]]),
                              "load_average_before": round(os.getloadavg()[0], 2), "assignments": []}
    with tempfile.TemporaryDirectory(prefix="measure-cost-") as empty:
        for i, name in enumerate(args.assignments):
            row = bench_assignment(name, args.isolation, args.limit, baseline_first=i % 2 == 0,
                                   data_root=Path(empty) / "no-real-data")
            report["assignments"].append(row)
            print(table([row]).splitlines()[-1] if i else table([row]), flush=True)
    report["load_average_after"] = round(os.getloadavg()[0], 2)
    print(f"load average {report['load_average_before']} before, {report['load_average_after']} after; "
          f"{report['cores']} cores")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"written: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
