"""How often the reference fails its own calibrated threshold on seeds the calibration never saw.

    .venv/bin/python bench/calibration_tail.py                       # every calibrated check, 300 seeds
    .venv/bin/python bench/calibration_tail.py fc-vs-cnn --seeds 40  # one assignment, fewer seeds

A calibrated accuracy threshold is meant to fail correct work less than once in a thousand
(``grader.calibration.FALSE_FAIL_GOAL``). The calibration estimates that rate from a normal fit of
its seeds; this benchmark measures it. For each calibrated check on file (profile, CPU, the data
origin found here) it trains the reference on fresh seeds (10,000 and up: never a calibration's
seeds), under the same pinned numeric configuration as grading, and counts the runs below the
stored threshold. Zero failures in N seeds bound the true rate below about 3/N (95%), so showing
1 in 1,000 takes a few thousand seeds; 300 shows 1 in 100.

Prints a table and writes JSON to ``bench/results/calibration_tail.json`` (or ``--out``): one row
per check, a run replacing the rows of the checks it measured.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from grader import calibration, data, profiles, rubric  # noqa: E402
from grader.checks.accuracy import AccuracySpec  # noqa: E402

FRESH_SEEDS_FROM = 10_000
ROOT = Path(__file__).resolve().parents[1]


def measure(rubric_path: Path, seeds: int, jobs: int, profile: str, only: set[str]) -> list[dict]:
    loaded = rubric.load(rubric_path)
    wanted = [c for c in loaded.model.checks if isinstance(c, AccuracySpec) and c.threshold == "calibrated"
              and (not only or c.id in only)]
    if not wanted:
        return []
    found = data.resolve(loaded.model.data.dataset, None)
    name = profiles.choose(profile, found.origin)
    planned = {spec.id: profiles.planned_spec(loaded, spec, name, found, "cpu") for spec in wanted}
    truths = {check_id: profiles.truth_for(loaded, spec, name, found) for check_id, spec in planned.items()}
    fresh = [FRESH_SEEDS_FROM + i for i in range(seeds)]
    start = time.monotonic()
    accuracies, device = calibration.reference_accuracies(loaded, planned, truths, fresh, jobs)
    rows = []
    for check_id, by_seed in accuracies.items():
        stats = truths[check_id].calibrations.get(device)
        if stats is None:
            rows.append({"assignment": loaded.model.assignment, "check": check_id, "problem": "no current calibration"})
            continue
        needed = calibration.calibrated_threshold(stats.accuracies, stats.test_images, planned[check_id].floor).needed
        values = list(by_seed.values())
        rows.append({"assignment": loaded.model.assignment, "check": check_id, "profile": name, "device": device,
                     "threshold": round(needed, 4), "fresh_seeds": len(values), "failures": sum(a < needed for a in values),
                     "lowest": round(min(values), 4), "mean": round(sum(values) / len(values), 4),
                     "estimated_rate": stats.false_fail_estimate, "seconds": round(time.monotonic() - start, 1)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignments", nargs="*", help="assignment ids (default: every bundled rubric)")
    parser.add_argument("--seeds", type=int, default=300, help="fresh seeds per check (default 300)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="seeds trained at once")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--checks", nargs="*", default=[], help="only these check ids (default: every calibrated one)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "calibration_tail.json")
    args = parser.parse_args()
    paths = [ROOT / "rubrics" / f"{a}.yaml" for a in args.assignments] or sorted((ROOT / "rubrics").glob("*.yaml"))
    rows = [row for path in paths for row in measure(path, args.seeds, args.jobs, args.profile, set(args.checks))]
    print(f"{'assignment':16} {'check':28} {'threshold':>9} {'lowest':>7} {'mean':>7} {'fails':>9} {'estimated':>10}")
    for r in rows:
        if "problem" in r:
            print(f"{r['assignment']:16} {r['check']:28} {r['problem']}")
            continue
        print(f"{r['assignment']:16} {r['check']:28} {r['threshold']:9.4f} {r['lowest']:7.4f} {r['mean']:7.4f} "
              f"{r['failures']:>4}/{r['fresh_seeds']:<4} {r['estimated_rate']:10.2g}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # one row per check: a run measures some checks and keeps the others' last measurement
    kept = json.loads(args.out.read_text())["rows"] if args.out.is_file() else []
    measured = {(r["assignment"], r["check"]) for r in rows}
    rows = [r for r in kept if (r["assignment"], r["check"]) not in measured] + rows
    for r in rows:
        r.setdefault("load_average", round(os.getloadavg()[0], 2))
    args.out.write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
