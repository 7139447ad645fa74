"""Rubrics: YAML validated by pydantic, with one precise message per problem.

A rubric names the assignment, its reference, data set, submission forms, limits, the targets
(student objects) and the checks. ``checks`` is a discriminated union over the registered check
kinds, so every kind's own fields are validated and appear in ``grader schema``.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from grader import checks
from grader.checks.base import CheckSpec
from grader.environment import EnvironmentSpec
from grader.errors import GraderError, RubricError
from grader.profiles import Profile
from grader.targets import TargetSpec

CheckUnion = Annotated[Union[tuple(kind.Spec for kind in checks.REGISTRY.values())],  # type: ignore[misc]
                       Field(discriminator="kind")]


class FeedbackSpec(BaseModel):
    """What the student pages (``OUT/feedback/``) show."""

    model_config = ConfigDict(extra="forbid")
    release_hidden_after: datetime | None = Field(
        None, description="from this moment (ISO 8601 with a time zone, e.g. 2026-12-18T23:59:00+01:00: the "
                          "deadline) the student pages written by `grade` or `merge` show the hidden checks too; "
                          "before it, and without it, they show only the visible ones")

    @field_validator("release_hidden_after")
    @classmethod
    def _with_a_time_zone(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give the time zone too (e.g. 2026-12-18T23:59:00+01:00, or Z for UTC): a deadline "
                             "without one means a different moment on every machine")
        return value

    def hidden_released(self, now: datetime | None = None) -> bool:
        return self.release_hidden_after is not None and (now or datetime.now(timezone.utc)) >= self.release_hidden_after


class Limits(BaseModel):
    """Resource limits for one submission's run."""

    model_config = ConfigDict(extra="forbid")
    wall_seconds: float = Field(900, gt=0, description="the whole run, notebook and probes together")
    cell_seconds: float = Field(300, gt=0, description="one notebook cell")
    output_chars: int = Field(20_000, gt=0, description="student output kept for the report (the rest is cut)")
    cpu_seconds: float | None = Field(
        None, gt=0, description="CPU time of any one process (default: the wall limit times the threads allowed)")
    memory_mb: int = Field(8192, gt=0, description="data memory of any one process (heap and anonymous maps)")
    disk_mb: int = Field(1024, gt=0, description="everything the run may write (its tmpfs, and any one file)")
    output_mb: int = Field(16, gt=0, description="what one cell may print; past it, the cell is stopped")
    processes: int = Field(512, gt=0, description="processes and threads of the sandbox's user (namespace level)")
    open_files: int = Field(1024, gt=0, description="open file descriptors of any one process")


class ProvidedAlias(BaseModel):
    """Names and paths a provided module also answers to (``sandbox.provided_aliases``)."""

    model_config = ConfigDict(extra="forbid")
    module: str = Field(pattern=r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$",
                        description="a module of the provided files, dotted (utils.mnist_reader)")
    imports: list[str] = Field([], description="other module names that import it: a dotted name, or `*.` and a "
                                               "dotted name for that name under any package (a student's clone of "
                                               "the course's repository)")
    data_paths: list[str] = Field([], description="path suffixes (data/fashion): a path given to the module's "
                                                  "functions that does not exist and ends in one of these reads the "
                                                  "data the grader serves at data.dirname")

    @field_validator("imports")
    @classmethod
    def _module_names(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not re.fullmatch(r"(\*\.)?[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", v)]
        if bad:
            raise ValueError(f"not a module name (or `*.` and one): {', '.join(map(repr, bad))}")
        return value


class SubmissionSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    forms: list[Literal["notebook", "module"]] = Field(["notebook", "module"], description="accepted forms")
    modules: list[str] = Field([], description="for module folders: modules to import, in order (default: every .py)")
    provided: list[str] = Field(
        [], description="files or folders the course provides, relative to the reference: copied next to the "
                        "student's code before it runs, replacing any copy the student handed in")
    provided_aliases: list[ProvidedAlias] = Field(
        [], description="module names and data paths a provided module also answers to, as students reach it "
                        "(the result's notes say when it does)")

    @model_validator(mode="after")
    def _aliases_of_provided_modules(self) -> "SubmissionSpec":
        for alias in self.provided_aliases:
            path = alias.module.replace(".", "/")
            if not any(path == p.removesuffix(".py") or path.startswith(p.rstrip("/") + "/") for p in self.provided):
                raise ValueError(f"provided_aliases: {alias.module} is not among the provided files "
                                 f"({', '.join(self.provided) or 'none'})")
        return self


class DataSpec(BaseModel):
    """The data set the student code loads and where, relative to its working directory, it looks."""

    model_config = ConfigDict(extra="forbid")
    # the names of grader.data.catalog (tests/data checks the two agree)
    dataset: Literal["none", "mnist", "fashion-mnist", "cifar10"] = Field(
        "none", description="data set the student code loads")
    dirname: str = Field("data", min_length=1,
                         description="folder, relative to the run's working directory, where it is found "
                                     "(e.g. data, data/cifar10, data/fashion)")
    layout: Literal["torchvision", "files"] = Field(
        "torchvision", description="torchvision: dirname is torchvision's root (holding MNIST/raw, FashionMNIST/raw "
                                   "or cifar-10-batches-py); files: dirname holds the files themselves (the .gz "
                                   "IDX files a course's own reader opens, or the CIFAR-10 batches)")

    @field_validator("dirname")
    @classmethod
    def _inside_the_run(cls, value: str) -> str:
        # the data is linked there: a path leaving the run's folder would place it elsewhere
        if value.startswith("/") or ".." in value.split("/"):
            raise ValueError("must be a relative path inside the run's folder (no leading / and no ..)")
        return value


class Rubric(BaseModel):
    """One assignment's rubric."""

    model_config = ConfigDict(extra="forbid")
    assignment: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", description="assignment id, e.g. fc-vs-cnn")
    title: str
    reference: str = Field(description="folder of the reference implementation, relative to the rubric file")
    data: DataSpec = DataSpec()
    submission: SubmissionSpec = SubmissionSpec()
    environment: EnvironmentSpec = EnvironmentSpec()  # packages beyond the grader's own (grader.environment)
    limits: Limits = Limits()
    feedback: FeedbackSpec = FeedbackSpec()
    seed: int = Field(0, description="seed set before every check")
    profiles: dict[Literal["quick", "full"], Profile] = Field(
        {}, description="training budgets of accuracy checks per profile (see grader.profiles for the defaults)")
    targets: dict[str, TargetSpec] = Field(description="student objects the checks are about, by key")
    checks: list[CheckUnion] = Field(min_length=1)  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _param_counts_have_an_input(self) -> "Rubric":
        """A parameter count is measured through the model's forward (``grader.checks.toolkit.model_capture``),
        so it needs an input shape: its own ``input``, the target's contract input, or the input of a
        shape check on the same target built with the same arguments, which it then takes."""
        shapes = [c for c in self.checks if c.kind == "shape"]
        for check in self.checks:
            if check.kind != "param_count" or check.input is not None:
                continue
            target = self.targets.get(check.target)
            if target is not None and target.contract is not None and target.contract.input is not None:
                continue
            twin = next((s for s in shapes if s.target == check.target and s.args == check.args), None)
            if twin is None:
                raise ValueError(f"check {check.id!r} (param_count): the parameters are counted through the model's "
                                 f"forward, which needs an input shape; give the check an `input` (such as [B, 4]), "
                                 f"or the target {check.target!r} a contract input")
            check.input = list(twin.input)
        return self

    @model_validator(mode="after")
    def _served_paths_need_data(self) -> "Rubric":
        if self.data.dataset == "none" and any(a.data_paths for a in self.submission.provided_aliases):
            raise ValueError("submission.provided_aliases: data_paths are served from data.dirname, and this rubric "
                             "names no data set (data.dataset: none)")
        return self

    @property
    def max_points(self) -> float:
        return sum(c.points for c in self.checks)


@dataclass
class LoadedRubric:
    """A validated rubric and where it came from."""

    path: Path
    model: Rubric
    text_hash: str
    # A student kit's folder (grader.kit): its expectations and calibrations come from the kit,
    # and no reference is ever looked for. None for an instructor's rubric.
    kit_dir: Path | None = None

    @property
    def reference_dir(self) -> Path:
        return (self.path.parent / self.model.reference).resolve()

    @cached_property
    def checks_by_id(self) -> dict[str, CheckSpec]:
        return {c.id: c for c in self.model.checks}


def json_schema() -> dict[str, Any]:
    return TypeAdapter(Rubric).json_schema()


def find(assignment: str) -> Path:
    """The rubric file of a bundled (or ``GRADER_RUBRICS``) assignment."""
    from grader.paths import rubric_dirs

    for folder in rubric_dirs():
        candidate = folder / f"{assignment}.yaml"
        if candidate.is_file():
            return candidate
    known = sorted({p.stem for d in rubric_dirs() if d.is_dir() for p in d.glob("*.yaml")})
    raise GraderError(f"no rubric for assignment {assignment!r}", where="--assignment",
                      hint=f"known assignments: {', '.join(known) or 'none'}; or pass a rubric file path")


def load(path: str | Path) -> LoadedRubric:
    """Load and validate a rubric; raise ``RubricError`` listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GraderError("rubric file not found", where=str(path), hint="check the path, or use `grader list`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GraderError(f"cannot read the rubric: {exc}", where=str(path)) from None
    try:
        raw = yaml.safe_load(text)
        tree = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise RubricError(where, [f"not valid YAML: {getattr(exc, 'problem', exc)}"]) from None
    if not isinstance(raw, dict):
        raise RubricError(str(path), ["the rubric must be a mapping with `assignment`, `targets` and `checks`"])
    problems: list[str] = []
    model = None
    try:
        model = Rubric.model_validate(raw)
    except ValidationError as exc:
        problems = [_describe(err, raw, tree) for err in exc.errors()]
    problems += _cross_check(raw, tree, model)
    if problems or model is None:
        raise RubricError(str(path), problems)
    return LoadedRubric(path=path.resolve(), model=model, text_hash=hashlib.sha256(text.encode()).hexdigest())


# ---------------------------------------------------------------- error messages


def _describe(err: dict[str, Any], raw: dict[str, Any], tree: yaml.Node | None) -> str:
    loc = list(err["loc"])
    # pydantic puts the union tag after the list index: checks.3.shape.input -> checks.3.input
    if len(loc) >= 3 and loc[0] == "checks" and isinstance(loc[1], int) and loc[2] in checks.REGISTRY:
        del loc[2]
    kind = err["type"]
    where = _where(loc + ["kind"] if kind == "union_tag_invalid" else loc, raw, tree)
    field = ".".join(str(p) for p in (loc[2:] if loc[:1] == ["checks"] and len(loc) > 1 else loc))
    if kind == "union_tag_invalid":
        got = err["input"].get("kind") if isinstance(err["input"], dict) else None
        return f"{where}, field 'kind': unknown check kind {got!r}{_suggest(str(got), checks.REGISTRY)}; " \
               f"expected one of: {', '.join(checks.REGISTRY)}"
    if kind == "union_tag_not_found":
        return f"{where}: the check has no 'kind'; expected one of: {', '.join(checks.REGISTRY)}"
    if not field:  # the entry itself is wrong (not a mapping, or a rule across its fields)
        return f"{where}: {err['msg'].removeprefix('Value error, ')}"
    if kind == "missing":
        return f"{where}, field '{field}': required field is missing"
    if kind == "extra_forbidden":
        name = str(loc[-1])
        siblings = _allowed_fields(loc, raw)
        return f"{where}, field '{field}': unknown field{_suggest(name, siblings)}"
    return f"{where}, field '{field}': {err['msg'].removeprefix('Value error, ')} (got {_short(err.get('input'))})"


def _where(loc: list[Any], raw: dict[str, Any], tree: yaml.Node | None) -> str:
    line = _line_of(tree, loc)
    at = f"line {line}" if line else "rubric"
    if len(loc) >= 2 and loc[0] == "checks" and isinstance(loc[1], int):
        entry = (raw.get("checks") or [None] * (loc[1] + 1))[loc[1]] if isinstance(raw.get("checks"), list) else None
        cid = entry.get("id") if isinstance(entry, dict) else None
        return f"{at}: check {cid!r} (checks[{loc[1]}])" if cid else f"{at}: checks[{loc[1]}]"
    return at


def _line_of(node: yaml.Node | None, loc: list[Any]) -> int | None:
    """1-based line of the deepest YAML node along ``loc``."""
    line = None
    for part in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            node = None
    if node is not None:
        line = node.start_mark.line + 1
    return line


def _allowed_fields(loc: list[Any], raw: dict[str, Any]) -> list[str]:
    """Field names accepted where ``loc`` points, found by walking the models along the path."""
    model: Any = Rubric
    node: Any = raw
    for part in loc[:-1]:
        node = node[part] if isinstance(node, (dict, list)) else None
        if model is Rubric and part == "checks":
            model = "check-list"
        elif model == "check-list":
            kind = checks.REGISTRY.get(node.get("kind")) if isinstance(node, dict) else None
            model = kind.Spec if kind else None
        elif model is Rubric and part == "targets":
            model = "target-map"
        elif model == "target-map":
            model = TargetSpec
        elif isinstance(model, type) and issubclass(model, BaseModel) and part in model.model_fields:
            model = _model_in(model.model_fields[part].annotation)
        else:
            model = None
        if model is None:
            return []
    return list(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []


def _model_in(annotation: Any) -> Any:
    """The pydantic model inside ``X``, ``X | None`` or ``Optional[X]``, if any."""
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _suggest(name: str, options: Any) -> str:
    close = difflib.get_close_matches(name, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _cross_check(raw: dict[str, Any], tree: yaml.Node | None, model: Rubric | None = None) -> list[str]:
    """Problems a field-by-field validation cannot see: duplicate ids, dangling references.

    Works on the raw YAML, so these are reported together with any field errors. Target
    references come from each validated check's ``target_refs()`` (lists of targets, an
    accuracy check's ``train_fn``...), or from the raw ``target`` field when validation failed."""
    entries = raw.get("checks") if isinstance(raw.get("checks"), list) else []
    targets = raw.get("targets") if isinstance(raw.get("targets"), dict) else {}
    problems: list[str] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            continue
        cid = entry["id"]

        def where(field: str) -> str:
            line = _line_of(tree, ["checks", index, field]) or "?"
            return f"line {line}: check {cid!r} (checks[{index}]), field '{field}'"

        if cid in seen:
            problems.append(f"{where('id')}: duplicate check id; first used by checks[{seen[cid]}]")
        for ref in _target_refs(entry, index, model):
            if ref not in targets:
                problems.append(f"{where(_field_naming(entry, ref))}: no target {ref!r} in `targets:`"
                                f"{_suggest(ref, targets)}; defined: {', '.join(targets) or 'none'}")
        requires = entry.get("requires")
        for req in requires if isinstance(requires, list) else []:
            if req not in seen:
                problems.append(f"{where('requires')}: {req!r} is not the id of an earlier check")
        seen.setdefault(cid, index)
    profiles = raw.get("profiles") if isinstance(raw.get("profiles"), dict) else {}
    for name, budget in profiles.items():
        named = budget.get("check_epochs") if isinstance(budget, dict) else None
        for cid in named if isinstance(named, dict) else []:
            if cid not in seen:
                line = _line_of(tree, ["profiles", name, "check_epochs"]) or "?"
                problems.append(f"line {line}: profiles.{name}.check_epochs: {cid!r} is not the id of a check"
                                f"{_suggest(cid, seen)}")
    return problems


def _target_refs(entry: dict[str, Any], index: int, model: Rubric | None) -> list[str]:
    if model is not None and index < len(model.checks):
        return model.checks[index].target_refs()
    ref = entry.get("target")
    return [ref] if isinstance(ref, str) else []


def _field_naming(entry: dict[str, Any], ref: str) -> str:
    """The field of a raw check entry that mentions target ``ref`` (for the error's location)."""
    for name, value in entry.items():
        if value == ref or (isinstance(value, list) and ref in value):
            return str(name)
    return "target"
