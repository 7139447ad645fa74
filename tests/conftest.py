"""Shared fixtures: the tiny rubric, notebook and module writers, a prepared grading context."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Iterator

import nbformat
import pytest

FIXTURES = Path(__file__).parent / "fixtures"
PROJECT = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C reaches the tests (and the graders they start) whatever started the suite: a shell
    runs a background job (`make test &`) with SIGINT ignored, which children inherit, and the
    tests of Ctrl-C handling would then see nothing."""
    import signal

    signal.signal(signal.SIGINT, signal.default_int_handler)


REQUIRE_GPU = "GRADER_REQUIRE_GPU"  # set on a GPU runner: a missing GPU fails the gpu tests instead of skipping them


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests marked ``gpu`` need a CUDA device: skipped without one, saying why, unless the run
    promises a GPU (``GRADER_REQUIRE_GPU=1``, docs/ci.md), where a missing one is an error."""
    import os

    if item.get_closest_marker("gpu") is None:
        return
    import torch

    if torch.cuda.is_available():
        return
    if os.environ.get(REQUIRE_GPU):
        pytest.fail(f"{REQUIRE_GPU} is set (this run promises a GPU), but torch sees no CUDA device", pytrace=False)
    pytest.skip(f"needs a CUDA device (on a GPU runner, {REQUIRE_GPU}=1 makes a missing one an error)")


LONGEST_MODULE = "tests/test_examples.py"  # every example graded: about half of the suite's time


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The examples first, the rest in their order: under `make test`'s two workers one worker
    starts the longest module at once while the other takes every other module, instead of the
    examples starting last and running alone."""
    items.sort(key=lambda item: item.nodeid.split("::")[0] != LONGEST_MODULE)


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache() -> Iterator[None]:
    """Expectations and synthetic data go to a cache of the test session, not the user's.

    Not under pytest's own temporary folders: pytest deletes old ones, and a concurrent pytest
    run would pull this session's cache from under it."""
    import os
    import shutil
    import tempfile

    if os.environ.get("GRADER_CACHE"):
        yield
        return
    folder = tempfile.mkdtemp(prefix="grader-test-cache-")
    os.environ["GRADER_CACHE"] = folder
    yield
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(autouse=True, scope="session")
def _pinned_measure_secret() -> Iterator[None]:
    """One measure secret for every run of the suite, so that the measure stage draws the same fresh
    inputs each time (a machine's own secret is made on first use, so a fresh cache would draw new
    ones every session, and a grade that depends on the draw would flip between runs). That a
    grade does not depend on the draw is the grader's to show, on purpose (``without_ties``)."""
    import os

    from grader.measuring import SECRET_ENV

    if os.environ.get(SECRET_ENV):
        yield
        return
    os.environ[SECRET_ENV] = "grader-test-suite"
    yield
    del os.environ[SECRET_ENV]


@pytest.fixture(scope="session")
def tiny_rubric():
    from grader import rubric

    return rubric.load(FIXTURES / "tiny" / "rubric.yaml")


@pytest.fixture(scope="session")
def tiny_prepared(tiny_rubric):
    from grader import pipeline

    return pipeline.prepare(tiny_rubric, pipeline.Settings())


def write_notebook(path: Path, cells: list[str], kernel: str = "python3") -> Path:
    """Cells starting with ``md:`` are markdown, the rest code."""
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    nb = new_notebook(cells=[new_markdown_cell(c[3:]) if c.startswith("md:") else new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
    nbformat.write(nb, path)
    return path


GOOD_NET = "from torch import nn\ndef make_net(n_in, n_out):\n    return nn.Sequential(nn.Linear(n_in, 3), nn.ReLU(), nn.Linear(3, n_out))"


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``grader ARGS`` run in this process, its exit code and output captured as a finished
    subprocess would give them. In-process because each `python -m grader` pays seconds of
    start-up (torch); the few tests about the process itself (imports, --help) start one."""
    import contextlib
    import io
    import os
    import signal

    from grader import cli

    out, err = io.StringIO(), io.StringIO()
    before, sigterm = os.getcwd(), signal.getsignal(signal.SIGTERM)
    os.chdir(cwd or Path(__file__).parent.parent)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(list(args))
            except SystemExit as exc:  # argparse's usage errors and --version
                code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    finally:
        os.chdir(before)
        signal.signal(signal.SIGTERM, sigterm)
    return subprocess.CompletedProcess(["grader", *args], code, out.getvalue(), err.getvalue())
