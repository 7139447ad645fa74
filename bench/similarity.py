"""How long `grader similarity` takes on a batch of 300 submissions of the bundled assignments' size.

    .venv/bin/python bench/similarity.py              # 300 submissions, the goal: under a minute on 2 cores
    .venv/bin/python bench/similarity.py --count 40   # a smoke run

Issue 15 asks for under a minute for 300 submissions. For each bundled assignment a batch of 300
is made from its example notebooks and modules (``submissions/<assignment>/``): each submission is
one of them, disguised as students disguise copies (identifiers renamed at random, its cells in
another order, comments and blank lines changed), so that the pairs are neither all identical nor
all unrelated. One output folder per assignment holds results pointing at its files, as `grade`
leaves them, and ``grader.similarity.run`` is timed on each, starter and provided code subtracted
as in a real run. The table gives, per assignment, the submissions, the pairs compared (44,850 for
300), the pairs listed and the seconds against the goal; JSON goes to
``bench/results/similarity.json`` (or ``--json``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grader import report, rubric, similarity  # noqa: E402
from grader.results import SubmissionResult  # noqa: E402

NAME = re.compile(r"\b([a-z_][a-z0-9_]{3,})\b")
KEYWORDS = {"self", "return", "import", "from", "class", "lambda", "yield", "while", "print", "range", "torch",
            "super", "forward", "None", "True", "False", "with", "assert", "break", "continue", "global"}


def disguised(text: str, rng: random.Random) -> str:
    """Rename about half of the names, shuffle the blocks, change comments and blank lines."""
    names = sorted({n for n in NAME.findall(text) if n not in KEYWORDS})
    renames = {n: f"{n}_{rng.randrange(10**6)}" for n in names if rng.random() < 0.5}
    if renames:
        text = re.sub(r"\b(" + "|".join(map(re.escape, renames)) + r")\b", lambda m: renames[m[1]], text)
    blocks = text.split("\n\n")
    rng.shuffle(blocks)
    return "\n\n".join(re.sub(r"#.*", f"# note {rng.randrange(100)}", b) for b in blocks)


def make_batch(assignment: str, count: int, folder: Path, rng: random.Random) -> list[SubmissionResult]:
    import nbformat

    examples = sorted(p for p in (ROOT / "submissions" / assignment).iterdir()
                      if p.suffix in (".ipynb", ".py") or (p.is_dir() and not p.name.startswith(".")))
    results = []
    for index in range(count):
        source = examples[index % len(examples)]
        student = f"s{index:03d}"
        if source.suffix == ".ipynb":
            nb = nbformat.read(source, as_version=4)
            for cell in nb.cells:
                if cell.cell_type == "code":
                    cell.source = disguised(cell.source, rng)
            target = folder / f"{student}.ipynb"
            nbformat.write(nb, target)
        elif source.is_dir():  # a module folder: each module disguised
            target = folder / student
            shutil.copytree(source, target)
            for module in target.rglob("*.py"):
                module.write_text(disguised(module.read_text(), rng))
        else:
            target = folder / f"{student}.py"
            target.write_text(disguised(source.read_text(), rng))
        results.append(SubmissionResult(student=student, source=str(target), content_hash=f"{index:064x}", status="ok",
                                        message="", isolation="process", score=0, max_score=1, visible_score=0,
                                        visible_max=1, checks=[], assignment=assignment, rubric_hash="-",
                                        grader_version="-"))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300, help="submissions per batch (default 300)")
    parser.add_argument("--assignments", nargs="*", help="only these (default: every bundled one)")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "similarity.json")
    args = parser.parse_args()
    assignments = args.assignments or sorted(p.parent.name for p in (ROOT / "submissions").glob("*/expected.yaml"))
    rng = random.Random(0)
    rows, work = [], Path(tempfile.mkdtemp(prefix="bench-similarity-"))
    try:
        for assignment in assignments:
            count = args.count
            loaded = rubric.load(ROOT / "rubrics" / f"{assignment}.yaml")
            folder, out = work / assignment / "in", work / assignment / "out"
            folder.mkdir(parents=True)
            results = make_batch(assignment, count, folder, rng)
            report.write_batch(results, loaded, out)
            start = time.perf_counter()
            found = similarity.run(out, loaded, results)
            rows.append({"assignment": assignment, "submissions": count, "pairs_compared": found.compared,
                         "pairs_listed": len(found.pairs), "seconds": round(time.perf_counter() - start, 2)})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'assignment':<18} {'submissions':>11} {'pairs':>8} {'listed':>7} {'seconds':>8}   goal: under 60 s")
    for r in rows:
        print(f"{r['assignment']:<18} {r['submissions']:>11} {r['pairs_compared']:>8} {r['pairs_listed']:>7} "
              f"{r['seconds']:>8.2f}   {'met' if r['seconds'] < 60 else 'MISSED'}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"rows": rows, "goal_seconds": 60, "cpus": os.cpu_count(),
                                     "load_average": os.getloadavg()}, indent=2) + "\n")
    print(f"written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
