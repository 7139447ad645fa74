"""Whether a correct hand-written op passes on every measure seed, not only on the one tried.

    .venv/bin/python bench/measure_seeds.py                       # custom-ops' reference, 200 seeds
    .venv/bin/python bench/measure_seeds.py --also tests/fixtures/ops/unfold_ops.py --seeds 100
    .venv/bin/python bench/measure_seeds.py --as-drawn            # inputs as drawn before without_ties
    .venv/bin/python bench/measure_seeds.py custom-ops --checks maxpool-matches-torch-experiment --seeds 500

The measure stage compares an op with torch on inputs drawn from a seed that each machine keeps
secret (``grader.measuring.seed_for``), so a grade that depends on the draw would differ from one
machine to the next and look fine on each. This benchmark grades each ``op_equivalence`` check of
the bundled rubrics on the reference's ops (and on the modules ``--also`` names, which define ops
under the rubric's target names) over many seeds, in this process, and counts the seeds on which
the check does not pass in full: each row should read 0. ``--as-drawn`` draws the inputs as they
were before repeated values were moved apart (``op_equivalence.without_ties``), to show what that
buys.

Prints a table and writes JSON to ``bench/results/measure_seeds.json`` (or ``--out``): a run
replaces the rows of what it measured and keeps the others.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from grader import checks, references, rubric  # noqa: E402
from grader.checks import op_equivalence  # noqa: E402
from grader.checks.base import ProbeContext, StudentRaised, Unresolved  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SEEDS_FROM = 1_000_000  # far from any seed a rubric or a test names


def _module_namespace(path: Path) -> list[tuple[str, dict[str, Any]]]:
    found = importlib.util.spec_from_file_location(f"bench_ops_{path.stem}", path)
    module = importlib.util.module_from_spec(found)  # type: ignore[arg-type]
    found.loader.exec_module(module)  # type: ignore[union-attr]
    return [(path.stem, vars(module))]


def measure(rubric_path: Path, seeds: int, also: list[Path], only: set[str]) -> list[dict[str, Any]]:
    """One row per (implementation, op check) of the rubric (or of the checks in ``only``)."""
    loaded = rubric.load(rubric_path)
    wanted = [c for c in loaded.model.checks if c.kind == "op_equivalence" and (not only or c.id in only)]
    if not wanted:
        return []
    kind = checks.get("op_equivalence")
    implementations = [("reference", references.load_namespaces(loaded))]
    implementations += [(str(path), _module_namespace(path)) for path in also]
    rows = []
    for name, namespaces in implementations:
        for spec in wanted:
            failed: list[int] = []
            start = time.monotonic()
            try:
                for seed in range(SEEDS_FROM, SEEDS_FROM + seeds):
                    drawn = spec.model_copy(update={"seed": seed})
                    ctx = ProbeContext(namespaces=namespaces, targets=loaded.model.targets, seed=loaded.model.seed,
                                       execution={"form": "module"})
                    ctx.seed_everything()
                    try:
                        passed = kind.judge(drawn, kind.probe(drawn, ctx), None).fraction == 1.0
                    except StudentRaised:
                        passed = False
                    if not passed:
                        failed.append(seed)
            except Unresolved:
                continue  # this implementation does not define the op the check grades
            rows.append({"assignment": loaded.model.assignment, "implementation": name, "check": spec.id,
                         "seeds": seeds, "failed": len(failed), "failed_seeds": failed[:20],
                         "seconds": round(time.monotonic() - start, 1)})
            print(f"{loaded.model.assignment:12} {name:40} {spec.id:40} {len(failed):>4} of {seeds}", flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("assignments", nargs="*", help="assignment ids (default: every bundled rubric with op checks)")
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--also", type=Path, nargs="*", default=[], help="modules defining ops under the targets' names")
    parser.add_argument("--checks", nargs="*", default=[], help="only these check ids")
    parser.add_argument("--as-drawn", action="store_true", help="draw inputs as before without_ties")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "measure_seeds.json")
    args = parser.parse_args()
    if args.as_drawn:
        op_equivalence.without_ties = lambda values: values
    paths = [ROOT / "rubrics" / f"{a}.yaml" for a in args.assignments] or sorted((ROOT / "rubrics").glob("*.yaml"))
    print(f"{'assignment':12} {'implementation':40} {'check':40} not passed in full")
    rows = [row for path in paths for row in measure(path, args.seeds, args.also, set(args.checks))]
    for row in rows:
        row["inputs"] = "as drawn" if args.as_drawn else "without ties"
    def key(row: dict[str, Any]) -> tuple[str, ...]:
        return row["assignment"], row["implementation"], row["check"], row["inputs"]

    kept = json.loads(args.out.read_text())["rows"] if args.out.exists() else []
    fresh = {key(row) for row in rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": [r for r in kept if key(r) not in fresh] + rows}, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0 if all(row["failed"] == 0 for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
