"""The host's source scan: each rule family on code in the styles students write, honest work that
raises nothing, notebooks' own syntax; then the result, the reports and the pipeline around it."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path

import pytest

from grader import pipeline, rubric, source_scan, submission
from grader.journal import Journal, key_for
from grader.report.exporters import gradebook_csv, summary_json
from grader.report.html import render_submission, render_summary
from grader.report.triage import Attention, needs_attention
from grader.report.terminal import self_check_table
from grader.results import CheckResult, SourceFlag, SubmissionResult
from tests.conftest import GOOD_NET, write_notebook

ROOT = Path(__file__).parents[1]


def found(code: str, label: str = "cell 1", **options) -> list[tuple[str, str, str]]:
    """(rule, where, line) of every finding in one cell or module."""
    return [(f.rule, f.where, f.line) for f in source_scan.scan([(label, textwrap.dedent(code))], **options)]


def rules(code: str, label: str = "cell 1", **options) -> set[str]:
    return {rule for rule, _, _ in found(code, label, **options)}


# ---------------------------------------------------------------- honest work raises nothing

MNIST_NOTEBOOK = [
    "%matplotlib inline\n!pip install torchsummary\nimport sys\nsys.path.append('..')\n"
    "import os, gc, re, random, importlib, warnings\nimport numpy as np\nimport matplotlib.pyplot as plt\n"
    "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"
    "from torchvision import datasets, transforms\n"
    "warnings.filterwarnings('ignore')\nplt.rcParams['figure.figsize'] = (10, 6)",
    "torch.manual_seed(0)\nnp.random.seed(0)\nrandom.seed(0)\ntorch.backends.cudnn.deterministic = True\n"
    "torch.backends.cudnn.benchmark = False\ndevice = 'cuda' if torch.cuda.is_available() else 'cpu'\n"
    "os.makedirs('checkpoints', exist_ok=True)\nos.environ['KMP_DUPLICATE_LIB_OK'] = 'True'",
    "transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])\n"
    "datasets.MNIST.resources = [(url.replace('http://yann', 'https://ossci'), md5)\n"
    "                            for url, md5 in datasets.MNIST.resources]\n"
    "train_set = datasets.MNIST('./data', train=True, download=True, transform=transform)\n"
    "loader = torch.utils.data.DataLoader(train_set, batch_size=64, shuffle=True)",
    "class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
    "        self.conv1 = nn.Conv2d(1, 32, 3)\n        self.fc = nn.Linear(32 * 26 * 26, 10)\n"
    "    def forward(self, x):\n        x = F.relu(self.conv1(x))\n        return self.fc(torch.flatten(x, 1))\n"
    "    def eval_mode(self):\n        setattr(self, 'dropout', nn.Identity())\n        return getattr(nn, 'ReLU')()",
    "%%time\nmodel = Net().to(device)\noptimizer = torch.optim.Adam(model.parameters(), lr=1e-3)\n"
    "for epoch in range(2):\n    for images, labels in loader:\n        optimizer.zero_grad()\n"
    "        loss = F.cross_entropy(model(images), labels)\n        loss.backward()\n        optimizer.step()\n"
    "    gc.collect()\n    print(f'epoch {epoch}: {loss.item():.3f}')",
    "def eval(model, loader):\n    model.eval()\n    with torch.no_grad():\n"
    "        return sum((model(x).argmax(1) == y).sum().item() for x, y in loader)\n\naccuracy = eval(model, loader)\n"
    "pattern = re.compile(r'\\d+')\nfast = torch.compile(model)\n"
    "torch.save(model.state_dict(), 'checkpoints/model.pt')",
    "files = !ls checkpoints\nmodel?\n%timeit -n 1 -r 1 model(images)",
]

CUSTOM_OPS_MODULE = """\
import torch
from torch import nn
from torch.autograd import Function


class ConvFunction(Function):
    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        columns = x.unfold(2, weight.shape[2], 1).unfold(3, weight.shape[3], 1)
        return torch.einsum("bihwkl,oikl->bohw", columns, weight) + bias.view(1, -1, 1, 1)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        return None, None, grad_out.sum((0, 2, 3))


class Conv2d(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x):
        return ConvFunction.apply(x, self.weight, self.bias)
"""


def test_a_typical_mnist_notebook_raises_nothing():
    cells = [(f"cell {n}", text) for n, text in enumerate(MNIST_NOTEBOOK, start=2)]
    assert source_scan.scan(cells) == []


def test_a_custom_ops_module_with_its_own_autograd_function_raises_nothing():
    assert found(CUSTOM_OPS_MODULE, "ops.py") == []


def test_the_students_own_modules_may_be_changed():
    code = "import config\nimport helpers\nconfig.lr = 0.1\nhelpers.DEBUG = True\nfrom . import utils\nutils.x = 1\n"
    assert rules(code, "train.py", own_modules={"helpers"}) == {"monkeypatch"}  # config: a library, for all we know
    assert source_scan.scan([("train.py", code), ("config.py", "lr = 1\n")], own_modules={"helpers"}) == []


# ---------------------------------------------------------------- the rule families


def test_reaching_the_grader():
    assert found("import grader.observations as obs\nobs.write = print\n", "m.py") == [
        ("grader", "m.py, line 1", "import grader.observations as obs"),
        ("monkeypatch", "m.py, line 2", "obs.write = print"),
        ("grader", "m.py, line 2", "obs.write = print")]
    assert rules("from grader.checks.toolkit import forbidden") == {"grader"}
    assert rules("import grader\nprint(grader.__file__)") == {"grader"}


def test_naming_the_graders_files():
    assert found("for name in files:\n    if name == 'observations.json':\n        pass") == [
        ("grader-files", "cell 1, line 2", "if name == 'observations.json':")]
    assert rules("path = f'{out}/journal.sqlite'") == {"grader-files"}
    assert rules("json.dump(history, open('summary.json', 'w'))") == set()  # a name honest code uses


def test_interpreter_internals():
    assert rules("import sys\nsys.modules['torch'].allclose") == {"interpreter"}
    assert rules("import sys\nframe = sys._getframe(1)") == {"interpreter"}
    assert rules("from inspect import currentframe as here\nhere()") == {"interpreter"}
    assert rules("def peek(frame):\n    return frame.f_back.f_locals") == {"interpreter"}
    assert rules("import gc\nfor o in gc.get_objects():\n    pass") == {"interpreter"}
    assert rules("import gc\ngc.get_referrers(x)") == {"interpreter"}
    assert rules("().__class__.__base__.__subclasses__()") == {"interpreter"}
    assert rules("import sys\nsys.settrace(tracer)") == {"interpreter"}
    assert rules("import sys\ngetattr(sys, 'modules')") == {"interpreter"}  # getattr with a constant is an attribute
    assert rules("import gc, inspect, sys\ngc.collect()\ninspect.signature(f)\nsys.path.insert(0, '.')") == set()


def test_the_dispatcher():
    assert rules("import torch\ntorch.ops.aten.convolution(x, w, None, [1], [0], [1], False, [0], 1)") == {"dispatcher"}
    assert rules("import torch\ntorch._C._set_grad_enabled(True)") == {"dispatcher"}
    assert rules("from torch import _C") == {"dispatcher"}
    assert rules("import torch.library") == {"dispatcher"}
    assert rules("from torch.overrides import TorchFunctionMode\nclass Spy(TorchFunctionMode):\n    pass") == \
        {"dispatcher"}
    assert found("from torch.utils._python_dispatch import TorchDispatchMode as M\n\nclass Spy(M):\n"
                 "    def __torch_dispatch__(self, func, types, args=(), kwargs=None):\n        return func(*args)",
                 "spy.py") == [
        ("dispatcher", "spy.py, line 1", "from torch.utils._python_dispatch import TorchDispatchMode as M"),
        ("dispatcher", "spy.py, line 3", "class Spy(M):"),
        ("dispatcher", "spy.py, line 4", "def __torch_dispatch__(self, func, types, args=(), kwargs=None):")]
    assert rules("class T:\n    @classmethod\n    def __torch_function__(cls, func, types, args=(), kwargs=None):\n"
                 "        return super().__torch_function__(func, types, args, kwargs or {})") == {"dispatcher"}


def test_tensor_subclasses():
    assert found("import torch\nclass Liar(torch.Tensor):\n    def __eq__(self, other):\n        return True") == [
        ("tensor-subclass", "cell 1, line 2", "class Liar(torch.Tensor):")]
    assert rules("from torch import nn\nclass P(nn.Parameter):\n    pass") == {"tensor-subclass"}
    assert rules("import torch\nclass Net(torch.nn.Module):\n    pass") == set()


def test_a_custom_autograd_function_only_where_the_rubric_forbids_it():
    assert found(CUSTOM_OPS_MODULE, "ops.py", forbid_autograd_function=True) == [
        ("autograd-function", "ops.py, line 6", "class ConvFunction(Function):")]


def test_the_rubric_forbids_autograd_functions_through_an_op_equivalence_checks_names():
    custom_ops = rubric.load(ROOT / "rubrics" / "custom-ops.yaml").model
    assert not source_scan.rubric_forbids_autograd_function(custom_ops)  # the defaults: writing one is the point
    ops = [c.model_copy(update={"forbidden_names": [*c.names(), "autograd.Function"]}) if c.kind == "op_equivalence"
           else c for c in custom_ops.checks]
    assert source_scan.rubric_forbids_autograd_function(custom_ops.model_copy(update={"checks": ops}))


def test_native_code():
    assert found("import ctypes\nctypes.string_at(0)", "m.py") == [
        ("native-code", "m.py, line 1", "import ctypes"), ("native-code", "m.py, line 2", "ctypes.string_at(0)")]
    assert rules("from ctypes import *") == {"native-code"}
    assert rules("from torch.utils.cpp_extension import load_inline") == {"native-code"}
    assert rules("import torch.utils.cpp_extension") == {"native-code"}


def test_dynamic_code():
    assert rules("x = eval('1 + 1')") == {"dynamic-code"}
    assert rules("exec(open('helper.py').read())") == {"dynamic-code"}
    assert rules("code = compile(src, 'x', 'exec')") == {"dynamic-code"}
    assert rules("F = __import__('torch.nn.functional')") == {"dynamic-code"}
    assert rules("import importlib\nm = importlib.import_module('grader')") == {"dynamic-code"}
    assert rules("from importlib import import_module") == {"dynamic-code"}
    assert rules("get_ipython().run_cell('import ctypes')") == {"dynamic-code"}
    assert rules("def run(f=eval):\n    pass") == {"dynamic-code"}  # an argument's default is outside the function
    assert rules("def run(x: eval('int')):\n    pass") == {"dynamic-code"}  # so is its annotation
    # Honest: reloading one's own module, methods and functions of those names, a student's own eval
    assert rules("import importlib, helpers\nimportlib.reload(helpers)") == set()
    assert rules("model.eval()\npattern = re.compile('a')\nfast = torch.compile(model)") == set()
    assert rules("def evaluate(eval):\n    return eval(1)") == set()  # the argument, not the builtin


def test_builtins():
    assert rules("import builtins\nbuiltins.print = lambda *a: None") == {"builtins"}
    assert rules("__builtins__.open = None") == {"builtins"}
    assert rules("import builtins\nsetattr(builtins, 'len', lambda x: 0)") == {"builtins"}
    assert rules("import builtins\nbuiltins.print('hello')") == set()


def test_monkeypatching_a_library():
    assert found("import torch\ntorch.allclose = lambda *a, **k: True", "m.py") == [
        ("monkeypatch", "m.py, line 2", "torch.allclose = lambda *a, **k: True")]
    assert rules("import numpy as np\nnp.random.seed = lambda s=None: None") == {"monkeypatch"}
    assert rules("import json\njson.dump = None") == {"monkeypatch"}
    assert rules("from torch import Tensor\nTensor.__eq__ = lambda a, b: True") == {"monkeypatch"}
    assert rules("import torch\nsetattr(torch, 'equal', lambda a, b: True)") == {"monkeypatch"}
    assert rules("import torch\nvars(torch)['equal'] = None") == {"monkeypatch"}
    assert rules("import torch\ndel torch.testing") == {"monkeypatch"}
    assert rules("def patch():\n    import torch as t\n    t.equal = None") == {"monkeypatch"}
    # Honest settings, and attributes of the student's own objects
    assert rules("import torch, sys\nimport numpy as np\nfrom PIL import ImageFile\n"
                 "torch.backends.cudnn.benchmark = True\nsys.argv = ['']\nnp.float = float\n"
                 "ImageFile.LOAD_TRUNCATED_IMAGES = True\nmodel = torch.nn.Linear(2, 2)\n"
                 "model.weight.data = torch.zeros(2, 2)\nsetattr(model, 'bias', None)") == set()


def test_exit_and_signal_handlers():
    assert rules("import atexit\natexit.register(rewrite_results)") == {"exit-hooks"}
    assert rules("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)") == {"exit-hooks"}
    # Ending one's own run reaches nothing of the grader's
    assert rules("import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\nos._exit(0)") == set()


def test_code_anywhere_is_scanned():
    code = """\
    import torch
    class Net(torch.nn.Module):
        def forward(self, x):
            def inner():
                return [torch._C for _ in range(1)]
            return (lambda: inner())()

    @decorate(torch.ops)
    def f():
        pass
    """
    assert [(where, line) for _, where, line in found(code)] == [
        ("cell 1, line 5", "return [torch._C for _ in range(1)]"), ("cell 1, line 8", "@decorate(torch.ops)")]


def test_one_finding_per_rule_and_line():
    assert found("import sys\nsys.modules; sys._getframe().f_back") == [
        ("interpreter", "cell 1, line 2", "sys.modules; sys._getframe().f_back")]


# ---------------------------------------------------------------- notebooks' own syntax, and what does not parse


def test_magics_and_shell_escapes_do_not_hide_a_cell():
    cell = "%load_ext autoreload\n!pip install x\nout = !ls\nfor i in range(2):\n    !echo $i\nmodel?\nimport ctypes"
    assert found(cell, "cell 4") == [("native-code", "cell 4, line 7", "import ctypes")]


def test_a_timing_magic_runs_the_statement_it_times():
    assert found("%time x = eval('2')") == [("dynamic-code", "cell 1, line 1", "%time x = eval('2')")]
    assert found("%%time\nimport ctypes") == [("native-code", "cell 1, line 2", "import ctypes")]
    assert found("%%writefile helper.py\nimport grader") == [("grader", "cell 1, line 2", "import grader")]


def test_cells_in_another_language_are_not_python():
    assert source_scan.scan([("cell 1", "%%bash\nfor f in *; do echo $f; done"),
                             ("cell 2", "%%writefile notes.txt\nnot python (at all")]) == []


def test_notebook_cells_share_one_namespace():
    cells = [("cell 1", "import torch as T"), ("cell 2", "T.allclose = lambda *a: True"),
             ("cell 3", "def eval(m):\n    return m"), ("cell 4", "eval(1)")]
    assert [(f.rule, f.where) for f in source_scan.scan(cells)] == [("monkeypatch", "cell 2, line 1")]


def test_modules_do_not_share_names():
    texts = [("a.py", "import torch as T\n"), ("b.py", "T.allclose = None\n")]  # b's T is not torch
    assert source_scan.scan(texts) == []


def test_a_cell_that_does_not_parse_is_itself_a_finding():
    assert found("def fully_connected(D, K, O)\n    return None") == [
        ("unparsed", "cell 1, line 1", "def fully_connected(D, K, O)")]
    assert found("x = " + "(" * 500 + ")" * 500, "deep.py") == [("unparsed", "deep.py, line 1", "x = " + "(" * 196)]
    assert found("print('a')\x00", "nul.py") == [("unparsed", "nul.py", "")]


def test_a_finding_says_what_and_where():
    flag, = source_scan.scan([("model.py", "\n\nimport ctypes  # for speed\n")])
    assert flag.where == "model.py, line 3" and flag.line == "import ctypes  # for speed"
    assert flag.what == f"{source_scan.RULES['native-code'].reason}: ctypes"
    assert flag.note() == f"model.py, line 3: {flag.what} (import ctypes  # for speed)"


def test_every_rule_has_a_reason():
    assert all(rule.reason and not rule.reason.endswith(".") for rule in source_scan.RULES.values())


# ---------------------------------------------------------------- the rubric's part


def test_provided_files_are_not_scanned_and_their_modules_may_be_changed(tiny_rubric):
    model = tiny_rubric.model.model_copy(update={"submission": tiny_rubric.model.submission.model_copy(
        update={"provided": ["helpers.py", "utils"]})})
    submitted = [("helpers.py", "import ctypes\n"), ("utils/reader.py", "exec('1')\n"),
                 ("main.py", "import helpers\nhelpers.VERBOSE = False\nimport ctypes\n")]
    assert [f.where for f in source_scan.scan_submission(submitted, model)] == ["main.py, line 3"]


def test_a_bug_in_the_scan_costs_a_review_not_the_grade(tiny_rubric, monkeypatch):
    def broken(*args, **kwargs):
        raise KeyError("oops")

    monkeypatch.setattr(source_scan, "scan", broken)
    flag, = source_scan.scan_submission([("main.py", "x = 1\n")], tiny_rubric.model)
    assert flag.rule == "scan-error" and "KeyError" in flag.what


# ---------------------------------------------------------------- the result and the reports


def result_with(flags: list[SourceFlag], **over) -> SubmissionResult:
    base = dict(student="mallory", source="mallory.py", content_hash="ab" * 32, status="ok", message="ran",
                isolation="process", score=1, max_score=1, visible_score=1, visible_max=1, assignment="tiny",
                rubric_hash="cd" * 32, grader_version="0", flags=flags, checks=[
                    CheckResult(id="answer", kind="answer", visibility="visible", outcome="passed", points=1,
                                max_points=1, message="right")])
    return SubmissionResult(**(base | over))


PATCH = source_scan.scan([("main.py", "import torch\ntorch.allclose = lambda *a: '<b>True</b>'\n")])


def test_the_review_note_names_each_flagged_line_and_stops_after_a_few():
    note = result_with(PATCH).review_note()
    assert note.startswith("source scan: main.py, line 2: replaces an attribute of a library module")
    assert note.endswith("(torch.allclose = lambda *a: '<b>True</b>')")
    many = result_with([PATCH[0]] * 7).review_note()
    assert many.count("source scan:") == 5
    assert many.endswith("and 2 more flagged lines (the submission's page lists them)")


def test_students_do_not_see_flags_in_a_self_check():
    flagged = result_with(PATCH)
    assert flagged.for_students().flags == []
    assert "allclose" not in self_check_table(flagged)


def test_reports_show_each_flagged_line_escaped(tiny_rubric):
    flagged = result_with(PATCH)
    page = render_submission(flagged)
    assert "Flagged for review: source scan" in page and "main.py, line 2" in page
    assert "<b>True</b>" not in page and "&lt;b&gt;True&lt;/b&gt;" in page
    assert needs_attention([flagged], ["mallory"]) == [Attention(
        "source scan", [("mallory", "mallory")], f"main.py, line 2: {PATCH[0].what}",
        line="torch.allclose = lambda *a: '<b>True</b>'")]
    assert "<code>torch.allclose = lambda *a: &#39;&lt;b&gt;True&lt;/b&gt;&#39;</code>" in \
        render_summary([flagged], ["mallory"], tiny_rubric)
    assert "main.py, line 2" in json.loads(summary_json([flagged]))[0]["review"]
    assert "main.py, line 2" in gradebook_csv([flagged], tiny_rubric)
    assert "Flagged for review" not in render_submission(result_with([]))


def test_the_journal_keeps_flags_and_reads_results_stored_without_them(tmp_path):
    flagged = result_with(PATCH)
    sub = submission.Submission(student="mallory", source=tmp_path / "mallory.py", content_hash="ab" * 32)
    key = key_for(sub, "cd" * 32)
    with Journal.open(tmp_path / "journal.sqlite") as journal:
        journal.add([(key, sub)])
        journal.finish(key, flagged)
        assert journal.finished(key).flags == PATCH
    stored = json.loads(flagged.model_dump_json())
    del stored["flags"]  # a row written before the scan existed
    assert SubmissionResult.model_validate_json(json.dumps(stored)).flags == []


# ---------------------------------------------------------------- in the pipeline


@pytest.fixture(scope="module")
def process_prepared(tiny_prepared):
    return dataclasses.replace(tiny_prepared, isolation="process")


def test_a_flagged_submission_keeps_its_points_and_its_review_note_names_the_line(tmp_path, process_prepared):
    honest = tmp_path / "honest.ipynb"
    patched = tmp_path / "patched.ipynb"
    write_notebook(honest, ["md:# Work", GOOD_NET, "answer = 42"])
    write_notebook(patched, ["md:# Work", GOOD_NET, "import torch\ntorch.manual_seed = lambda seed: None\nanswer = 42"])
    graded = {path.stem: pipeline.grade_one(submission.single(path), process_prepared) for path in (honest, patched)}
    assert graded["honest"].flags == [] and graded["honest"].review_note() == ""
    assert (graded["patched"].status, graded["patched"].score) == (graded["honest"].status, graded["honest"].score)
    assert graded["patched"].score == graded["patched"].max_score
    assert [(f.rule, f.where, f.line) for f in graded["patched"].flags] == [
        ("monkeypatch", "cell 3, line 2", "torch.manual_seed = lambda seed: None")]
    assert "cell 3, line 2" in graded["patched"].review_note()
    assert "torch.manual_seed = lambda seed: None" in graded["patched"].review_note()


def test_a_rejected_submission_is_not_scanned(tmp_path, process_prepared):
    folder = tmp_path / "two_notebooks"
    folder.mkdir()
    for name in ("a.ipynb", "b.ipynb"):
        write_notebook(folder / name, ["import ctypes"])
    result = pipeline.grade_one(submission.single(folder), process_prepared)
    assert result.status == "rejected" and result.flags == []
