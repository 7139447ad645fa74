"""``defined``: a class or function exists, with the required parameters and base class."""

from __future__ import annotations

import inspect
from typing import Literal

from pydantic import Field

from grader.checks import register
from grader.checks.base import CheckKind, CheckSpec, Observation, ProbeContext, Verdict
from grader.checks.toolkit.capture import JUDGE_ONLY
from grader.targets import parameter_names


class DefinedSpec(CheckSpec):
    kind: Literal["defined"]
    target: str = Field(description="key of the rubric's `targets:` entry")
    parameters: list[str] | None = Field(
        None, description="parameter names the callable must accept, in order (case-insensitive)",
        json_schema_extra=JUDGE_ONLY)
    subclass_of: str | None = Field(None, description="qualified base class, e.g. torch.nn.Module",
                                    json_schema_extra=JUDGE_ONLY)


class DefinedObservation(Observation):
    found_as: str
    how: str
    is_class: bool
    is_callable: bool
    parameters: list[str] | None
    bases: list[str]


def same_class(public: str, defined_at: str) -> bool:
    """``torch.nn.Module`` names the class defined at ``torch.nn.modules.module.Module``: same
    class name, and the public module path is a prefix of where it is defined."""
    pub_module, _, pub_name = public.rpartition(".")
    def_module, _, def_name = defined_at.rpartition(".")
    return pub_name == def_name and (def_module == pub_module or def_module.startswith(pub_module + "."))


@register("defined")
class Defined(CheckKind):
    Spec = DefinedSpec
    Observation = DefinedObservation

    @staticmethod
    def probe(spec: DefinedSpec, ctx: ProbeContext) -> DefinedObservation:
        obj = ctx.resolve(spec.target)
        found = ctx.found[spec.target]
        bases = [f"{c.__module__}.{c.__qualname__}" for c in inspect.getmro(obj)] if inspect.isclass(obj) else []
        return DefinedObservation(found_as=found.found_as or spec.target, how=found.how or "name",
                                  is_class=inspect.isclass(obj), is_callable=callable(obj),
                                  parameters=parameter_names(obj) if callable(obj) else None, bases=bases)

    @staticmethod
    def judge(spec: DefinedSpec, obs: DefinedObservation, expected: None) -> Verdict:
        where = f"{obs.found_as}" + (" (found by its signature)" if obs.how == "signature" else "")
        if spec.parameters is not None:
            got = obs.parameters or []
            if [p.lower() for p in got[: len(spec.parameters)]] != [p.lower() for p in spec.parameters]:
                return Verdict.failed(f"{where} takes ({', '.join(got)}); expected ({', '.join(spec.parameters)})")
        if spec.subclass_of and not any(same_class(spec.subclass_of, base) for base in obs.bases):
            return Verdict.failed(f"{where} is not a subclass of {spec.subclass_of}")
        return Verdict.passed(f"{where} is defined")
