"""The grading environment: the packages student code needs, checked before anything is graded.

Student code runs in the grader's own Python environment (the notebook kernel is the grader's
interpreter; the namespace sandbox shows that same installation read-only). So everything a
notebook imports must be installed there. The grader's dependencies bring the scientific stack
course notebooks use (numpy, scipy, pandas, scikit-learn, matplotlib, seaborn, tqdm, Pillow);
a rubric declares anything more in ``environment.packages``::

    environment:
      packages: [torchmetrics, "scikit-image>=0.22"]

Each entry is a requirement as pip takes it (a distribution name, optionally with a version
range). ``require`` stops before grading when one is missing or too old, naming the package, the
rubric and the command that installs it, instead of every submission failing at its import.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import shlex
import sys
from typing import TYPE_CHECKING

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, ConfigDict, Field, field_validator

from grader.errors import GraderError

if TYPE_CHECKING:
    from grader.rubric import LoadedRubric

TOP_LEVEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class EnvironmentSpec(BaseModel):
    """What the rubric's notebooks need installed beyond the grader's own dependencies."""

    model_config = ConfigDict(extra="forbid")
    packages: list[str] = Field(
        [], description="packages the submissions import, as pip requirements (seaborn, scikit-image>=0.22); "
                        "grading stops before it starts when one is not installed")

    @field_validator("packages")
    @classmethod
    def _requirements(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                requirement = Requirement(value)
            except InvalidRequirement as exc:
                raise ValueError(f"{value!r} is not a package requirement as pip takes it "
                                 f"(e.g. seaborn or scikit-image>=0.22): {exc}") from None
            if requirement.url:
                raise ValueError(f"{value!r} names a URL; give the package name and, if needed, a version range")
        return values


def unmet(packages: list[str]) -> list[tuple[str, str]]:
    """The requirements this interpreter does not satisfy, each with why
    (``("seaborn", "seaborn is not installed")``)."""
    problems = []
    for text in packages:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        try:
            version = importlib.metadata.version(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            problems.append((text, f"{requirement.name} is not installed"))
            continue
        try:
            fits = requirement.specifier.contains(Version(version), prereleases=True)
        except InvalidVersion:
            fits = True  # a version packaging cannot read: the name is there, which is what imports need
        if not fits:
            problems.append((text, f"{requirement.name} {version} is installed, the rubric asks for {text}"))
    return problems


def require(rubric: LoadedRubric) -> None:
    """Stop with one clear error when the rubric's declared packages are not all installed."""
    problems = unmet(rubric.model.environment.packages)
    if not problems:
        return
    raise GraderError(
        f"the rubric needs packages the grading environment lacks: {'; '.join(why for _, why in problems)}",
        where=f"{rubric.path.name}: environment.packages",
        hint=f"install them where the grader runs: {shlex.quote(sys.executable)} -m pip install "
             f"{' '.join(shlex.quote(text) for text, _ in problems)}")


def installed(module: str) -> bool:
    """Whether the top-level module of ``module`` (``sklearn`` of ``sklearn.svm``) can be found by
    this interpreter, without importing it. A name that is not a module name is not installed."""
    top = module.split(".")[0]
    if not TOP_LEVEL_NAME.match(top):
        return False
    if top in sys.modules:
        return True
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False
