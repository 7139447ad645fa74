"""The runner's record of a module that raised at import: the file and line of the student's code."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from grader.sandbox import Raised
from grader.sandbox.runner import raised_at_import


def import_and_catch(root, name: str) -> BaseException:
    sys.path.insert(0, str(root))
    try:
        found = importlib.util.spec_from_file_location(name, root / f"{name}.py")
        module = importlib.util.module_from_spec(found)
        with pytest.raises(BaseException) as caught:
            found.loader.exec_module(module)
        return caught.value
    finally:
        sys.path.remove(str(root))
        for imported in ("helpers_that_raise", "main_module_under_test"):
            sys.modules.pop(imported, None)


def test_the_line_is_the_students_own_not_the_librarys(tmp_path):
    """json.loads raises deep in the library; the line to fix is the call in main.py."""
    (tmp_path / "main_module_under_test.py").write_text("import json\n\nvalue = json.loads('{broken')\n")
    exc = import_and_catch(tmp_path, "main_module_under_test")
    raised = Raised.model_validate(raised_at_import(exc, tmp_path, "main_module_under_test.py"))
    assert (raised.type, raised.file, raised.line) == ("JSONDecodeError", "main_module_under_test.py", 3)
    assert raised.message.startswith("Expecting property name")


def test_an_error_inside_an_imported_helper_names_the_helper(tmp_path):
    (tmp_path / "helpers_that_raise.py").write_text("x = 1\n\n\nraise RuntimeError('half-finished work')\n")
    (tmp_path / "main_module_under_test.py").write_text("import helpers_that_raise\n")
    exc = import_and_catch(tmp_path, "main_module_under_test")
    assert raised_at_import(exc, tmp_path, "main_module_under_test.py") == {
        "type": "RuntimeError", "message": "half-finished work", "file": "helpers_that_raise.py", "line": 4,
        "missing_module": None}


def test_a_syntax_error_names_its_own_file_and_line(tmp_path):
    (tmp_path / "main_module_under_test.py").write_text("a = 1\ndef f(:\n    pass\n")
    exc = import_and_catch(tmp_path, "main_module_under_test")
    raised = raised_at_import(exc, tmp_path, "main_module_under_test.py")
    assert (raised["type"], raised["file"], raised["line"]) == ("SyntaxError", "main_module_under_test.py", 2)


def test_a_missing_package_is_named(tmp_path):
    (tmp_path / "main_module_under_test.py").write_text("import os\nimport surely_not_installed_pkg_x.sub\n")
    exc = import_and_catch(tmp_path, "main_module_under_test")
    raised = raised_at_import(exc, tmp_path, "main_module_under_test.py")
    assert (raised["missing_module"], raised["line"]) == ("surely_not_installed_pkg_x", 2)
