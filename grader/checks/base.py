"""What every check kind shares: the spec base model, the probe context, the verdict.

A check kind is one file, registered under its ``kind`` name, that defines its stages:

* ``Spec`` — a pydantic model of the rubric entry (``extra="forbid"``);
* ``Observation`` — a pydantic model of what the probe saw (plain data and numpy arrays only);
* ``probe(spec, ctx)`` — the *capture* stage: runs next to the student's code (inside the
  sandbox) and returns an ``Observation``; it only observes or captures, it never compares or scores;
* ``Measurement`` and ``measure(spec, obs, seed, given)`` — (measured kinds) the *measure* stage,
  in a sandbox without student code, from the captured artifacts;
* ``expect(spec, reference)`` — the *expect* stage: what the judge compares against, from the
  probe run on the reference implementation in the trusted process, once per batch and cached
  (``grader.references``), where ``needs_reference(spec)`` says so;
* ``judge(spec, observation, expected[, measured])`` — the *judge* stage, on the host: a ``Verdict``.
"""

from __future__ import annotations

import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Iterator, Literal

from pydantic import BaseModel, ConfigDict, Field

from grader.checks.toolkit.capture import JUDGE_ONLY, judge_only_fields
from grader.errors import GraderError
from grader.targets import Namespace, Resolution, TargetSpec, resolve

MAX_TRACEBACK_CHARS = 4000


class CheckSpec(BaseModel):
    """Fields every check has. Kinds subclass this and add ``kind: Literal[...]`` and their own.

    A field only the judge reads is declared with ``json_schema_extra=JUDGE_ONLY`` and stays on
    the host (``grader.checks.toolkit.capture``): every field here but ``id`` is one."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", description="unique id within the rubric")
    title: str | None = Field(None, description="what the check verifies, shown in reports",
                              json_schema_extra=JUDGE_ONLY)
    points: float = Field(ge=0, description="points for a full pass; 0 makes the check informational",
                          json_schema_extra=JUDGE_ONLY)
    visibility: Literal["visible", "hidden"] = Field(
        "visible", description="visible checks are shown to students in self-check; hidden ones never are",
        json_schema_extra=JUDGE_ONLY)
    requires: list[str] = Field([], description="ids of checks that must pass first, else this one is skipped",
                                json_schema_extra=JUDGE_ONLY)
    partial_credit: bool = Field(False, description="award the passed fraction of sub-checks instead of all-or-nothing",
                                 json_schema_extra=JUDGE_ONLY)

    if not TYPE_CHECKING:  # type checkers keep seeing only the declared fields
        def __getattr__(self, name: str) -> Any:
            """Say so when a probe reads a field its copy of the spec was built without."""
            if name in judge_only_fields(type(self)):
                raise AttributeError(f"{type(self).__name__}.{name} is judge-only: the probe's copy of the spec "
                                     "does not hold it (grader.checks.toolkit.capture)")
            return super().__getattr__(name)

    def as_job(self) -> dict[str, Any]:
        """The spec as a sandbox's job file carries it: its JSON, with the host's planned data for
        the run (an accuracy check's ``run``, a field no dump includes) where it has some."""
        data = self.model_dump(mode="json")
        run = getattr(self, "run", None)
        return data | {"run": run.model_dump(mode="json")} if run is not None else data

    def target_refs(self) -> list[str]:
        """Names of rubric targets this check uses (validated against ``targets:``)."""
        target = getattr(self, "target", None)
        return [target] if isinstance(target, str) else []


class Observation(BaseModel):
    """Base of every kind's observation: strict, closed, plain data."""

    model_config = ConfigDict(extra="forbid", strict=True, arbitrary_types_allowed=True)


@dataclass
class Verdict:
    """A judge's finding.

    Attributes:
        fraction: share of the check that passed, in [0, 1]; 1 means passed.
        message: one line a student understands: what differed and by how much.
        table: optional rows (dicts with the same keys) shown under the message in reports.
        review: why a person should look at this result (e.g. a forbidden call), else None.
    """

    fraction: float
    message: str
    table: list[dict[str, Any]] = field(default_factory=list)
    review: str | None = None

    @classmethod
    def passed(cls, message: str, table: list[dict[str, Any]] | None = None) -> "Verdict":
        return cls(1.0, message, table or [])

    @classmethod
    def failed(cls, message: str, table: list[dict[str, Any]] | None = None) -> "Verdict":
        return cls(0.0, message, table or [])

    @classmethod
    def from_requirements(cls, rows: list[dict[str, Any]], passed: str | None = None) -> "Verdict":
        """A verdict over requirement rows (``requirement``, ``got``, ``ok``): the share met, and
        a message naming each unmet requirement with what was found instead."""
        unmet = [r for r in rows if not r["ok"]]
        if not unmet:
            return cls.passed(passed or f"all {len(rows)} requirements met", rows)
        return cls(1 - len(unmet) / len(rows), "; ".join(f"{r['requirement']}: got {r['got']}" for r in unmet), rows)


class CheckSkipped(GraderError):
    """A judge cannot decide for a reason outside the student's work (no calibration for this
    profile, pretrained weights not on this machine): the check is ``skipped`` with what to do."""


class StudentRaised(Exception):
    """Student code raised (any BaseException) while a probe was running it."""

    def __init__(self, during: str, exc: BaseException):
        self.during, self.exc = during, exc
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.traceback = tb[-MAX_TRACEBACK_CHARS:]
        super().__init__(f"{type(exc).__name__} while {during}")


class Unresolved(Exception):
    """A target could not be found (missing, or several candidates)."""

    def __init__(self, key: str, spec: TargetSpec, resolution: Resolution):
        self.key, self.spec, self.resolution = key, spec, resolution
        super().__init__(f"target {key} {resolution.problem}")


@dataclass
class ProbeContext:
    """What a probe may use: the namespaces, the rubric's targets and the run's execution record.

    ``execution`` is the runner's record of the notebook cells / module imports (plain dicts).
    """

    namespaces: list[Namespace]
    targets: dict[str, TargetSpec]
    execution: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    found: dict[str, Resolution] = field(default_factory=dict)
    mapping: dict[str, str] = field(default_factory=dict)  # an instructor's names for targets (grader.mappings)
    graph_nodes_left: int = -1  # what the run may still capture (ProbeContext.capture); -1: not started

    def capture(self, fn: Any, inputs: list[Any], names: list[str], limit: int | None = None) -> Any:
        """``artifacts.capture`` within the run's budget: every graph a run captures shares
        ``artifacts.MAX_NODES_PER_RUN`` operations, so graphs never outgrow the observations' cap;
        ``limit`` caps this one graph lower still."""
        from grader import artifacts

        if self.graph_nodes_left < 0:
            self.graph_nodes_left = artifacts.MAX_NODES_PER_RUN
        left = self.graph_nodes_left if limit is None else min(limit, self.graph_nodes_left)
        graph = artifacts.capture(fn, inputs, names, left)
        self.graph_nodes_left -= len(graph.nodes)
        return graph

    def resolve(self, key: str) -> Any:
        """The object for rubric target ``key``; raises ``Unresolved`` with the candidates."""
        spec = self.targets[key]
        resolution = resolve(spec, self.namespaces, self.mapping.get(key))
        self.found[key] = resolution
        if not resolution.ok:
            raise Unresolved(key, spec, resolution)
        return resolution.obj

    def found_name(self, key: str) -> str:
        """The name target ``key`` was found under in the student's code (after ``resolve``), for messages."""
        return self.found[key].found_as or key

    def global_names(self, key: str) -> list[str]:
        """The global names a rubric's data key (a loader's name the harness replaces) stands for: the
        key itself, and where it names one of the rubric's targets (``train_loader``, found as
        ``trainloader``), the name the student used for it."""
        names = [key]
        if key in self.targets:
            try:
                self.resolve(key)
            except Exception:  # noqa: BLE001 - an unresolved target just leaves the key itself
                return names
            found = self.found[key].found_as
            if found:
                names.append(found.rsplit(".", 1)[-1])
        return list(dict.fromkeys(names))

    @contextmanager
    def student_code(self, during: str) -> Iterator[None]:
        """Run student code: whatever it raises (``SystemExit`` included) becomes ``StudentRaised``.

        Exceptions raised outside such a block are the probe's own bugs (a grader error)."""
        try:
            yield
        except StudentRaised:
            raise
        except BaseException as exc:  # noqa: BLE001 - student code may raise anything
            raise StudentRaised(during, exc) from None

    def seed_everything(self) -> None:
        """Same seeds before every check, so a probe sees the same numbers on every run.

        The generators are seeded through the objects themselves, not through ``torch.manual_seed``
        and friends: student code may have replaced those module functions (with a no-op, say)."""
        import random

        import numpy as np
        import torch

        random._inst.seed(self.seed)  # type: ignore[attr-defined]
        np.random.mtrand._rand.seed(self.seed)
        torch._C.default_generator.manual_seed(self.seed)
        if torch.cuda.is_initialized():
            for index in range(torch.cuda.device_count()):
                torch.cuda.default_generators[index].manual_seed(self.seed)


@dataclass(frozen=True)
class HarnessSeed:
    """A host truth (``profiles.plan``) for a check whose probe makes its own data from the rubric's
    seed (``CheckKind.made_from_seed``): the judge gets the seed as ``expected`` and makes that data
    again itself, rather than take the run's account of what it was given."""

    seed: int

    @staticmethod
    def of(spec: CheckSpec, expected: Any) -> int:
        """The seed in ``expected``, which the plan gives every ``made_from_seed`` check; a grader
        error (never the student's) where the plan's truths did not reach the judge."""
        if not isinstance(expected, HarnessSeed):
            raise GraderError(f"no host seed for {spec.kind} check {spec.id!r}", where="grader.pipeline",
                              hint="the plan's host truths (grader.profiles.plan(...).expected) must reach judge_all")
        return expected.seed


@dataclass(frozen=True)
class Measured:
    """What the measure stage found for one check, as the host hands it to the judge.

    ``seed`` is the host's own: the measure stage drew fresh inputs from it, and the judge draws
    the same ones for torch's side (the student's process never saw it). ``data`` is the kind's
    ``Measurement``, validated; ``None`` with ``problem`` saying why nothing was measured (the
    run captured no artifact, the artifact broke the format's rules, the measure run failed)."""

    seed: int
    data: Any = None
    problem: str = ""


class CheckKind:
    """Base class of check kinds; subclasses set ``Spec``, ``Observation`` and the two methods.

    A *measured* kind also sets ``Measurement`` and defines ``measure(spec, obs, seed)``: its probe
    captures artifacts (a graph of torch operators, ``grader.artifacts``) in the student's
    process, ``measure`` computes from them in a sandbox that never runs student code, and its
    ``judge`` takes a fourth argument, the ``Measured`` (``docs/security.md``: measured and
    observed checks)."""

    name: ClassVar[str]
    Spec: ClassVar[type[CheckSpec]]
    Observation: ClassVar[type[Observation]]
    Measurement: ClassVar[type[Observation] | None] = None
    # Whether a measured check is graded on its measurement (result basis "measured"), or only
    # held to account by it: the verdict still comes from what the run observed (architecture).
    graded_on_measurement: ClassVar[bool] = True

    @classmethod
    def measures(cls, spec: Any) -> bool:
        """Whether this check goes to the measure stage (a kind may measure some modes only)."""
        return cls.Measurement is not None

    @staticmethod
    def measure(spec: Any, obs: Any, seed: int, given: dict[str, Any]) -> Observation:  # pragma: no cover - abstract
        """(measured kinds) Runs in the measure sandbox: the ``Measurement`` of ``obs``'s artifacts
        on inputs drawn from ``seed`` and on what the host gave (``host_inputs``). Raises
        ``grader.artifacts.ArtifactError`` for a bad artifact."""
        raise NotImplementedError

    @staticmethod
    def host_inputs(spec: Any, truth: Any) -> dict[str, Any]:
        """(measured kinds) What the host hands the measure stage beside the artifacts, from what
        it holds for judging the check (``truth``, the plan's expectation): an accuracy check's
        scored images. Never anything the student's process saw or wrote."""
        return {}

    @staticmethod
    def reuse_view(spec: Any, obs: Any) -> Any:
        """(measured kinds) Everything of ``obs`` its measurement depends on, as plain data and
        arrays, where measuring costs enough to keep the result for the same inputs
        (``grader.measure_cache``: a network the harness trains); None, the default, where
        measuring again is cheap. Leave out what changes from run to run without changing the
        measurement (how long the probe took), or nothing will ever be the same twice."""
        return None

    @staticmethod
    def worth_keeping(measurement: Any) -> bool:
        """(measured kinds with a ``reuse_view``) Whether ``measurement`` may be reused: not one
        that failed in a way the machine may have caused (a training that ran out of memory)."""
        return True

    @staticmethod
    def made_from_seed(spec: Any) -> bool:
        """Whether the probe makes this check's data from the rubric's seed, so that its ``judge``
        gets a ``HarnessSeed`` as ``expected`` to make the same data on the host."""
        return False

    @staticmethod
    def host_truth(spec: Any, data: Any) -> Any:
        """What the host reads for itself to judge ``spec``, from the course's data set under
        ``data`` (a ``grader.data.DataRoot``): ``profiles.plan`` gives it to ``judge`` as
        ``expected``. None, the default, where the judge needs nothing of the data."""
        return None

    @staticmethod
    def needs_reference(spec: Any) -> bool:
        """Whether ``judge`` needs an expectation from the reference as ``expected``."""
        return False

    @staticmethod
    def expect(spec: Any, reference: Observation) -> Observation:
        """The expectation ``judge`` gets as ``expected``, from ``reference``, what the probe
        observed on the reference implementation (trusted, on the host). It is computed once per
        batch and cached, and a student kit carries it, so it is of the kind's ``Observation``
        type; by default the reference's observation itself."""
        return reference

    @staticmethod
    def probe(spec: Any, ctx: ProbeContext) -> Observation:  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def judge(spec: Any, obs: Any, expected: Any | None) -> Verdict:  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def recheck(spec: Any, obs: Any, verdict: Verdict, found_as: str | None,
                submitted: list[tuple[str, str]], expected: Any | None = None,
                target_names: tuple[str, ...] = ()) -> Verdict:
        """A second look at ``verdict`` with the host's own copy of the submitted code
        (``(label, text)`` pairs read before the student's process ran, see
        ``submission.code_texts``) and the host's ``expected`` for the check. ``found_as`` is
        what the record says was graded, which the student's process could have forged;
        ``target_names`` are the rubric target's own name and aliases, the host's knowledge.
        Kinds that scan source override it; the default keeps the verdict."""
        return verdict


def call_description(name: str, args: dict[str, Any]) -> str:
    """``fc(D=784, K=100, O=10)`` for messages."""
    return f"{name}({', '.join(f'{k}={v!r}' for k, v in args.items())})"
