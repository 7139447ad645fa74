"""Find the student object a check is about, as a careful human grader would.

A handout that says "a function that takes D, K and O" does not fix a name, so real student
work names it ``fc``, ``make_fc_net`` or ``FullyConnected``, with parameters called ``d_in, hidden,
d_out``. The steps, each tried only when the ones before found nothing:

1. **qualified names** (``task2.ExampleModel``) among the name and aliases: they address one
   module, so they win over a bare name that several modules define;
2. **the name, then each alias**: found in one module, or in several where one object is shared
   (imported from the module that defines it) or exactly one module defines it itself;
3. **signature**: a callable the student defined whose first parameters have the handout's names;
4. **arity**: a callable the student defined that takes exactly as many positional arguments as
   the signature has (its own parameter names);
5. **behaviour**: the ``contract`` (the handout's constructor arguments, input shape and output
   shape): the one candidate that builds from those arguments and maps that input to that output.
   Only what the handout fixes goes in a contract, never a hidden check's expected value.

What none of them decides is ``missing`` or ``ambiguous``, with the candidates; the judge then
asks a person (``needs-review``). An instructor's mapping (``instructor``: the student's name for
the target) bypasses the steps. Resolution runs on both sides: the same code finds the target in
a student's namespace (inside the sandbox) and in the reference (on the host).
"""

from __future__ import annotations

import fnmatch
import functools
import inspect
import types
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Names a notebook kernel or an import puts in every namespace; never candidates.
_NOISE = {"In", "Out", "exit", "quit", "get_ipython", "open"}
MAX_CANDIDATES = 20


class Contract(BaseModel):
    """The handout's structural contract of a model builder: build it with ``args``, feed a batch
    of shape ``input``, get ``output``. Used only to choose among the student's candidates."""

    model_config = ConfigDict(extra="forbid")

    args: list[Any] = Field([], description="constructor arguments, by position (the handout's)")
    input: list[int] | None = Field(None, description="input shape, batch included, e.g. [2, 1, 28, 28]")
    output: list[int] | None = Field(None, description="output shape the input must give, e.g. [2, 10]")
    contains: list[str] = Field([], description="kinds of layer the built model must contain, as class-name patterns "
                                                "with * and | (module path included: torch.nn.modules.conv.Conv2d, "
                                                "*.ResBlock|*.ResidualBlock)")
    excludes: list[str] = Field([], description="kinds of layer it must not contain, same patterns")

    def label(self) -> str:
        text = f"builds from ({', '.join(repr(a) for a in self.args)})"
        if self.input and self.output:
            text += f" and maps {self.input} to {self.output}"
        if self.contains:
            text += f", containing {' and '.join(self.contains)}"
        if self.excludes:
            text += f", without {' or '.join(self.excludes)}"
        return text

    def layers_fit(self, model: Any) -> bool:
        """Whether ``model``'s layers (``module.qualname`` of each submodule's class) meet
        ``contains`` and ``excludes``."""
        names = {f"{type(m).__module__}.{type(m).__qualname__}" for m in model.modules()}

        def found(pattern: str) -> bool:
            return any(fnmatch.fnmatchcase(n, p.strip()) for n in names for p in pattern.split("|"))

        return all(found(p) for p in self.contains) and not any(found(p) for p in self.excludes)


class TargetSpec(BaseModel):
    """How to find one student object. At least one of ``name``, ``aliases``, ``signature``."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    aliases: list[str] = []
    signature: list[str | list[str]] | None = None
    kind: Literal["callable", "class", "value", "any"] = "any"
    instances: bool = Field(False, description="a built torch.nn.Module counts too (the handout lets students write "
                                               "`model = nn.Sequential(...)`); checks that build it with no arguments "
                                               "get a copy of it")
    contract: Contract | None = Field(None, description="what the handout fixes about the object's behaviour, to find "
                                                        "it when no name or signature does")
    description: str | None = None

    @model_validator(mode="after")
    def _needs_a_way_to_find(self) -> "TargetSpec":
        if not self.name and not self.aliases and not self.signature and not self.contract:
            raise ValueError("give at least one of name, aliases, signature or contract")
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
        if self.contract:
            text += f"{' or' if names or self.signature else ''} the one thing that {self.contract.label()}"
        return text


How = Literal["name", "alias", "signature", "arity", "behaviour", "instructor"]
# In words, for the messages of checks whose target was found another way than by a listed name.
HOW_SAID = {"signature": "by its parameter names", "arity": "by its number of arguments",
            "behaviour": "by what it does (the only candidate that fits the handout's interface)",
            "instructor": "by the instructor's mapping"}


@dataclass
class Resolution:
    """Outcome of resolving a target: the object, or why it could not be found."""

    obj: Any = None
    found_as: str | None = None            # the name it was found under, e.g. "task2.ExampleModel"
    how: How | None = None
    problem: Literal["missing", "ambiguous"] | None = None
    candidates: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None


Namespace = tuple[str, dict[str, Any]]  # (label, globals), e.g. ("notebook", kernel globals)


def resolve(spec: TargetSpec, namespaces: list[Namespace], mapped: str | None = None) -> Resolution:
    """Resolve ``spec`` in ``namespaces`` (the steps in the module docstring); ``mapped`` is an
    instructor's name for the target in this submission, which replaces every step."""
    if mapped is not None:
        found = _lookup(mapped, namespaces, "any")
        if len(found) == 1:
            return Resolution(obj=found[0][1], found_as=found[0][0], how="instructor")
        return Resolution(problem="missing" if not found else "ambiguous",
                          candidates=[f"the mapping names {mapped!r}, which {'is not defined' if not found else 'is in several modules'}"])
    named = [(n, "name" if n == spec.name else "alias") for n in [spec.name, *spec.aliases] if n]
    qualified_first = [x for x in named if "." in x[0]] + [x for x in named if "." not in x[0]]
    for name, how in qualified_first:
        found = _lookup(name, namespaces, spec.kind, spec.instances)
        if spec.signature:  # a name is not enough: it must take the handout's arguments (`train` is common)
            found = [(n, o) for n, o in found if _arity_matches(o, spec.signature) or not parameter_names(o)]
        if len(found) == 1:
            return Resolution(obj=found[0][1], found_as=found[0][0], how=how)  # type: ignore[arg-type]
        if len(found) > 1:
            return Resolution(problem="ambiguous", candidates=[n for n, _ in found])
    if spec.signature:
        own = [(n, o) for n, o in _own_objects(namespaces) if _kind_ok(o, spec.kind)]
        for how, fits in (("signature", _signature_matches), ("arity", _arity_matches)):
            found = _prefer_builders(_distinct([(n, o) for n, o in own if fits(o, spec.signature)]))
            if len(found) == 1:
                return Resolution(obj=found[0][1], found_as=found[0][0], how=how)  # type: ignore[arg-type]
            if len(found) > 1:
                return _by_behaviour(spec, found) or Resolution(
                    problem="ambiguous", candidates=[describe(n, o) for n, o in found])
    if spec.contract:
        own = [(n, o) for n, o in _own_objects(namespaces, spec.instances)
               if _kind_ok(o, spec.kind, spec.instances) and can_build(o, spec.contract.args)]
        decided = _by_behaviour(spec, _distinct(own))
        if decided:
            return decided
    return Resolution(problem="missing", candidates=candidates(namespaces, spec.kind))


def _prefer_builders(found: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """A model class and a function (that builds it): the function is what the handout asks for."""
    functions = [f for f in found if inspect.isroutine(f[1]) or isinstance(f[1], functools.partial)]
    classes = [f for f in found if inspect.isclass(f[1])]
    return functions if len(found) == 2 and len(functions) == 1 and len(classes) == 1 else found


def _by_behaviour(spec: TargetSpec, found: list[tuple[str, Any]]) -> Resolution | None:
    """The one candidate that meets ``spec.contract``, or None (no contract, or not exactly one)."""
    if spec.contract is None or not found:
        return None
    fitting = [(n, o) for n, o in found if _meets(o, spec.contract)]
    # a builder and networks it (or another cell) built: the builder is what the handout asks for
    builders = [(n, o) for n, o in fitting if not _is_module_instance(o)]
    fitting = _prefer_builders(builders or fitting)
    if len(fitting) == 1:
        return Resolution(obj=fitting[0][1], found_as=fitting[0][0], how="behaviour")
    if len(fitting) > 1:
        return Resolution(problem="ambiguous", candidates=[f"{describe(n, o)}, which {spec.contract.label()}"
                                                           for n, o in fitting])
    return None


def _meets(obj: Any, contract: Contract) -> bool:
    """Whether ``obj`` builds from the contract's arguments and maps its input to its output.
    Student code runs here: anything it raises just means "not this one"."""
    import torch

    try:
        built = build(obj, contract.args)
        if (contract.contains or contract.excludes) and not (
                isinstance(built, torch.nn.Module) and contract.layers_fit(built)):
            return False
        if contract.input is None or contract.output is None:
            return True
        if not isinstance(built, torch.nn.Module):
            return False
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            out = built(torch.rand(contract.input, generator=generator))
        return isinstance(out, torch.Tensor) and list(torch.Tensor.size(out)) == list(contract.output)
    except BaseException:  # noqa: BLE001 - a candidate that fails the contract, whatever it raises
        return False


def build(obj: Any, args: list[Any] | dict[str, Any]) -> Any:
    """Call a builder with ``args``; a built ``nn.Module`` (an ``instances`` target) is copied
    instead when no arguments are asked for, and the copy's layers re-initialised (each
    ``reset_parameters``), so a check neither changes the student's object nor starts from the
    weights the notebook trained: it gets the model as a builder would have made it."""
    if not callable(obj) or _is_module_instance(obj):
        if args:
            raise TypeError(f"{type(obj).__name__} is an object the notebook built, and the check needs to build it "
                            f"with arguments {args!r}")
        import copy

        fresh = copy.deepcopy(obj)
        for layer in fresh.modules() if _is_module_instance(fresh) else []:
            reset = getattr(layer, "reset_parameters", None)
            if callable(reset):
                reset()
        return fresh
    return obj(*args) if isinstance(args, list) else obj(**args)


def _is_module_instance(obj: Any) -> bool:
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def _lookup(name: str, namespaces: list[Namespace], kind: str, instances: bool = False) -> list[tuple[str, Any]]:
    found, defined_here = [], []
    for label, ns in namespaces:
        obj = _get_dotted(ns, name)
        if obj is not _ABSENT and _kind_ok(obj, kind, instances):
            found.append((name if len(namespaces) == 1 else f"{label}.{name}", obj))
            if getattr(obj, "__module__", None) == ns.get("__name__"):
                defined_here.append(found[-1])
    # A qualified name "task2.ExampleModel" addresses one module directly.
    if not found and "." in name:
        module, _, rest = name.partition(".")
        for label, ns in namespaces:
            if label == module:
                obj = _get_dotted(ns, rest)
                if obj is not _ABSENT and _kind_ok(obj, kind, instances):
                    found.append((name, obj))
    found = _distinct(found)
    # Several modules hold the name and one defines it: the others imported it, or reuse the name
    # for something the rubric's qualified aliases (tried first) did not ask for.
    if len(found) > 1 and len(_distinct(defined_here)) == 1:
        return _distinct(defined_here)
    return found


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


def _kind_ok(obj: Any, kind: str, instances: bool = False) -> bool:
    if instances and _is_module_instance(obj):
        return True
    if kind == "class":
        return inspect.isclass(obj)
    if kind == "callable":
        # A builder: a function or a class. A built object (an nn.Module instance is callable
        # too) named like the builder, e.g. `fc = fully_connected(...)`, is not the target
        # unless the target accepts ``instances``.
        return inspect.isroutine(obj) or inspect.isclass(obj) or isinstance(obj, functools.partial)
    if kind == "value":
        return not callable(obj) and not isinstance(obj, types.ModuleType)
    return True


def _own_objects(namespaces: list[Namespace], instances: bool = False) -> list[tuple[str, Any]]:
    """Objects the student defined (not imported from a library), with their display names;
    with ``instances``, the ``nn.Module`` objects the student built count as defined."""
    out = []
    for label, ns in namespaces:
        own_module = ns.get("__name__")
        for name, obj in ns.items():
            if name.startswith("_") or name in _NOISE or isinstance(obj, types.ModuleType):
                continue
            if type(obj).__module__ == "__future__":  # `from __future__ import annotations`
                continue
            built_here = instances and _is_module_instance(obj)
            if callable(obj) and not built_here and getattr(obj, "__module__", None) != own_module:
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


def _arity_matches(obj: Any, wanted: list[str | list[str]]) -> bool:
    """True if the callable can take exactly ``len(wanted)`` positional arguments, whatever its
    parameters are called (keyword-only ones need defaults)."""
    return parameter_names(obj) is not None and can_build(obj, [None] * len(wanted))


def can_build(obj: Any, args: list[Any] | dict[str, Any]) -> bool:
    """Whether a call with ``args`` fits the callable's signature (nothing is called); True when
    the signature cannot be read (a builtin), so the call itself decides."""
    if _is_module_instance(obj):
        return not args
    if not callable(obj):
        return False
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return True
    try:
        sig.bind(*args) if isinstance(args, list) else sig.bind(**args)
    except TypeError:
        return False
    return True


def by_role(obj: Any, wanted: list[str | list[str]] | None, args: list[Any]) -> list[Any] | None:
    """``args`` (given in the handout's order of ``wanted``) reordered to the callable's own order
    when its parameter names say which is which (``DenseBlock(num_layers, in_channels, growth)``);
    None when they do not all name a role, or already follow the handout's order."""
    names = parameter_names(obj)
    if not wanted or names is None or len(args) != len(wanted) or len(names) < len(args):
        return None
    options = [{o.lower() for o in ([w] if isinstance(w, str) else w)} for w in wanted]
    roles = []
    for name in names[:len(args)]:
        matching = [i for i, accepted in enumerate(options) if name.lower() in accepted]
        if len(matching) != 1:
            return None
        roles.append(matching[0])
    if sorted(roles) != list(range(len(args))) or roles == list(range(len(args))):
        return None
    return [args[role] for role in roles]


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
