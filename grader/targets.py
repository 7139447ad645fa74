"""Find the student object a check is about: by exact name, by aliases, or by signature.

A handout that says "a function that takes D, K and O" does not fix a name, so real student
work names it ``fc``, ``make_fc_net`` or ``FullyConnected``. A target lists the accepted names
and, as a last resort, the parameter names a callable must start with. Resolution is pure
Python (``inspect`` only): the same code finds the target in a student's namespace (inside the
sandbox) and in the reference (on the host), so both sides agree on what "the target" means.
"""

from __future__ import annotations

import functools
import inspect
import types
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

# Names a notebook kernel or an import puts in every namespace; never candidates.
_NOISE = {"In", "Out", "exit", "quit", "get_ipython", "open"}
MAX_CANDIDATES = 20


class TargetSpec(BaseModel):
    """How to find one student object. At least one of ``name``, ``aliases``, ``signature``."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    aliases: list[str] = []
    signature: list[str | list[str]] | None = None
    kind: Literal["callable", "class", "value", "any"] = "any"
    description: str | None = None

    @model_validator(mode="after")
    def _needs_a_way_to_find(self) -> "TargetSpec":
        if not self.name and not self.aliases and not self.signature:
            raise ValueError("give at least one of name, aliases or signature")
        return self

    def label(self) -> str:
        """A short human description, e.g. ``fully_connected (or fc_net, fc; or any f(D, K, O))``."""
        names = [n for n in [self.name, *self.aliases] if n]
        text = names[0] if names else "a callable"
        if len(names) > 1:
            text += f" (or {', '.join(names[1:])})"
        if self.signature:
            params = ", ".join(p if isinstance(p, str) else "|".join(p) for p in self.signature)
            text += f"{' or' if names else ''} any callable taking ({params})"
        return text


@dataclass
class Resolution:
    """Outcome of resolving a target: the object, or why it could not be found."""

    obj: Any = None
    found_as: str | None = None            # the name it was found under, e.g. "task2.ExampleModel"
    how: Literal["name", "alias", "signature"] | None = None
    problem: Literal["missing", "ambiguous"] | None = None
    candidates: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None


Namespace = tuple[str, dict[str, Any]]  # (label, globals), e.g. ("notebook", kernel globals)


def resolve(spec: TargetSpec, namespaces: list[Namespace]) -> Resolution:
    """Resolve ``spec`` in ``namespaces``; each step stops at the first step with matches."""
    steps: list[tuple[str, list[str]]] = []
    if spec.name:
        steps.append(("name", [spec.name]))
    if spec.aliases:
        steps.append(("alias", list(spec.aliases)))
    for how, names in steps:
        for name in names:
            found = _lookup(name, namespaces, spec.kind)
            if len(found) == 1:
                return Resolution(obj=found[0][1], found_as=found[0][0], how=how)  # type: ignore[arg-type]
            if len(found) > 1:
                return Resolution(problem="ambiguous", candidates=[n for n, _ in found])
    if spec.signature:
        found = [(n, o) for n, o in _own_objects(namespaces) if _kind_ok(o, spec.kind)
                 and _signature_matches(o, spec.signature)]
        found = _distinct(found)
        functions = [f for f in found if not inspect.isclass(f[1])]
        if len(found) > 1 and len(functions) == 1:
            found = functions  # a model class and the function that builds it: the function is asked for
        if len(found) == 1:
            return Resolution(obj=found[0][1], found_as=found[0][0], how="signature")
        if len(found) > 1:
            return Resolution(problem="ambiguous", candidates=[describe(n, o) for n, o in found])
    return Resolution(problem="missing", candidates=candidates(namespaces, spec.kind))


def _lookup(name: str, namespaces: list[Namespace], kind: str) -> list[tuple[str, Any]]:
    found = []
    for label, ns in namespaces:
        obj = _get_dotted(ns, name)
        if obj is not _ABSENT and _kind_ok(obj, kind):
            found.append((name if len(namespaces) == 1 else f"{label}.{name}", obj))
    # A qualified name "task2.ExampleModel" addresses one module directly.
    if not found and "." in name:
        module, _, rest = name.partition(".")
        for label, ns in namespaces:
            if label == module:
                obj = _get_dotted(ns, rest)
                if obj is not _ABSENT and _kind_ok(obj, kind):
                    found.append((name, obj))
    return _distinct(found)


_ABSENT = object()


def _get_dotted(ns: dict[str, Any], name: str) -> Any:
    head, *rest = name.split(".")
    obj = ns.get(head, _ABSENT)
    for part in rest:
        if obj is _ABSENT:
            break
        obj = inspect.getattr_static(obj, part, _ABSENT) if not isinstance(obj, types.ModuleType) \
            else vars(obj).get(part, _ABSENT)
    return obj


def _distinct(found: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """The same object imported into two modules is one candidate, not an ambiguity."""
    seen: dict[int, tuple[str, Any]] = {}
    for name, obj in found:
        seen.setdefault(id(obj), (name, obj))
    return list(seen.values())


def _kind_ok(obj: Any, kind: str) -> bool:
    if kind == "class":
        return inspect.isclass(obj)
    if kind == "callable":
        # A builder: a function or a class. A built object (an nn.Module instance is callable
        # too) named like the builder, e.g. `fc = fully_connected(...)`, is not the target.
        return inspect.isroutine(obj) or inspect.isclass(obj) or isinstance(obj, functools.partial)
    if kind == "value":
        return not callable(obj) and not isinstance(obj, types.ModuleType)
    return True


def _own_objects(namespaces: list[Namespace]) -> list[tuple[str, Any]]:
    """Objects the student defined (not imported from a library), with their display names."""
    out = []
    for label, ns in namespaces:
        own_module = ns.get("__name__")
        for name, obj in ns.items():
            if name.startswith("_") or name in _NOISE or isinstance(obj, types.ModuleType):
                continue
            if type(obj).__module__ == "__future__":  # `from __future__ import annotations`
                continue
            if callable(obj) and getattr(obj, "__module__", None) != own_module:
                continue
            out.append((name if len(namespaces) == 1 else f"{label}.{name}", obj))
    return out


def parameter_names(obj: Any) -> list[str] | None:
    """Positional parameter names of a callable (``self`` excluded), or None if not inspectable."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in sig.parameters.values() if p.kind in kinds]


def _signature_matches(obj: Any, wanted: list[str | list[str]]) -> bool:
    """True if the callable's parameters start with ``wanted`` (case-insensitive; a list at a
    position gives accepted alternatives) and any further parameters have defaults."""
    if not callable(obj):
        return False
    try:
        params = list(inspect.signature(obj).parameters.values())
    except (TypeError, ValueError):
        return False
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    positional = [p for p in params if p.kind in kinds]
    if len(positional) < len(wanted):
        return False
    for param, accepted in zip(positional, wanted):
        options = [accepted] if isinstance(accepted, str) else accepted
        if param.name.lower() not in {o.lower() for o in options}:
            return False
    rest = positional[len(wanted):] + [p for p in params if p.kind == inspect.Parameter.KEYWORD_ONLY]
    return all(p.default is not inspect.Parameter.empty for p in rest)


def describe(name: str, obj: Any) -> str:
    """``name(a, b)`` for callables, ``name: type`` for values."""
    if callable(obj):
        params = parameter_names(obj)
        return f"{name}({', '.join(params)})" if params is not None else f"{name}(...)"
    return f"{name}: {type(obj).__name__}"


def candidates(namespaces: list[Namespace], kind: str = "any") -> list[str]:
    """What the student did define, for the failure message of a missing target."""
    found = [describe(n, o) for n, o in _own_objects(namespaces) if _kind_ok(o, kind)]
    return sorted(found)[:MAX_CANDIDATES]
