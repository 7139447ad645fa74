"""The grading environment: the stack notebooks import, and packages a rubric declares."""

from __future__ import annotations

import importlib.util

import pytest

from grader import environment, pipeline, rubric
from grader.errors import GraderError, RubricError
from tests.conftest import FIXTURES

NOT_INSTALLED = "surely-not-installed-pkg-x"


@pytest.mark.parametrize("module", ["numpy", "scipy", "pandas", "sklearn", "matplotlib", "seaborn", "tqdm", "PIL"])
def test_the_stack_course_notebooks_import_is_installed(module):
    assert importlib.util.find_spec(module) is not None, f"{module} is missing: pip install -e '.[test]'"


def tiny_with(tmp_path, environment_yaml: str) -> rubric.LoadedRubric:
    """The tiny rubric with an ``environment`` section, its reference where the original's is."""
    text = (FIXTURES / "tiny" / "rubric.yaml").read_text()
    text = text.replace("reference: reference", f"reference: {FIXTURES / 'tiny' / 'reference'}")
    path = tmp_path / "needs_packages.yaml"
    path.write_text(text + environment_yaml)
    return rubric.load(path)


def test_unmet_names_what_is_missing_or_too_old():
    assert environment.unmet(["numpy", "pyyaml>=5"]) == []
    assert environment.unmet([NOT_INSTALLED]) == [(NOT_INSTALLED, f"{NOT_INSTALLED} is not installed")]
    ((text, why),) = environment.unmet(["numpy>=999"])
    assert text == "numpy>=999" and why.startswith("numpy ") and why.endswith("is installed, the rubric asks for numpy>=999")


def test_a_requirement_for_another_platform_is_not_asked_for():
    assert environment.unmet([f'{NOT_INSTALLED}; sys_platform == "no-such-platform"']) == []


def test_a_declared_package_that_is_missing_stops_grading_before_it_starts(tmp_path):
    loaded = tiny_with(tmp_path, f"environment:\n  packages: [numpy, {NOT_INSTALLED}]\n")
    with pytest.raises(GraderError) as caught:
        pipeline.prepare(loaded, pipeline.Settings())
    error = caught.value
    assert error.what == ("the rubric needs packages the grading environment lacks: "
                          f"{NOT_INSTALLED} is not installed")
    assert error.where == "needs_packages.yaml: environment.packages"
    assert error.hint.endswith(f"-m pip install {NOT_INSTALLED}") and "numpy" not in error.hint


def test_declared_packages_that_are_installed_let_grading_start(tmp_path):
    loaded = tiny_with(tmp_path, "environment:\n  packages: [numpy, 'scikit-learn>=1.3']\n")
    environment.require(loaded)  # no error
    assert loaded.model.environment.packages == ["numpy", "scikit-learn>=1.3"]


@pytest.mark.parametrize(("yaml_text", "said"), [
    ("environment:\n  packages: ['numpy >= = 2']\n", "is not a package requirement as pip takes it"),
    ("environment:\n  packages: ['foo @ https://example.org/foo.whl']\n", "names a URL"),
    ("environment:\n  pakages: [numpy]\n", "field 'environment.pakages': unknown field"),
])
def test_a_malformed_environment_section_is_a_rubric_error(tmp_path, yaml_text, said):
    with pytest.raises(RubricError) as caught:
        tiny_with(tmp_path, yaml_text)
    assert said in str(caught.value)


def test_installed_looks_at_the_top_level_module_only():
    assert environment.installed("numpy.linalg") and environment.installed("json")
    assert not environment.installed("surely_not_installed_pkg_x.sub")
    assert not environment.installed("../etc/passwd") and not environment.installed("")
