"""The child side, end to end on the tiny rubric: notebooks and modules as students write them."""

from __future__ import annotations

import dataclasses
import os
import uuid
from pathlib import Path

import pytest

from grader import pipeline, submission
from tests.conftest import GOOD_NET, write_notebook

pytestmark = pytest.mark.slow


def grade(path: Path, prepared, **limits):
    if limits:
        prepared = dataclasses.replace(prepared, settings=pipeline.Settings(limit_overrides=limits))
    result = pipeline.grade_one(submission.single(path), prepared)
    return result, {c.id: c for c in result.checks}


def test_failing_cell_does_not_stop_later_definitions(tmp_path, tiny_prepared):
    nb = write_notebook(tmp_path / "failing_cell_then_definition.ipynb",
                        ["md:# My work", "1 / 0", GOOD_NET, "answer = 42"])
    result, checks = grade(nb, tiny_prepared)
    assert result.status == "ok"
    assert checks["net-shape"].outcome == "passed"
    assert checks["answer"].outcome == "passed"
    assert checks["notebook"].outcome == "failed"
    assert "cell 2, line 1: ZeroDivisionError: division by zero" in checks["notebook"].message
    assert result.message.startswith("cell 2, line 1: ZeroDivisionError: division by zero")
    failing = [c for c in result.cells if c["status"] == "error"]
    assert [(c["index"], c["number"]) for c in failing] == [(1, 2)] and "1 / 0" in failing[0]["source"]


def test_stored_outputs_and_foreign_kernel_are_ignored(tmp_path, tiny_prepared):
    import nbformat

    path = write_notebook(tmp_path / "prefilled_outputs_foreign_kernel.ipynb",
                          ["md:# Work", GOOD_NET, "answer = 41  # wrong"], kernel="julia-1.9")
    nb = nbformat.read(path, as_version=4)
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", name="stdout", text="All tests passed! 5/5\n"),
                           nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo="})]
    nbformat.write(nb, path)
    result, checks = grade(path, tiny_prepared)
    assert result.status == "ok"
    assert checks["answer"].outcome == "failed" and "41, expected 42" in checks["answer"].message
    assert all(c.get("figures", 0) == 0 for c in result.cells)


def test_shell_escapes_are_reported_not_run(tmp_path, tiny_prepared):
    marker = Path("/tmp") / f"grader-shell-{uuid.uuid4().hex}"
    nb = write_notebook(tmp_path / "shell_escape.ipynb",
                        ["md:# Work", f"!touch {marker}", "%pip install definitely-not-a-package", GOOD_NET,
                         "if True:\n    !touch {marker}\nanswer = 42".replace("{marker}", str(marker))])
    result, checks = grade(nb, tiny_prepared)
    assert not marker.exists()
    assert f"!touch {marker}" in result.removed_commands
    assert "%pip install definitely-not-a-package" in result.removed_commands
    assert checks["answer"].outcome == "passed" and checks["notebook"].outcome == "passed"


def test_slow_cell_is_interrupted_and_the_rest_graded(tmp_path, tiny_prepared):
    nb = write_notebook(tmp_path / "sleeps_in_cell.ipynb",
                        ["md:# Work", GOOD_NET, "import time\ntime.sleep(120)", "answer = 42"])
    result, checks = grade(nb, tiny_prepared, cell_seconds=5)
    assert result.status == "cell-timeout"
    assert "cell(s) 3 ran longer than 5s" in result.message
    assert checks["net-shape"].outcome == "passed"
    assert checks["notebook"].outcome == "failed"


def test_kernel_that_exits_is_reported(tmp_path, tiny_prepared):
    nb = write_notebook(tmp_path / "exits_kernel.ipynb", ["md:# Work", GOOD_NET, "import os\nos._exit(0)", "answer = 42"])
    result, checks = grade(nb, tiny_prepared)
    assert result.status == "kernel-died"
    assert "cell 3" in result.message
    assert checks["net-defined"].outcome == "errored" and "not observed" in checks["net-defined"].message
    assert checks["net-shape"].outcome == "skipped" and "needs net-defined" in checks["net-shape"].message


def test_module_that_raises_at_import_is_graded_and_explained(tmp_path, tiny_prepared):
    folder = tmp_path / "raises_at_import"
    folder.mkdir()
    (folder / "helpers.py").write_text(GOOD_NET + "\nanswer = 42\n")
    (folder / "main.py").write_text("raise RuntimeError('half-finished work')\n")
    result, checks = grade(folder, tiny_prepared)
    assert result.status == "ok"
    assert result.message.startswith("main.py, line 1: RuntimeError: half-finished work; ")
    assert checks["net-shape"].outcome == "passed"
    broken = [m for m in result.modules if m["status"] == "error"]
    assert broken[0]["name"] == "main" and "half-finished work" in broken[0]["error"]
    assert broken[0]["raised"] == {"type": "RuntimeError", "message": "half-finished work", "file": "main.py",
                                   "line": 1, "missing_module": None}


def test_an_import_of_a_missing_package_is_one_message_and_later_cells_run(tmp_path, tiny_prepared):
    nb = write_notebook(tmp_path / "imports_missing_package.ipynb", [
        "md:# Work", "import math\nimport surely_not_installed_pkg_x as sn", GOOD_NET,
        "sn.plot([1, 2])", "answer = 42"])
    result, checks = grade(nb, tiny_prepared)
    assert result.status == "ok"
    assert result.message.startswith("the notebook imports `surely_not_installed_pkg_x` (cell 2, line 2), which "
                                     "is not installed in the grading environment; cell 4, line 1: NameError")
    assert checks["net-shape"].outcome == "passed" and checks["answer"].outcome == "passed"
    assert checks["notebook"].message.startswith(
        "runs without errors: got cell 2, line 2: imports `surely_not_installed_pkg_x`, which is not installed")
    importing = result.cells[1]
    assert (importing["number"], importing["raised"]["line"]) == (2, 2)  # the JSON says what the messages say
    assert importing["raised"]["missing_module"] == "surely_not_installed_pkg_x"


def test_a_module_importing_a_missing_package_names_it(tmp_path, tiny_prepared):
    folder = tmp_path / "module_imports_missing_package"
    folder.mkdir()
    (folder / "helpers.py").write_text(GOOD_NET + "\nanswer = 42\n")
    (folder / "main.py").write_text("import os\nfrom surely_not_installed_pkg_x import tools\n")
    result, checks = grade(folder, tiny_prepared)
    assert result.status == "ok" and checks["net-shape"].outcome == "passed"
    assert result.message.startswith("the code imports `surely_not_installed_pkg_x` (main.py, line 2), which is "
                                     "not installed in the grading environment")
    assert result.modules[1]["raised"]["missing_module"] == "surely_not_installed_pkg_x"


def test_subplots_count_as_plots_and_a_grid_of_images_as_one(tmp_path, tiny_prepared):
    nb = write_notebook(tmp_path / "plots_in_subplots.ipynb", [
        "md:# Work", GOOD_NET + "\nanswer = 42\nimport matplotlib.pyplot as plt\nimport numpy as np",
        "fig, (loss, accuracy) = plt.subplots(1, 2)\nloss.plot([3, 2, 1])\naccuracy.plot([0.5, 0.9])\nplt.show()",
        "fig, axes = plt.subplots(2, 2)\nfor ax in axes.flat:\n    ax.imshow(np.eye(3))",
        "plt.figure()\nplt.plot([1, 2])\nplt.figure()\nplt.plot([2, 1])",
        "from IPython.display import Image, display\nimport base64\ndisplay(Image(data=base64.b64decode("
        "'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==')))"])
    result, _ = grade(nb, tiny_prepared)
    assert result.message == "ran to completion"
    assert [c.get("figures", 0) for c in result.cells] == [0, 0, 2, 1, 2, 1]


def test_student_exception_inside_a_probe_is_errored(tmp_path, tiny_prepared):
    mod = tmp_path / "forward_raises.py"
    mod.write_text("from torch import nn\nclass Net(nn.Module):\n    def forward(self, x):\n"
                   "        raise ValueError('not yet')\n"
                   "def make_net(n_in, n_out):\n    return Net()\nanswer = 42\n")
    result, checks = grade(mod, tiny_prepared)
    assert checks["net-shape"].outcome == "errored"
    assert checks["net-shape"].message.startswith("ValueError: not yet (while running the model on an input of shape")
    assert checks["net-params"].outcome == "failed" and "0 learnable parameters, expected 23" in checks["net-params"].message


def _processes_with(token: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if token.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(int(pid))
        except OSError:
            pass
    return found


def test_wall_timeout_kills_everything_it_started(tmp_path, tiny_prepared):
    token = f"grader-test-{uuid.uuid4().hex}"
    mod = tmp_path / "infinite_loop_with_children.py"
    mod.write_text(
        "import os, subprocess, time\n"
        f"subprocess.Popen(['sleep', '300', '{token}'])\n"
        "if os.fork() == 0:\n"                       # a daemonized grandchild in its own session
        "    os.setsid()\n"
        f"    if os.fork() == 0:\n        os.execvp('sleep', ['sleep', '301', '{token}'])\n"
        "    os._exit(0)\n"
        "while True:\n    time.sleep(0.1)\n")
    result, checks = grade(mod, tiny_prepared, wall_seconds=4)
    assert result.status == "timeout-wall"
    assert "longer than the 4s limit" in result.message
    assert checks["net-defined"].outcome == "errored"
    assert _processes_with(token) == []


def test_huge_output_is_truncated(tmp_path, tiny_prepared):
    mod = tmp_path / "prints_a_lot.py"
    mod.write_text("print('<script>alert(1)</script>')\nprint('x' * 2_000_000)\n" + GOOD_NET + "\nanswer = 42\n")
    result, _ = grade(mod, tiny_prepared)
    assert len(result.stdout) < 25_000
    assert "bytes cut" in result.stdout and result.stdout.startswith("<script>")


CUDA_NOTEBOOK = [
    "md:# Written on a machine with a GPU",
    'import torch\nfrom torch import nn\ndevice = "cuda"',
    "def make_net(n_in, n_out):\n    return nn.Sequential(nn.Linear(n_in, 3), nn.ReLU(), nn.Linear(3, n_out)).to(device)",
    "x = torch.ones(2, 4).cuda()\ny = torch.zeros(2, 4, device=device)\n"
    "answer = 21 * make_net(4, 2)(x + y).shape[0]",
]


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="with a GPU there is nothing to fall back from")
def test_hard_coded_cuda_runs_on_the_cpu_and_is_reported(tmp_path, tiny_prepared):
    result, checks = grade(write_notebook(tmp_path / "hard_coded_cuda.ipynb", CUDA_NOTEBOOK), tiny_prepared)
    assert result.status == "ok", result.message
    assert {c.id: c.outcome for c in result.checks} == dict.fromkeys(checks, "passed")
    assert result.cuda_on_cpu == ['cell 2: device = "cuda"', "cell 4: x = torch.ones(2, 4).cuda()"]
    assert [c["index"] for c in result.cells] == [0, 1, 2, 3]  # the fallback's setup cell is not the student's


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="with a GPU there is nothing to fall back from")
def test_a_module_asking_for_cuda_runs_on_the_cpu_too(tmp_path, tiny_prepared):
    module = tmp_path / "gpu_module.py"
    module.write_text("\n\n".join(c for c in CUDA_NOTEBOOK if not c.startswith("md:")) + "\n")
    result, checks = grade(module, tiny_prepared)
    assert result.status == "ok", result.message
    assert checks["net-shape"].outcome == "passed" and checks["answer"].outcome == "passed"
    assert result.cuda_on_cpu[0] == 'gpu_module.py: device = "cuda"'


def test_a_notebook_without_cuda_gets_no_fallback(tmp_path, tiny_prepared):
    result, _ = grade(write_notebook(tmp_path / "plain.ipynb", ["md:# Work", GOOD_NET, "answer = 42"]), tiny_prepared)
    assert result.cuda_on_cpu == []


def test_a_module_keeps_what_it_defined_before_it_raised(tmp_path, tiny_prepared):
    """As a notebook keeps the cells before a failing one: the network counts, the later answer does not."""
    module = tmp_path / "script_then_crash.py"
    module.write_text(GOOD_NET + "\nprint([3, 1].argmin())\nanswer = 42\n")
    result, checks = grade(module, tiny_prepared)
    assert result.status == "ok"
    assert checks["net-shape"].outcome == "passed" and checks["net-params"].outcome == "passed"
    # the answer is defined below the line that raised: the check names that failure, not "no match"
    assert checks["answer"].outcome == "errored"
    assert "script_then_crash.py defines `answer` at line" in checks["answer"].message
    assert "AttributeError" in checks["answer"].message
    assert result.modules[0]["status"] == "error" and "argmin" in result.modules[0]["error"]


def test_a_module_imported_by_an_earlier_one_runs_once(tmp_path, tiny_prepared):
    """main imports helpers; grading in name order must not make a second helpers.make_net (ambiguous)."""
    folder = tmp_path / "imports_a_sibling"
    folder.mkdir()
    (folder / "a_main.py").write_text("import helpers\nfrom helpers import make_net\nanswer = helpers.RUNS * 42\n")
    (folder / "helpers.py").write_text(GOOD_NET + "\nRUNS = 1\n")
    result, checks = grade(folder, tiny_prepared)
    assert checks["net-shape"].outcome == "passed", checks["net-shape"].message
    assert checks["answer"].outcome == "passed"


def test_a_module_exported_from_a_notebook_runs_past_its_magics(tmp_path, tiny_prepared):
    """nbconvert --to script writes get_ipython() calls; the script still runs and the magics are reported."""
    module = tmp_path / "exported.py"
    module.write_text("get_ipython().run_line_magic('matplotlib', 'inline')\n"
                      "get_ipython().system('pip install tqdm')\n" + GOOD_NET + "\nanswer = 42\n")
    result, checks = grade(module, tiny_prepared)
    assert result.status == "ok", result.message
    assert checks["net-shape"].outcome == "passed" and checks["answer"].outcome == "passed"
    assert result.removed_commands == ["%matplotlib inline", "!pip install tqdm"]
