"""The ready CI workflow files (``ci/github/``, docs/ci.md) stay true to the grader: they parse, run
the suite, and use only options `grader grade` has."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT

WORKFLOWS = sorted((PROJECT / "ci" / "github").glob("*.yml"))


def steps(path: Path) -> list[dict]:
    workflow = yaml.safe_load(path.read_text())
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


@pytest.fixture(scope="module")
def grade_options() -> set[str]:
    done = subprocess.run([sys.executable, "-m", "grader", "grade", "--help"], capture_output=True, text=True,
                          cwd=PROJECT, timeout=120)
    return set(re.findall(r"--[a-z][a-z-]+", done.stdout))


def test_there_is_a_gpu_and_a_cpu_workflow():
    assert [p.name for p in WORKFLOWS] == ["grader-cpu.yml", "grader-gpu.yml"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_each_workflow_runs_the_suite_then_grades_with_a_bar(path, grade_options):
    runs = [step.get("run", "") for step in steps(path)]
    assert "make test" in runs
    grading = next(run for run in runs if "grader grade" in run)
    used = set(re.findall(r"--[a-z][a-z-]+", grading))
    assert "--fail-under" in used and used <= grade_options, used - grade_options


def test_the_gpu_workflow_makes_a_missing_gpu_an_error():
    workflow = yaml.safe_load((PROJECT / "ci" / "github" / "grader-gpu.yml").read_text())
    (job,) = workflow["jobs"].values()
    assert job["env"]["GRADER_REQUIRE_GPU"] == "1" and "gpu" in job["runs-on"]
    assert "--gpus all" in next(step["run"] for step in job["steps"] if "grader grade" in step.get("run", ""))
