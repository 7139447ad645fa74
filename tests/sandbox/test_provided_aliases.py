"""The course's provided reader answers to the names and data paths students reach it by
(``sandbox.provided_aliases``): the host's plan and notes, the rubric's declaration, and the
serving itself in a fresh interpreter (it changes ``sys.meta_path``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from grader.rubric import ProvidedAlias, SubmissionSpec
from grader.sandbox import provided_aliases

READER = [{"module": "utils.reader", "imports": ["*.utils.reader", "reader"], "data_paths": ["data/fashion"]}]
CLONED_IMPORT = "from course_clone.utils.reader import load\nrows = load('course_clone/data/fashion')\n"


def test_names_imported_from_a_clone_are_planned_with_the_packages_above_them():
    made = provided_aliases.plan(READER, "data/fashion", [CLONED_IMPORT])
    assert made["modules"] == {"course_clone.utils.reader": "utils.reader"}
    assert made["packages"] == ["course_clone", "course_clone.utils"]
    assert made["paths"] == [{"module": "utils.reader", "suffixes": ["data/fashion"], "served": "data/fashion"}]


@pytest.mark.parametrize("code, planned", [
    ("import reader", {"reader": "utils.reader"}),
    ("from clone.utils import reader as r, other", {"clone.utils.reader": "utils.reader"}),
    ("import clone.utils.reader as r  # the clone", {"clone.utils.reader": "utils.reader"}),
    ("from utils.reader import load", {}),          # the provided module's own name is no alias
    ("from utils import reader", {}),
    ("import clone.reader", {}),                     # only the declared patterns
    ("from .utils.reader import load", {}),          # relative imports are the student's own package
])
def test_which_imports_are_aliases(code, planned):
    assert provided_aliases.plan(READER, "data/fashion", [code])["modules"] == planned


def test_the_notes_name_the_alias_the_file_and_the_served_path():
    notes = provided_aliases.notes_for(READER, "data/fashion", [("script.py", CLONED_IMPORT)])
    assert notes == [
        "`course_clone.utils.reader` (script.py) is the course's utils.reader as the grader provides it: the grader "
        "imports its own copy under that name (a copy of the course's repository is not part of the grading "
        "environment)",
        "a folder given to the course's utils.reader that is not there and ends in data/fashion "
        "('course_clone/data/fashion') is read from the data the grader serves at data/fashion"]


def test_code_that_uses_the_reader_as_handed_out_gets_no_note():
    code = "from utils.reader import load\nrows = load('data/fashion')\n"
    assert provided_aliases.notes_for(READER, "data/fashion", [("cell 2", code)]) == []


def test_no_declaration_no_environment():
    assert provided_aliases.env_for([], "data/fashion", [CLONED_IMPORT]) == {}


def _run(tmp_path: Path, code: str, env_plan: dict) -> subprocess.CompletedProcess:
    (tmp_path / "utils").mkdir()
    (tmp_path / "utils" / "__init__.py").write_text("")
    (tmp_path / "utils" / "reader.py").write_text("import os\n\ndef load(path, kind='train'):\n"
                                                  "    return sorted(os.listdir(path))\n")
    (tmp_path / "data" / "fashion").mkdir(parents=True)
    (tmp_path / "data" / "fashion" / "train.gz").write_text("")
    script = textwrap.dedent("""
        import sys
        sys.path.insert(0, '.')
        import grader.sandbox.provided_aliases as aliases
        aliases.install()
    """) + code + "\nprint('served:', aliases.served)\n"
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, provided_aliases.ENV: json.dumps(env_plan), "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60)


def test_a_clone_import_and_its_data_path_are_served(tmp_path):
    code = CLONED_IMPORT + "print(rows, load('/home/me/fashion-mnist/data/fashion/'), load('data/fashion'))\n"
    done = _run(tmp_path, code, provided_aliases.plan(READER, "data/fashion", [code]))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["['train.gz'] ['train.gz'] ['train.gz']",
                                        "served: ['course_clone/data/fashion', '/home/me/fashion-mnist/data/fashion/']"]


def test_a_path_that_does_not_end_in_the_suffix_still_fails_as_the_student_wrote_it(tmp_path):
    code = "import reader\nreader.load('elsewhere/fashion')\n"
    done = _run(tmp_path, code, provided_aliases.plan(READER, "data/fashion", [code]))
    assert done.returncode != 0
    assert "FileNotFoundError" in done.stderr and "elsewhere/fashion" in done.stderr


def test_a_real_package_of_the_clones_name_wins_over_the_empty_one(tmp_path):
    (tmp_path / "course_clone").mkdir()
    (tmp_path / "course_clone" / "__init__.py").write_text("OWN = 'the student package'\n")
    code = "import course_clone.utils.reader as r\nimport course_clone\nprint(course_clone.OWN, r.load('data/fashion'))\n"
    done = _run(tmp_path, code, provided_aliases.plan(READER, "data/fashion", [code]))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "the student package ['train.gz']"


def test_a_broken_environment_serves_nothing(monkeypatch):
    monkeypatch.setenv(provided_aliases.ENV, "not json")
    assert provided_aliases.install() is False


def test_the_rubric_refuses_an_alias_of_a_module_that_is_not_provided():
    with pytest.raises(ValueError, match="utils.reader is not among the provided files"):
        SubmissionSpec(provided=["performance.py"], provided_aliases=[ProvidedAlias(module="utils.reader")])
    with pytest.raises(ValueError, match="not a module name"):
        ProvidedAlias(module="utils.reader", imports=["utils/reader.py"])
    SubmissionSpec(provided=["utils", "performance.py"], provided_aliases=[ProvidedAlias(module="utils.reader")])


def test_the_custom_ops_rubric_declares_the_course_reader():
    from grader import rubric

    loaded = rubric.load(Path(__file__).resolve().parents[2] / "rubrics" / "custom-ops.yaml")
    (alias,) = loaded.model.submission.provided_aliases
    assert alias.module == "utils.mnist_reader" and alias.data_paths == ["data/fashion"]


def test_served_data_paths_need_a_data_set():
    from grader.rubric import Rubric

    with pytest.raises(ValueError, match="names no data set"):
        Rubric.model_validate({
            "assignment": "a", "title": "t", "reference": ".", "targets": {},
            "submission": {"provided": ["utils"], "provided_aliases": [{"module": "utils.reader",
                                                                       "data_paths": ["data/x"]}]},
            "checks": [{"id": "n", "kind": "notebook", "points": 1, "visibility": "visible"}]})
