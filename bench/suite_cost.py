"""Where the test suite's time goes: the machine's CPU seconds and the wall seconds of each test module.

    .venv/bin/python bench/suite_cost.py                                  # the whole suite, one test at a time
    .venv/bin/python bench/suite_cost.py -- tests/test_train.py           # a smoke run: pytest's own arguments

`make test` runs the suite on two workers, and on two cores it is bound by CPU: its wall time is
at best the CPU seconds every test and everything it starts (graders, sandboxes, kernels, measure
runs) spend, halved. This bench says which modules those seconds belong to, so that a change
that makes the suite slower can be found and a budget can be weighed against what it tests.

pytest runs here without workers, one test after the other, with a small plugin (this file) that
reads the machine's busy CPU time from ``/proc/stat`` before and after each test, its setup and
teardown included: module and class fixtures count towards the test that first needs them. The
CPU is the whole machine's, so sandboxes, kernels and clusters a test starts are in it, and so is
anything else running: run it on an otherwise idle machine (the load average before and after is
recorded beside the numbers). It also holds what runs beside the tests in the background, such
as a cluster's daemons or a warm parent still polling, over the longer wall time of a serial
run: the sum overstates what `make test` spends (measured 2026-12-01: 2,387 CPU s here, against
about 1,750 in `make test`'s own 960 s), so read the shares, not the sum. Prints the modules by CPU
with their share, and writes JSON to ``bench/results/suite_cost.json`` (or ``--json``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ROWS_ENV = "SUITE_COST_ROWS"  # where the plugin, inside pytest, writes one row per test


def busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (every state but idle and iowait)."""
    with open("/proc/stat") as stat:
        ticks = [int(value) for value in stat.readline().split()[1:]]
    idle = ticks[3] + ticks[4]
    return (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- the plugin (inside pytest)

_rows: list[dict[str, object]] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    cpu, wall = busy_seconds(), time.monotonic()
    yield
    _rows.append({"test": item.nodeid, "cpu": busy_seconds() - cpu, "wall": time.monotonic() - wall})


def pytest_sessionfinish(session: pytest.Session) -> None:
    if os.environ.get(ROWS_ENV):
        Path(os.environ[ROWS_ENV]).write_text(json.dumps(_rows))


# ---------------------------------------------------------------- the driver


def by_module(rows: list[dict]) -> list[dict]:
    """Tests summed per module, most CPU first, with each module's share of all the CPU."""
    modules: dict[str, dict] = defaultdict(lambda: {"cpu": 0.0, "wall": 0.0, "tests": 0})
    for row in rows:
        module = modules[str(row["test"]).split("::")[0]]
        module["cpu"] += float(row["cpu"])  # type: ignore[arg-type]
        module["wall"] += float(row["wall"])  # type: ignore[arg-type]
        module["tests"] += 1
    total = sum(m["cpu"] for m in modules.values()) or 1.0
    return sorted(({"module": name, "cpu": round(m["cpu"], 1), "share": round(m["cpu"] / total, 3),
                    "wall": round(m["wall"], 1), "tests": m["tests"]} for name, m in modules.items()),
                  key=lambda m: -m["cpu"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "suite_cost.json")
    parser.add_argument("--top", type=int, default=25, help="modules in the printed table")
    parser.add_argument("pytest_args", nargs="*", help="pytest's own arguments, after `--` (default: the suite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="suite-cost-") as scratch:
        rows_file = Path(scratch) / "rows.json"
        command = [sys.executable, "-m", "pytest", "-q", "-p", "suite_cost", "-p", "no:xdist", *args.pytest_args]
        env = os.environ | {ROWS_ENV: str(rows_file),
                            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "bench"), os.environ.get("PYTHONPATH")]))}
        load_before, start = os.getloadavg()[0], time.monotonic()
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        seconds = time.monotonic() - start
        if not rows_file.exists():
            print(done.stdout[-3000:] + done.stderr[-3000:])
            print("error: pytest wrote no rows (see its output above)", file=sys.stderr)
            return 2
        rows = json.loads(rows_file.read_text())
    modules = by_module(rows)
    cpu = sum(float(r["cpu"]) for r in rows)
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "cores": os.cpu_count(),
              "command": "bench/suite_cost.py " + " ".join(args.pytest_args), "pytest_exit": done.returncode,
              "load_average_before": round(load_before, 2), "load_average_after": round(os.getloadavg()[0], 2),
              "tests": len(rows), "wall_seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1), "modules": modules}
    print(f"{'module':60} {'CPU s':>8} {'share':>6} {'wall s':>8} {'tests':>6}")
    for m in modules[:args.top]:
        print(f"{m['module']:60} {m['cpu']:8.1f} {m['share']:6.1%} {m['wall']:8.1f} {m['tests']:6d}")
    print(f"\n{len(rows)} tests, pytest exit {done.returncode}: {cpu:.0f} CPU seconds of the machine in {seconds:.0f} s, "
          "one test at a time")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
