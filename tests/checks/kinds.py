"""What the kinds' tests share: a spec of a kind, and its probe and judge called as the pipeline calls
them (the probe on a tiny in-memory namespace, after seeding)."""

from __future__ import annotations

import sys
from typing import Any

from grader import checks
from grader.checks.base import ProbeContext, Verdict
from grader.targets import TargetSpec


def spec(kind: str, **fields: Any):
    """A validated spec of ``kind`` with an id and points unless given."""
    return checks.get(kind).Spec.model_validate({"id": f"{kind}-check", "kind": kind, "points": 2, **fields})


def judge(kind: str, the_spec: Any, observation: Any, expected: Any = None) -> Verdict:
    return checks.get(kind).judge(the_spec, observation, expected)


def context(**objects: Any) -> ProbeContext:
    """A probe context over one notebook-like namespace; every object is a target by its own name.
    The namespace takes the calling test module's name, so what that module defines counts as
    defined in the namespace, not imported into it."""
    targets = {name: TargetSpec(name=name) for name in objects}
    caller = sys._getframe(1).f_globals["__name__"]
    return ProbeContext(namespaces=[("notebook", {"__name__": caller, **objects})], targets=targets)


def probe(kind: str, the_spec: Any, ctx: ProbeContext) -> Any:
    ctx.seed_everything()
    return checks.get(kind).probe(the_spec, ctx)
