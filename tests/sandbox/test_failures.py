"""What failed, said once with where and what: the run's status message and its parts."""

from __future__ import annotations

from grader.observations import ProbeRecord
from grader.sandbox import CellRun, Execution, ModuleRun, Raised, failures
from grader.sandbox.statuses import Ending, classify

LIMITS = {"wall_seconds": 60, "cell_seconds": 20, "memory_mb": 1024, "disk_mb": 64, "output_mb": 2}
OBSERVED = [ProbeRecord(check="a", status="observed", data={})]
NOT_INSTALLED = "surely_not_installed_pkg_x"


def failing_cell(index: int, type_: str, message: str, line: int | None = None, missing: str | None = None) -> CellRun:
    return CellRun(index=index, type="code", status="error", error=f"{type_}: {message}",
                   raised=Raised(type=type_, message=message, line=line, missing_module=missing))


def missing_import(index: int, module: str, line: int) -> CellRun:
    return failing_cell(index, "ModuleNotFoundError", f"No module named '{module}'", line, module)


def test_a_clean_run_is_the_only_one_that_ran_to_completion():
    ok = Execution(form="notebook", cells=[CellRun(index=0, type="code", status="ok")])
    assert classify(Ending(exit_code=0), ok, OBSERVED, LIMITS) == ("ok", "ran to completion")


def test_a_failing_cell_is_named_with_its_line_and_error():
    ex = Execution(form="notebook", cells=[CellRun(index=0, type="markdown", status="ok"),
                                           failing_cell(1, "ZeroDivisionError", "division by zero", line=3)])
    status, message = classify(Ending(exit_code=0), ex, OBSERVED, LIMITS)
    assert status == "ok"
    assert message == ("cell 2, line 3: ZeroDivisionError: division by zero; "
                       "the cells after a failing one still ran and were graded")


def test_a_package_imported_in_several_cells_is_one_message_naming_it():
    ex = Execution(form="notebook", cells=[
        missing_import(2, NOT_INSTALLED, 2),
        failing_cell(3, "NameError", f"name '{NOT_INSTALLED}' is not defined", line=1),
        missing_import(5, f"{NOT_INSTALLED}.plots", 1)])
    message = failures.summary(ex)
    assert message.startswith(f"the notebook imports `{NOT_INSTALLED}` (cell 3, line 2; cell 6, line 1), "
                              "which is not installed in the grading environment; ")
    assert message.count(NOT_INSTALLED) == 2  # the package once, and the NameError that followed from it
    assert f"cell 4, line 1: NameError: name '{NOT_INSTALLED}' is not defined" in message


def test_a_missing_submodule_of_an_installed_package_says_so():
    ex = Execution(form="notebook", cells=[missing_import(0, "numpy.surely_not_here", 1)])
    assert failures.summary(ex).startswith("the notebook imports `numpy.surely_not_here` (cell 1, line 1), "
                                           "which the installed `numpy` does not have")


def test_a_missing_module_the_environment_has_keeps_the_error_text():
    """ModuleNotFoundError for an installed name is not the environment's doing: the error says more."""
    ex = Execution(form="notebook", cells=[missing_import(0, "json", 1)])
    assert failures.summary(ex).startswith("cell 1, line 1: ModuleNotFoundError: No module named 'json'")


def test_many_failures_are_listed_by_place_after_the_first_few():
    ex = Execution(form="notebook", cells=[failing_cell(i, "NameError", f"name 'v{i}' is not defined", line=1)
                                           for i in range(6)])
    message = failures.summary(ex)
    assert "cell 3, line 1: NameError: name 'v2' is not defined; and 3 more (cell 4, cell 5, cell 6)" in message


def test_a_module_that_raised_at_import_names_file_line_and_error():
    ex = Execution(form="module", modules=[
        ModuleRun(name="helpers", status="ok", error=None, output=""),
        ModuleRun(name="main", status="error", error="RuntimeError: half-finished work", output="",
                  raised=Raised(type="RuntimeError", message="half-finished work", file="main.py", line=4))])
    status, message = classify(Ending(exit_code=0), ex, OBSERVED, LIMITS)
    assert status == "ok"
    assert message == ("main.py, line 4: RuntimeError: half-finished work; what each module defined before its "
                       "error, and the other modules, were graded")


def test_a_module_importing_a_missing_package_names_it():
    ex = Execution(form="module", modules=[ModuleRun(
        name="main", status="error", error=f"ModuleNotFoundError: No module named '{NOT_INSTALLED}'", output="",
        raised=Raised(type="ModuleNotFoundError", message=f"No module named '{NOT_INSTALLED}'", file="main.py",
                      line=2, missing_module=NOT_INSTALLED))])
    assert failures.summary(ex).startswith(f"the code imports `{NOT_INSTALLED}` (main.py, line 2), "
                                           "which is not installed in the grading environment")


def test_a_timed_out_cell_is_left_to_its_own_status():
    ex = Execution(form="notebook", cells=[CellRun(index=0, type="code", status="timeout", error="CellTimeoutError: x")])
    assert failures.summary(ex) is None


def test_cell_number_is_the_index_plus_one_in_the_json():
    cell = CellRun(index=4, type="code", status="ok")
    assert cell.model_dump()["number"] == 5 and cell.model_dump()["index"] == 4
