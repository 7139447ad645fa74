"""Whether one submission gets the same grade every time, whatever the workers, isolation and load.

    .venv/bin/python bench/repeatability.py                                   # DenseNet notebook, 10 times
    .venv/bin/python bench/repeatability.py --example fc-vs-cnn/full_marks.ipynb --times 4

The grade of a submission must not depend on how it was graded: one worker or several, the
namespace sandbox or plain processes, an idle machine or one busy with other work. Each run below
grades ``--times`` copies of one bundled example (each copy differs by a trailing comment, so the
journal cannot answer from an earlier result), and every copy's result is reduced to its
*fingerprint*: the score and each check's outcome, points and message (the message holds the
measured accuracy to three places). All copies of all runs must share one fingerprint.

Runs: ``process`` at 1 and 2 workers, ``namespace`` at 2 workers (where the machine allows it),
and ``process`` at 2 workers with as many busy-looping processes as there are cores beside it.
Prints a table and writes JSON to ``bench/results/repeatability.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GRADER = [sys.executable, "-m", "grader"]
RUNS = [("process", 1, False), ("process", 2, False), ("namespace", 2, False), ("process", 2, True)]


def _copies(example: Path, times: int, folder: Path) -> None:
    """``times`` copies of ``example`` in ``folder``, each with a different trailing comment."""
    folder.mkdir(parents=True)
    for i in range(times):
        target = folder / f"copy{i:02d}{example.suffix}"
        if example.suffix == ".ipynb":
            notebook = json.loads(example.read_text(encoding="utf-8"))
            notebook["cells"].append({"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                                      "source": f"# copy {i}"})
            target.write_text(json.dumps(notebook), encoding="utf-8")
        else:
            target.write_text(example.read_text(encoding="utf-8") + f"\n# copy {i}\n", encoding="utf-8")


def _fingerprint(result: dict) -> str:
    kept = [result["score"], [(c["id"], c["outcome"], c["points"], c["message"]) for c in result["checks"]]]
    return hashlib.sha256(json.dumps(kept).encode()).hexdigest()[:12]


def _busy(stop_at: float) -> None:
    while time.monotonic() < stop_at:
        pass


def grade(assignment: str, batch: Path, out: Path, isolation: str, workers: int, loaded: bool) -> dict:
    hogs = []
    if loaded:
        hogs = [multiprocessing.Process(target=_busy, args=(time.monotonic() + 3600,), daemon=True)
                for _ in range(os.cpu_count() or 1)]
        for hog in hogs:
            hog.start()
    start = time.monotonic()
    try:
        done = subprocess.run([*GRADER, "grade", assignment, str(batch), "--out", str(out), "--profile", "quick",
                               "--workers", str(workers), "--isolation", isolation, "--quiet", "--force"],
                              cwd=ROOT, capture_output=True, text=True)
    finally:
        for hog in hogs:
            hog.terminate()
    seconds = round(time.monotonic() - start, 1)
    if done.returncode not in (0, 1) or not (out / "summary.json").exists():
        return {"isolation": isolation, "workers": workers, "loaded": loaded, "seconds": seconds,
                "problem": (done.stderr or done.stdout).strip()[-400:]}
    results = [json.loads(p.read_text()) for p in sorted((out / "submissions").glob("*.json"))]
    prints = sorted({_fingerprint(r) for r in results})
    return {"isolation": isolation, "workers": workers, "loaded": loaded, "seconds": seconds, "graded": len(results),
            "fingerprints": prints, "scores": sorted({r["score"] for r in results})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--example", default="resmlp-densenet/full_marks.ipynb",
                        help="an example under submissions/ (default: %(default)s)")
    parser.add_argument("--times", type=int, default=10, help="copies graded per run (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "repeatability.json")
    args = parser.parse_args()
    example = ROOT / "submissions" / args.example
    assignment = example.parent.name
    work = Path(tempfile.mkdtemp(prefix="repeatability-"))
    try:
        _copies(example, args.times, work / "batch")
        rows = []
        for i, (isolation, workers, loaded) in enumerate(RUNS):
            row = grade(assignment, work / "batch", work / f"out{i}", isolation, workers, loaded)
            rows.append(row)
            print(f"{isolation:<10} workers {workers} {'busy' if loaded else 'idle'}: "
                  f"{row.get('problem') or str(row['graded']) + ' graded, fingerprints ' + ', '.join(row['fingerprints'])}"
                  f" ({row['seconds']} s)", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    graded = [r for r in rows if "fingerprints" in r]
    distinct = sorted({p for r in graded for p in r["fingerprints"]})
    verdict = "the same grade every time" if len(distinct) == 1 else f"{len(distinct)} different grades"
    print(f"{args.example}: {sum(r['graded'] for r in graded)} gradings over {len(graded)} runs: {verdict}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"example": args.example, "times": args.times, "date": time.strftime("%Y-%m-%d"),
                                    "cores": os.cpu_count(), "runs": rows, "distinct_grades": len(distinct),
                                    "verdict": verdict}, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
