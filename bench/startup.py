"""What the grader's sandbox costs on a batch of small notebooks, beside bare execution and Otter.

    .venv/bin/python bench/startup.py              # 24 notebooks, 2 at a time (make bench runs it)
    .venv/bin/python bench/startup.py --count 6    # a smoke run

The batch: ``--count`` notebooks of the fc-vs-cnn kind that only build networks (a fully connected
and a convolutional builder, hidden sizes varied, a cell that builds and prints both; no data, no
training), so start-up is what the numbers are about. Three ways to run all of them, ``--workers``
at a time, timed end to end, one after the other in one run, each after one untimed run of its own
on one notebook (files in the page cache; for the grader, the reference's expectations computed and
cached, as they are after a course's first batch):

- ``nbconvert``: a bare ``jupyter nbconvert --to notebook --execute`` of each notebook (a kernel
  per notebook, no sandbox, nothing checked): the floor;
- ``grader``: ``grader grade`` with a structural rubric derived from fc-vs-cnn's (its builder
  checks: defined, shapes, parameter counts, the flatten size) in the full namespace sandbox, the
  measure stage included;
- ``otter``: Otter-Grader's ``otter run`` of each notebook against an autograder of the same
  checks (shapes and parameter counts of both builders, as doctests).

nbconvert and Otter come from a virtual environment of their own (``bench/.venv-compare``, made on
first use with ``pip install otter-grader``; it sees the project's torch through a ``.pth`` file).
Where it cannot be made, those rows say so and the grader is measured alone. Prints a table and
writes JSON to ``bench/results/startup.json`` (or ``--json``); the load average is recorded beside
the numbers, because on a shared machine it moves them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPARE_VENV = ROOT / "bench" / ".venv-compare"
STRUCTURAL_KINDS = {"defined", "shape", "param_count", "architecture"}
GOALS = {"grader_over_nbconvert": 1.2, "grader_over_otter_throughput": 3.0}

BUILDERS = '''import torch
from torch import nn

def fully_connected(D, K, O):
    return nn.Sequential(nn.Flatten(), nn.Linear(D, K), nn.Tanh(), nn.Linear(K, K), nn.Tanh(), nn.Linear(K, O))

def convolutional(Q1, Q2, O):
    return nn.Sequential(
        nn.Conv2d(1, Q1, 5, padding=2), nn.MaxPool2d(2), nn.Tanh(),
        nn.Conv2d(Q1, Q2, 5, padding=2), nn.MaxPool2d(2), nn.Tanh(),
        nn.Flatten(), nn.Linear(7 * 7 * Q2, O))
'''

OTTER_TEST = '''OK_FORMAT = True
test = {{"name": "{name}", "points": 1, "suites": [{{"cases": [{{"code": {code!r}, "hidden": False, "locked": False}}],
         "scored": True, "setup": "", "teardown": "", "type": "doctest"}}]}}
'''
OTTER_CASES = {
    "fc_shape": ">>> tuple(fully_connected(784, 100, 10)(torch.zeros(2, 784)).shape)\n(2, 10)",
    "fc_params": ">>> sum(p.numel() for p in fully_connected(784, 100, 10).parameters())\n89610",
    "cnn_shape": ">>> tuple(convolutional(32, 64, 10)(torch.zeros(2, 1, 28, 28)).shape)\n(2, 10)",
    "cnn_params": ">>> sum(p.numel() for p in convolutional(32, 64, 10).parameters())\n83466",
}


def write_notebooks(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True)
    paths = []
    for i in range(count):
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.cells = [nbformat.v4.new_markdown_cell(f"# Fully connected vs convolutional networks ({i})"),
                    nbformat.v4.new_code_cell(BUILDERS),
                    nbformat.v4.new_markdown_cell("Both networks, built with the handout's sizes:"),
                    nbformat.v4.new_code_cell(f"fc = fully_connected(784, {100 + i}, 10)\ncnn = convolutional(32, 64, 10)\n"
                                              "print(fc)\nprint(cnn)")]
        paths.append(folder / f"student_{i:02d}.ipynb")
        nbformat.write(nb, paths[-1])
    return paths


def structural_rubric(folder: Path) -> Path:
    """fc-vs-cnn's rubric with only its builder checks (and the targets they name)."""
    source = ROOT / "rubrics" / "fc-vs-cnn.yaml"
    doc = yaml.safe_load(source.read_text())
    doc["checks"] = [c for c in doc["checks"] if c["kind"] in STRUCTURAL_KINDS]
    kept = {c["id"] for c in doc["checks"]}
    for check in doc["checks"]:
        if "requires" in check:
            check["requires"] = [r for r in check["requires"] if r in kept]
    named = {c.get("target") for c in doc["checks"]}
    doc["targets"] = {name: t for name, t in doc["targets"].items() if name in named}
    doc.pop("data", None)
    doc.pop("profiles", None)
    doc["reference"] = str((source.parent / doc["reference"]).resolve())
    path = folder / "fc-vs-cnn-structural.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def compare_tools() -> tuple[Path | None, str]:
    """The virtual environment with nbconvert and otter (made on first use), or why there is none."""
    python = COMPARE_VENV / "bin" / "python"
    if not (COMPARE_VENV / "bin" / "otter").exists():
        made = subprocess.run([sys.executable, "-m", "venv", str(COMPARE_VENV)], capture_output=True, text=True)
        if made.returncode == 0:
            made = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "otter-grader"],
                                  capture_output=True, text=True, timeout=900)
        if made.returncode != 0:
            return None, f"could not install otter-grader into {COMPARE_VENV}: {made.stderr.strip()[-300:]}"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True).stdout.strip()
    Path(site, "zz_grader_project.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # torch, from the project
    return COMPARE_VENV / "bin", ""


def timed(label: str, run) -> dict:
    start = time.monotonic()
    failures = run()
    seconds = round(time.monotonic() - start, 2)
    print(f"  {label:<10} {seconds:8.1f} s" + (f"  ({failures} failed)" if failures else ""), flush=True)
    return {"seconds": seconds, "failures": failures}


def in_parallel(workers: int, commands: list[list[str]], cwd: Path) -> int:
    def one(command: list[str]) -> int:
        return subprocess.run(command, cwd=cwd, capture_output=True, timeout=600).returncode

    with ThreadPoolExecutor(workers) as pool:
        return sum(code != 0 for code in pool.map(one, commands))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=24)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "startup.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="grader-bench-startup-"))
    notebooks = write_notebooks(work / "batch", args.count)
    rubric = structural_rubric(work)
    load_before = os.getloadavg()[0]
    tools, why_not = compare_tools()
    print(f"{args.count} structural notebooks, {args.workers} at a time, on {os.cpu_count()} cores")
    rows: dict[str, dict] = {}
    if tools is not None:
        out = work / "nbconvert"

        def nbconvert(batch: list[Path]) -> int:
            return in_parallel(args.workers, [[str(tools / "jupyter"), "nbconvert", "--to", "notebook", "--execute",
                                               "--output-dir", str(out), str(nb)] for nb in batch], work)

        nbconvert(notebooks[:1])
        rows["nbconvert"] = timed("nbconvert", lambda: nbconvert(notebooks))
    else:
        rows["nbconvert"] = {"skipped": why_not}
    grader_out = work / "grader-out"

    def grade(batch: Path, out: Path) -> int:
        return subprocess.run([sys.executable, "-m", "grader", "grade", str(rubric), str(batch), "--out", str(out),
                               "--workers", str(args.workers), "--quiet", "--isolation", "auto"],
                              capture_output=True).returncode

    grade(notebooks[0], work / "grader-warm-up")
    rows["grader"] = timed("grader", lambda: grade(work / "batch", grader_out))
    rows["grader"]["isolation"] = json.loads((grader_out / "submissions" / "student_00.json").read_text())["isolation"]
    rows["grader"]["scores"] = sorted({(r["score"], r["max_score"]) for r in json.loads((grader_out / "summary.json").read_text())})
    if tools is not None:
        tests = work / "otter" / "tests"
        tests.mkdir(parents=True)
        for name, code in OTTER_CASES.items():
            (tests / f"{name}.py").write_text(OTTER_TEST.format(name=name, code=code))
        subprocess.run([str(tools / "otter"), "generate"], cwd=work / "otter", capture_output=True, check=True)
        outs = [work / "otter" / f"out-{nb.stem}" for nb in notebooks]
        for folder in outs:
            folder.mkdir()

        def otter(pairs: list[tuple[Path, Path]]) -> int:
            return in_parallel(args.workers, [[str(tools / "otter"), "run", "-a", str(work / "otter" / "autograder.zip"),
                                               "-o", str(o), str(nb)] for nb, o in pairs], work)

        otter([(notebooks[0], outs[0])])
        rows["otter"] = timed("otter", lambda: otter(list(zip(notebooks, outs))))
        scores = [json.loads((o / "results.json").read_text()) for o in outs]
        rows["otter"]["scores"] = sorted({(sum(t["score"] for t in r["tests"] if t.get("score") is not None),
                                           sum(t["max_score"] for t in r["tests"] if t.get("max_score") is not None))
                                          for r in scores})
    else:
        rows["otter"] = {"skipped": why_not}
    ratios = {}
    if "seconds" in rows["nbconvert"]:
        ratios["grader_over_nbconvert"] = round(rows["grader"]["seconds"] / rows["nbconvert"]["seconds"], 2)
    if "seconds" in rows["otter"]:
        ratios["grader_over_otter_throughput"] = round(rows["otter"]["seconds"] / rows["grader"]["seconds"], 2)
    for name, value in ratios.items():
        print(f"  {name}: {value}  (goal: {'at most' if 'nbconvert' in name else 'at least'} {GOALS[name]})")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "date": time.strftime("%Y-%m-%d %H:%M"), "command": " ".join(["bench/startup.py", *sys.argv[1:]]),
        "count": args.count, "workers": args.workers, "cores": os.cpu_count(), "rows": rows, "ratios": ratios,
        "goals": GOALS, "load_average_before": round(load_before, 2), "load_average_after": round(os.getloadavg()[0], 2),
    }, indent=1) + "\n")
    print(f"written to {args.json}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
