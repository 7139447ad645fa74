"""What the measure stage adds to grading each assignment's examples.

    .venv/bin/python bench/measure_cost.py                                    # all five, auto isolation
    .venv/bin/python bench/measure_cost.py --assignments custom-ops --limit 2  # a smoke run, a minute

Issue 12 allows capture and measurement (``grader.measuring``: a second sandbox per submission
that runs the captured graphs) to add at most a third to the median time of grading an
assignment's examples. For each assignment (``submissions/<assignment>/``), its examples are
graded in this process, with ``pipeline.prepare`` and ``pipeline.grade_batch`` as
``tests/test_examples.py`` does: the quick profile, 2 workers, the chosen ``--isolation``,
synthetic data (an empty data root).

The measure stage does two kinds of work. With ``trainer: harness`` an accuracy check's training
happens there (it used to happen in the student's run, and would happen somewhere in any grader):
that is work *moved*, timed by the stage itself (``AccuracyMeasurement.seconds``). Everything else
the stage spends (its sandbox, loading and checking the artifacts, running the graphs) is work
*added*. So each call of ``measuring.measure`` is timed, and per assignment the table gives:

- the median per-submission seconds (``SubmissionResult.seconds``: staging to judging);
- the median wall time of the stage, of the training it did, and of what it added (stage less
  training);
- the share: the median added over the median submission less it, i.e. how much longer a median
  submission takes than it would with the training done in place and nothing measured.

JSON goes to ``bench/results/measure_cost.json`` (or ``--json``), with the load average before
and after: on a shared machine it moves the numbers.
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
from grader.checks.accuracy import AccuracyMeasurement  # noqa: E402
from grader.executors.slots import plan_slots  # noqa: E402

ASSIGNMENTS = sorted(p.parent.name for p in (ROOT / "submissions").glob(f"*/{validation.MANIFEST}"))
WORKERS = 2


class MeasureTimer:
    """Stands in for ``measuring.measure``: calls it and keeps, for each call that had something to
    measure (a call that finds nothing starts no sandbox), its wall time and the training it did."""

    def __init__(self, measure: Any):
        self.measure = measure
        self.calls: list[tuple[float, float]] = []  # (stage seconds, of which training)
        self.lock = threading.Lock()  # the workers call it from their own threads

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        start = time.monotonic()
        found = self.measure(*args, **kwargs)
        if found is not None:
            training = sum(m.data.seconds for m in found.values() if isinstance(m.data, AccuracyMeasurement))
            with self.lock:
                self.calls.append((time.monotonic() - start, training))
        return found


@contextlib.contextmanager
def measure_replaced(by: Any) -> Iterator[None]:
    # pipeline calls measuring.measure through the module, so replacing the attribute reaches it
    original = measuring.measure
    measuring.measure = by
    try:
        yield
    finally:
        measuring.measure = original


def bench_assignment(name: str, isolation: str, limit: int | None, data_root: Path) -> dict[str, Any]:
    loaded = rubric.load(ROOT / "rubrics" / f"{name}.yaml")
    # remeasure: each example's networks trained afresh, as a class of different networks would be,
    # not taken from grader.measure_cache because another example (or an earlier bench) made the same
    prep = pipeline.prepare(loaded, pipeline.Settings(profile="quick", data_root=data_root, isolation=isolation,
                                                      remeasure=True))
    subs = submission.discover([validation.examples_folder(loaded)])[:limit]
    timer = MeasureTimer(measuring.measure)
    with measure_replaced(timer):
        results = pipeline.grade_batch(subs, prep, slots=plan_slots(WORKERS, [], 1))
    seconds = [r.seconds for r in results]
    median = statistics.median(seconds)

    def median_of(values: list[float]) -> float:
        return round(statistics.median(values), 2) if values else 0.0

    stage = median_of([s for s, _ in timer.calls])
    training = median_of([t for _, t in timer.calls])
    added = median_of([s - t for s, t in timer.calls])
    return {"assignment": name, "isolation": prep.isolation, "examples": len(subs),
            "median_seconds": round(median, 2), "total_seconds": round(sum(seconds), 2),
            "seconds": {Path(r.source).name: round(r.seconds, 2) for r in results},
            "measure_runs": len(timer.calls), "stage_median_seconds": stage, "training_median_seconds": training,
            "added_median_seconds": added, "share": round(added / max(median - added, 1e-9), 3)}


def table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'assignment':<16} {'n':>3} {'median':>7} {'total':>7} {'measure runs':>12} {'stage':>6} "
             f"{'training':>8} {'added':>6} {'share':>6}"]
    for r in rows:
        lines.append(f"{r['assignment']:<16} {r['examples']:>3} {r['median_seconds']:>7.2f} {r['total_seconds']:>7.1f} "
                     f"{r['measure_runs']:>12} {r['stage_median_seconds']:>6.2f} {r['training_median_seconds']:>8.2f} "
                     f"{r['added_median_seconds']:>6.2f} {r['share']:>6.2f}")
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
            row = bench_assignment(name, args.isolation, args.limit, data_root=Path(empty) / "no-real-data")
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
