"""How often the reference fails its own calibrated threshold on seeds the calibration never saw.

    .venv/bin/python bench/calibration_tail.py                       # every calibrated check, 300 seeds
    .venv/bin/python bench/calibration_tail.py fc-vs-cnn --seeds 40  # one assignment, fewer seeds
    .venv/bin/python bench/calibration_tail.py cifar10-cnn --draws 3  # as if judged on 3 draws

A calibrated accuracy threshold is meant to fail correct work less than once in a thousand
(``grader.calibration.FALSE_FAIL_GOAL``). The calibration estimates that rate from a normal fit of
its seeds; this benchmark measures it. For each calibrated check on file (profile, CPU, the data
origin found here) it trains the reference on fresh seeds (10,000 and up: never a calibration's
seeds), under the same pinned numeric configuration as grading, and counts the runs below the
stored threshold. Zero failures in N seeds bound the true rate below about 3/N (95%), so showing
1 in 1,000 takes a few thousand seeds; 300 shows 1 in 100.

A check with ``draws: 3`` is judged as grading judges it (``accuracy.judged_draw``): each fresh
seed whose training falls short is confirmed by two more trainings, seeded as a submission's
second and third draws are, and the row counts the seeds the check would fail (``judged_fails``).
Its rate bound assumes independent draws: with p the single training's 95% upper bound, a check
with draws d fails at most p times the chance that d // 2 of the other d - 1 fall short too.

Prints a table and writes JSON to ``bench/results/calibration_tail.json`` (or ``--out``): one row
per check, a run replacing the rows of the checks it measured.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from grader import calibration, data, profiles, rubric  # noqa: E402
from grader.checks.accuracy import DRAW_SEED_STEP, AccuracySpec, judged_draw  # noqa: E402

FRESH_SEEDS_FROM = 10_000
ROOT = Path(__file__).resolve().parents[1]


def measure(rubric_path: Path, seeds: int, jobs: int, profile: str, only: set[str], draws: int | None = None
            ) -> list[dict]:
    """One row per calibrated check of the rubric (or of ``only``); ``draws`` judges each as if it
    had that many (what a rubric change would give), instead of its own."""
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
        failures = sum(a < needed for a in values)
        row = {"assignment": loaded.model.assignment, "check": check_id, "profile": name, "device": device,
               "threshold": round(needed, 4), "fresh_seeds": len(values), "failures": failures,
               "lowest": round(min(values), 4), "mean": round(sum(values) / len(values), 4),
               "estimated_rate": stats.false_fail_estimate, "single_rate_95": round(upper_95(failures, len(values)), 5)}
        judged_as = planned[check_id].model_copy(update={"draws": draws or planned[check_id].draws})
        if judged_as.draws > 1:
            row |= judged_on_draws(loaded, judged_as, truths[check_id], by_seed, needed, jobs)
            row["judged_rate_95"] = float(f"{calibration.judged_rate(row['single_rate_95'], judged_as.draws):.3g}")
            row["rubric_draws"] = planned[check_id].draws
        rows.append(row | {"seconds": round(time.monotonic() - start, 1)})
    return rows


def judged_on_draws(loaded, spec: AccuracySpec, truth, by_seed: dict[int, float], needed: float, jobs: int) -> dict:
    """Every fresh seed judged as grading judges a check with ``spec.draws``: a first training that
    falls short is confirmed by the further draws a submission graded from that seed would get."""
    short = [seed for seed, accuracy in by_seed.items() if accuracy < needed]
    further = [seed + DRAW_SEED_STEP * draw for seed in short for draw in range(1, spec.draws)]
    confirmed = calibration.reference_accuracies(loaded, {spec.id: spec}, {spec.id: truth}, further, jobs)[0][spec.id] \
        if further else {}
    fails = []
    for seed in short:
        draws = [by_seed[seed], *(confirmed[seed + DRAW_SEED_STEP * d] for d in range(1, spec.draws))]
        if draws[judged_draw(draws, needed)] < needed:
            fails.append(seed)
    return {"draws": spec.draws, "judged_fails": len(fails), "confirmation_trainings": len(further)}


def upper_95(failures: int, trials: int) -> float:
    """The exact (Clopper-Pearson) one-sided 95% upper bound on a rate seen ``failures`` times in ``trials``."""
    def at_most(p: float) -> float:  # P(X <= failures) for X ~ Binomial(trials, p)
        return sum(math.comb(trials, k) * p ** k * (1 - p) ** (trials - k) for k in range(failures + 1))

    low, high = failures / trials, 1.0
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if at_most(middle) > 0.05 else (low, middle)
    return high


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignments", nargs="*", help="assignment ids (default: every bundled rubric)")
    parser.add_argument("--seeds", type=int, default=300, help="fresh seeds per check (default 300)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="seeds trained at once")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--checks", nargs="*", default=[], help="only these check ids (default: every calibrated one)")
    parser.add_argument("--draws", type=int, help="judge every check as if it had this many draws (default: its own)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "calibration_tail.json")
    args = parser.parse_args()
    paths = [ROOT / "rubrics" / f"{a}.yaml" for a in args.assignments] or sorted((ROOT / "rubrics").glob("*.yaml"))
    rows = [row for path in paths
            for row in measure(path, args.seeds, args.jobs, args.profile, set(args.checks), args.draws)]
    print(f"{'assignment':16} {'check':28} {'threshold':>9} {'lowest':>7} {'mean':>7} {'fails':>9} {'estimated':>10} "
          f"{'<=95%':>8} {'draws':>5} {'judged':>9} {'<=95%':>8}")
    for r in rows:
        if "problem" in r:
            print(f"{r['assignment']:16} {r['check']:28} {r['problem']}")
            continue
        judged = (f"{r['draws']:>5} {r['judged_fails']:>4}/{r['fresh_seeds']:<4} {r['judged_rate_95']:8.2g}"
                  if "draws" in r else f"{1:>5} {'':9} {'':8}")
        print(f"{r['assignment']:16} {r['check']:28} {r['threshold']:9.4f} {r['lowest']:7.4f} {r['mean']:7.4f} "
              f"{r['failures']:>4}/{r['fresh_seeds']:<4} {r['estimated_rate']:10.2g} {r['single_rate_95']:8.2g} "
              f"{judged}")
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
