"""Find the student object a check is about, as a careful human grader would.

A handout that says "a function that takes D, K and O" does not fix a name, so real student
work names it ``fc``, ``make_fc_net`` or ``FullyConnected``, with parameters called ``d_in, hidden,
d_out``. The steps, each tried only when the ones before found nothing:

1. **qualified names** (``task2.ExampleModel``) among the name and aliases: they address one
   module, so they win over a bare name that several modules define;
2. **the name, then each alias**: found in one module, or in several where one object is shared
   (imported from the module that defines it) or exactly one module defines it itself; a
   qualified alias's module may be a pattern (``task3*1.Model``: same-named classes in numbered
   files); when no spelling is found as written, the same names in any case (``transferModel``);
3. **signature**: a callable the student defined whose first parameters have the handout's names;
4. **arity**: a callable the student defined that takes exactly as many positional arguments as
   the signature has (its own parameter names);
5. **behaviour**: the ``contract`` (the handout's constructor arguments, input shape and output
   shape): the one candidate that builds from those arguments and maps that input to that output.
   Only what the handout fixes goes in a contract, never a hidden check's expected value. A
   contract with only a ``type`` finds class and value targets without building anything: the one
   class deriving from it (else a ``library`` class the code reaches), the one value of that type
   over the contract's ``split`` (a data set's ``train`` flag, else the variable's name).

How a found target is built when a check's arguments do not fit it (``constructor``, ``readings``)
is ``grader.checks.toolkit.common.student_way``.

What none of them decides is ``missing`` or ``ambiguous``, with the candidates; the judge then
asks a person (``needs-review``). An instructor's mapping (``instructor``: the student's name for
the target) bypasses the steps. Resolution runs on both sides: the same code finds the target in
a student's namespace (inside the sandbox) and in the reference (on the host).
"""

from __future__ import annotations

import fnmatch
import functools
import inspect
import re
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
    type: str | None = Field(None, description="what a value is an instance of, or a class derives from, as a "
                                               "class-name pattern (torch.utils.data.DataLoader): for class and "
                                               "value targets, which are found by what they are, not by building")
    split: Literal["train", "test"] | None = Field(
        None, description="a value's split: the data it serves is the training split or the test split, as its "
                          "data set's `train` flag says, else as its name does (loadertr, val_loader)")
    library: list[str] = Field([], description="library classes (dotted, torchvision.datasets.FashionMNIST) that "
                                               "count when the student defined none of the type and the code "
                                               "reaches that class (the handout lets a student use it)")

    def builds(self) -> bool:
        """Whether meeting the contract means building the object (a model builder), not only
        being of a type (a data set class, a loader)."""
        return bool(self.args or self.input or self.output or self.contains or self.excludes) or self.type is None

    def label(self) -> str:
        if not self.builds():
            text = f"is a {self.type.rsplit('.', 1)[-1]}" if self.type else "is"
            if self.split:
                text += f" over the {self.split} split"
            if self.library:
                text += f" (or {', '.join(self.library)}, when the code uses it)"
            return text
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
    constructor: Literal["handout", "student"] = Field(
        "handout", description="handout: the handout fixes the constructor, and a check's arguments must fit it; "
                               "student: the handout leaves it open (the checks' arguments are the reference's), so a "
                               "class that cannot take them is built the student's way: with no arguments when all "
                               "have defaults, else as the student's code built it, else with any arguments when they "
                               "do not change the network; otherwise a person decides")
    readings: list["Reading"] = Field([], description="other readings of the handout's constructor: a callable taking "
                                                      "another number of arguments gets the check's at these positions")
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


class Reading(BaseModel):
    """Another reading of the handout's constructor: a callable that takes ``len(take)`` positional
    arguments gets the check's arguments at the positions ``take`` lists. The handout's "the output
    dimensions of the fully connected layers shall be parameters" read as ResBlock(in, out1, out2)
    from the rubric's (in, hidden) is ``take: [0, 1, 0]``: the second layer gives back the input
    size, so the skip connection fits."""

    model_config = ConfigDict(extra="forbid")

    take: list[int] = Field(min_length=1, description="for each of the student's parameters, the index of the check's "
                                                      "argument it gets")
    reading: str = Field(description="the reading in words, for the check's message")


TargetSpec.model_rebuild()

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
    problem: Literal["missing", "ambiguous", "unbuildable"] | None = None
    candidates: list[str] = field(default_factory=list)
    built: str | None = None               # how a check built it, when not with the check's own arguments

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
    # exact spellings first; then the same names in any case (`transferModel` for TransferModel)
    for fold in (False, True):
        for name, how in qualified_first:
            found = _lookup(name, namespaces, spec.kind, spec.instances, fold=fold)
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
    if spec.contract and not spec.contract.builds():
        decided = _by_type(spec, namespaces)
        if decided:
            return decided
    elif spec.contract:
        own = [(n, o) for n, o in _own_objects(namespaces, spec.instances)
               if _kind_ok(o, spec.kind, spec.instances) and contract_args(spec, o) is not None]
        decided = _by_behaviour(spec, _distinct(own))
        if decided:
            return decided
    return Resolution(problem="missing", candidates=candidates(namespaces, spec.kind))


def contract_args(spec: TargetSpec, obj: Any) -> list[Any] | None:
    """The arguments the behaviour step builds ``obj`` with: the contract's when they fit, else
    (a constructor the handout leaves open) none, when all of the student's have defaults."""
    args = spec.contract.args if spec.contract else []
    if can_build(obj, args):
        return args
    if spec.constructor == "student" and args and can_build(obj, []):
        return []
    return None


def _by_type(spec: TargetSpec, namespaces: list[Namespace]) -> Resolution | None:
    """The one class (deriving from ``contract.type``) or value (an instance of it, over the
    contract's split) the student defined; failing that, the one ``contract.library`` class the
    code reaches. Nothing is built or called."""
    contract = spec.contract
    assert contract is not None
    own = _distinct([(n, o) for n, o in _with_dict_entries(_own_objects(namespaces)) if _kind_ok(o, spec.kind)])
    if contract.type:
        own = [(n, o) for n, o in own if _derives(o if inspect.isclass(o) else type(o), contract.type)]
    if contract.split:
        own = [(n, o) for n, o in own if split_of(_bare(n), o) == contract.split]
        if len(own) > 1:  # a validation loader over part of the training split: its name tells them apart
            own = [(n, o) for n, o in own if split_of(_bare(n), None) in (contract.split, None)] or own
    if not own:
        own = [(path, cls) for path in contract.library
               if (cls := _reached(path, namespaces)) is not None]
    if len(own) == 1:
        return Resolution(obj=own[0][1], found_as=own[0][0], how="behaviour")
    if len(own) > 1:
        return Resolution(problem="ambiguous", candidates=[f"{describe(n, o)}, which {contract.label()}"
                                                           for n, o in own])
    return None


def _bare(shown: str) -> str:
    """A candidate's name without its module label: ``task2.loader`` -> ``loader``,
    ``nb.dataloaders['train']`` -> ``dataloaders['train']``."""
    head, bracket, rest = shown.partition("[")
    return head.rsplit(".", 1)[-1] + bracket + rest


def _with_dict_entries(objects: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """The objects, and the entries of the small dicts among them under their keys
    (``dataloaders['train']``, as the PyTorch tutorials keep loaders)."""
    out = list(objects)
    for name, obj in objects:
        if type(obj) is dict and len(obj) <= MAX_CANDIDATES:
            out.extend((f"{name}[{key!r}]", value) for key, value in obj.items() if isinstance(key, str))
    return out


def _derives(cls: type, pattern: str) -> bool:
    """Whether ``cls`` or a base of it is named by ``pattern`` (``module.QualName``, * and |); a
    package names the classes of its modules (torch.utils.data.DataLoader is defined in
    torch.utils.data.dataloader)."""
    for base in getattr(cls, "__mro__", ()):
        module, name = str(getattr(base, "__module__", "")), getattr(base, "__qualname__", "")
        for p in (p.strip() for p in pattern.split("|")):
            package, _, wanted = p.rpartition(".")
            if fnmatch.fnmatchcase(f"{module}.{name}", p) or (
                    name == wanted and (module == package or module.startswith(package + "."))):
                return True
    return False


# a variable's name as a human reads it: loadertr, tr_dl, train_loader; val_loader, loadertest, te_dl
_TRAIN_WORDS = re.compile(r"train|(^|_|loader|dl)tr($|_|loader|dl|set|data)")
_TEST_WORDS = re.compile(r"test|val|(^|_|loader|dl)te($|_|loader|dl|set|data)")


def split_of(name: str, obj: Any) -> Literal["train", "test"] | None:
    """The split a loader or data set serves: the ``train`` flag of a data set it wraps (a
    torchvision data set, a Subset of one, a loader over either, a student's class holding one),
    else its variable's name (``loadertr``, ``train_dl``; ``val_loader``, ``testloader``); None
    when neither says, or they disagree with each other."""
    flags = set()
    seen: set[int] = set()
    todo = [obj] if obj is not None else []
    while todo and len(seen) < 20:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        flag = inspect.getattr_static(item, "train", None) if not inspect.isclass(item) else None
        if isinstance(flag, bool):
            flags.add("train" if flag else "test")
        fields = vars(item) if hasattr(item, "__dict__") and not isinstance(item, type) else {}
        todo.extend(v for k, v in fields.items() if k in {"dataset", "data", "ds", "base", "source", "dataset_"}
                    and not isinstance(v, (str, bytes, int, float)))
    if len(flags) == 1:
        return flags.pop()  # type: ignore[return-value]
    if flags:
        return None
    lowered = name.lower()
    train, test = bool(_TRAIN_WORDS.search(lowered)), bool(_TEST_WORDS.search(lowered))
    return "train" if train and not test else "test" if test and not train else None


def _reached(path: str, namespaces: list[Namespace]) -> Any:
    """The library class at dotted ``path`` when the student's code holds it or a module above it
    (``from torchvision import datasets``), else None."""
    import sys

    module_name, _, attr = path.rpartition(".")
    cls = getattr(sys.modules.get(module_name), attr, None)
    if cls is None:
        return None
    for _label, ns in namespaces:
        for name, obj in ns.items():
            if name.startswith("_"):
                continue
            if obj is cls:
                return cls
            if isinstance(obj, types.ModuleType) and (module_name == obj.__name__
                                                      or module_name.startswith(obj.__name__ + ".")):
                return cls
    return None


def _prefer_builders(found: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """A model class and a function (that builds it): the function is what the handout asks for."""
    functions = [f for f in found if inspect.isroutine(f[1]) or isinstance(f[1], functools.partial)]
    classes = [f for f in found if inspect.isclass(f[1])]
    return functions if len(found) == 2 and len(functions) == 1 and len(classes) == 1 else found


def _by_behaviour(spec: TargetSpec, found: list[tuple[str, Any]]) -> Resolution | None:
    """The one candidate that meets ``spec.contract``, or None (no contract, or not exactly one)."""
    if spec.contract is None or not found:
        return None
    fitting = [(n, o) for n, o in found if _meets(o, spec.contract, contract_args(spec, o))]
    # a builder and networks it (or another cell) built: the builder is what the handout asks for
    builders = [(n, o) for n, o in fitting if not _is_module_instance(o)]
    fitting = _prefer_builders(builders or fitting)
    if len(fitting) == 1:
        return Resolution(obj=fitting[0][1], found_as=fitting[0][0], how="behaviour")
    if len(fitting) > 1:
        return Resolution(problem="ambiguous", candidates=[f"{describe(n, o)}, which {spec.contract.label()}"
                                                           for n, o in fitting])
    return None


def _meets(obj: Any, contract: Contract, args: list[Any] | None = None) -> bool:
    """Whether ``obj`` builds from the contract's arguments (or ``args``, see ``contract_args``)
    and maps its input to its output. Student code runs here: anything it raises just means "not
    this one"."""
    import torch

    try:
        built = build(obj, contract.args if args is None else args)
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


def _lookup(name: str, namespaces: list[Namespace], kind: str, instances: bool = False,
            fold: bool = False) -> list[tuple[str, Any]]:
    """Objects of ``kind`` under ``name`` (``fold``: in any case). A qualified name's module part
    may be a pattern: ``task3*1.Model`` is the ``Model`` of task3_model_1.py (two networks handed in
    as numbered files are told apart by their numbers)."""
    found, defined_here = [], []
    for label, ns in namespaces:
        for shown, obj in _get_folded(ns, name) if fold else [(name, _get_dotted(ns, name))]:
            if obj is not _ABSENT and _kind_ok(obj, kind, instances):
                found.append((shown if len(namespaces) == 1 else f"{label}.{shown}", obj))
                if getattr(obj, "__module__", None) == ns.get("__name__"):
                    defined_here.append(found[-1])
    # A qualified name "task2.ExampleModel" addresses one module directly.
    if not found and "." in name:
        module, _, rest = name.partition(".")
        for label, ns in namespaces:
            if label == module or ("*" in module and fnmatch.fnmatchcase(label, module)):
                for shown, obj in _get_folded(ns, rest) if fold else [(rest, _get_dotted(ns, rest))]:
                    if obj is not _ABSENT and _kind_ok(obj, kind, instances):
                        found.append((f"{label}.{shown}", obj))
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


def _get_folded(ns: dict[str, Any], name: str) -> list[tuple[str, Any]]:
    """Names in ``ns`` that spell the bare ``name`` in another case, with their objects (a
    qualified name is only looked up as spelled)."""
    if "." in name:
        return []
    lowered = name.lower()
    return [(key, obj) for key, obj in ns.items()
            if key.lower() == lowered and key != name and not key.startswith("_") and key not in _NOISE]


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


def _names_in_order(obj: Any, wanted: list[str | list[str]]) -> bool:
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


def _signature_matches(obj: Any, wanted: list[str | list[str]]) -> bool:
    """True if the callable's parameters start with ``wanted`` (``_names_in_order``), or name every
    one of the handout's roles in another order, any further parameter being one the harness can
    give (a scheduler, a device) or having a default (``roles_fit``)."""
    return _names_in_order(obj, wanted) or roles_fit(obj, wanted, complete=True)


def _arity_matches(obj: Any, wanted: list[str | list[str]]) -> bool:
    """True if the callable can take exactly ``len(wanted)`` positional arguments, whatever its
    parameters are called (keyword-only ones need defaults), or its parameters name the handout's
    roles in any order, leaving out at most the data it may read from globals (``roles_fit``)."""
    if parameter_names(obj) is None:
        return False
    return can_build(obj, [None] * len(wanted)) or roles_fit(obj, wanted, complete=False)


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


# ---------------------------------------------------------------- arguments of a training loop, by role
# The roles a training function's parameters play, as a careful reader recognises them in the
# student's names: `dataloader_cvtrain`, `train_iter` and `trainloader` are the training data;
# `criterion` and `loss_fn` the loss. The first rule that fits decides. A rubric's signature list
# gets its role the same way (from its synonyms), so a parameter finds its argument by role even
# when the rubric does not list its spelling. HARNESS_ROLES are those a harness can give honestly
# although the handout names none (a scheduler that keeps the rate, the device the check runs on).
_DATA_WORDS = ("load", "iter", "data", "dl", "set", "batch", "gen")
_ROLE_RULES: tuple[tuple[str, Any], ...] = (
    ("epochs", lambda n: "epoch" in n),
    ("scheduler", lambda n: "sched" in n),
    ("device", lambda n: "device" in n or n == "dev"),
    ("lr", lambda n: n in {"lr", "learning_rate", "learningrate", "eta", "rate"} or n.startswith("lr_")
     or n.endswith("_lr")),
    ("loss", lambda n: "loss" in n or "criterion" in n or n in {"crit", "cost", "cost_fn", "objective"}),
    ("optimizer", lambda n: "optim" in n or n in {"opt", "sgd"}),
    ("validation-data", lambda n: any(w in n for w in _DATA_WORDS) and any(s in n for s in ("val", "test", "eval"))),
    ("train-data", lambda n: any(w in n for w in _DATA_WORDS) and "train" in n),
    ("model", lambda n: n in {"model", "net", "network", "mdl", "classifier", "module", "cnn", "mlp"}
     or n.endswith("model") or n.endswith("net")),
)
HARNESS_ROLES = ("scheduler", "device")
DATA_ROLES = ("train-data", "validation-data")


def role_of(name: str) -> str | None:
    """The role a parameter name plays (``_ROLE_RULES``), or None."""
    lowered = name.lower()
    return next((role for role, fits in _ROLE_RULES if fits(lowered)), None)


def _position_roles(wanted: list[str | list[str]]) -> list[str | None]:
    """The role of each position of a rubric's signature: the one its synonyms name most often."""
    roles: list[str | None] = []
    for accepted in wanted:
        found = [r for r in (role_of(o) for o in ([accepted] if isinstance(accepted, str) else accepted)) if r]
        roles.append(max(set(found), key=found.count) if found else None)
    return roles


def role_plan(obj: Any, wanted: list[str | list[str]] | None,
              extra: tuple[str, ...] = HARNESS_ROLES) -> dict[str, int | str] | None:
    """Which argument each of the callable's parameters gets: the index of a position of ``wanted``
    (its name is one of the position's synonyms, or plays the position's role), or the name of a
    role in ``extra`` the caller supplies. Parameters with defaults that play no role are left out.
    None when a parameter without a default plays no role the call can fill, or two parameters
    take the same position."""
    if not wanted or not callable(obj):
        return None
    try:
        params = list(inspect.signature(obj).parameters.values())
    except (TypeError, ValueError):
        return None
    synonyms = [{o.lower() for o in ([w] if isinstance(w, str) else w)} for w in wanted]
    roles = _position_roles(wanted)
    plan: dict[str, int | str] = {}
    for param in params:
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        exact = [i for i, accepted in enumerate(synonyms) if param.name.lower() in accepted]
        role = role_of(param.name)
        same_role = [i for i, r in enumerate(roles) if r is not None and r == role]
        chosen: int | str | None = exact[0] if len(exact) == 1 else same_role[0] if len(same_role) == 1 else None
        if chosen is None and role in extra:
            chosen = role
        if chosen is None:
            if param.default is inspect.Parameter.empty:
                return None
            continue
        if chosen in plan.values():
            return None
        plan[param.name] = chosen
    return plan


def roles_fit(obj: Any, wanted: list[str | list[str]] | None, complete: bool = True) -> bool:
    """Whether the callable can be called by role (``role_plan``) taking every position of
    ``wanted``; with ``complete=False``, it may leave out the data positions (a loop that reads
    its loaders from globals, like the PyTorch tutorial's ``train_model``)."""
    plan = role_plan(obj, wanted)
    if plan is None or not wanted:
        return False
    taken = {i for i in plan.values() if isinstance(i, int)}
    roles = _position_roles(wanted)
    left = [i for i in range(len(wanted)) if i not in taken]
    if complete:
        return not left
    return bool(taken) and all(roles[i] in DATA_ROLES for i in left)


def call_by_role(obj: Any, wanted: list[str | list[str]] | None, args: list[Any],
                 extra: dict[str, Any]) -> tuple[list[Any], dict[str, Any]] | None:
    """``args`` (in the order of ``wanted``) and ``extra`` (values of harness roles: scheduler,
    device) as the positional and keyword arguments of a call of ``obj`` by role, or None when its
    parameters cannot all be given that way. Positional-only parameters go by position."""
    plan = role_plan(obj, wanted, tuple(extra))
    if plan is None or wanted is None or len(args) != len(wanted):
        return None
    params = inspect.signature(obj).parameters
    positional, keywords = [], {}
    for name, source in plan.items():
        value = args[source] if isinstance(source, int) else extra[source]
        if params[name].kind == inspect.Parameter.POSITIONAL_ONLY:
            positional.append(value)
        else:
            keywords[name] = value
    return positional, keywords


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
