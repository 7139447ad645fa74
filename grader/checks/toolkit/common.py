"""Small helpers several kinds share: building a target with arguments, exact-type checks."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

from grader.checks.base import ProbeContext, StudentRaised, Unresolved, call_description
from grader.targets import Resolution, build, by_role, can_build, describe, parameter_names

Args = list[Any] | dict[str, Any]


def call_target(ctx: ProbeContext, key: str, args: Args) -> Any:
    """Resolve target ``key`` and call it with ``args`` (a list is positional, a dict keywords);
    a built model (a target that accepts ``instances``) is copied when no arguments are asked for.
    Positional ``args`` follow the target's ``signature``; a callable whose parameter names give
    the same roles in another order gets them in its own order (the call in messages shows it).

    A callable that cannot take ``args`` is built another way where the rubric allows one (see
    ``student_way``); the way is kept on the resolution (``built``) and said in the check's message.
    Otherwise it is the student's error, said as the two signatures side by side rather than as
    Python's ``TypeError`` from deep inside the call."""
    fn = ctx.resolve(key)
    name = ctx.found_name(key)
    if isinstance(args, list) and (reordered := by_role(fn, ctx.targets[key].signature, args)) is not None:
        args = reordered  # the student's parameters name the handout's roles in another order
    if not can_build(fn, args):
        fn, args, how = student_way(ctx, key, fn, name, args)
        ctx.found[key] = dataclasses.replace(ctx.found[key], built=how)
    during = f"calling {describe_call(name, args)}"
    with ctx.student_code(during):
        return build(fn, args)


# Two sets of stand-in arguments: a constructor that gives the same network with both does not
# use its arguments for the network (FashionNet(batch_size, val_size, tr_size) only stores them).
STAND_INS = (64, 100)


def student_way(ctx: ProbeContext, key: str, fn: Any, name: str, args: Args) -> tuple[Any, Args, str]:
    """How to build ``fn`` when the check's ``args`` do not fit it: ``(what to build, arguments,
    the way in words)``. In order: another reading of the handout's constructor that the rubric
    lists (``readings``); then, only where the handout leaves the constructor open
    (``constructor: student``): no arguments when all of the student's have defaults; the network
    the student's own code built with it (a copy, re-initialised); any arguments, when two
    different sets give the same network. Otherwise ``SignatureMismatch`` (a constructor the
    handout fixes) or ``Unresolved`` (``unbuildable``: a person decides), naming both signatures."""
    target = ctx.targets[key]
    wanted = target.description or target.label()
    for reading in target.readings:
        if isinstance(args, list) and max(reading.take) < len(args):
            taken = [args[i] for i in reading.take]
            if can_build(fn, taken):
                return fn, taken, f"built as {describe_call(name, taken)}: {reading.reading}"
    if target.constructor != "student":
        raise StudentRaised(f"calling {describe_call(name, args)}", SignatureMismatch(
            f"the check calls it as {describe_call(name, args)} ({wanted}), but the submission's {describe(name, fn)} "
            "cannot be called that way"))
    given = describe_call(name, args)
    if can_build(fn, []):
        return fn, [], (f"built as {name}() with its defaults: the handout leaves the constructor open, and "
                        f"{describe(name, fn)} cannot take the check's {given}")
    if inspect.isclass(fn):
        built = _instances_of(ctx, fn)
        if len(built) == 1:
            shown, instance = built[0]
            return instance, [], (f"built as the student's `{shown}` (a fresh copy, re-initialised): "
                                  f"{describe(name, fn)} cannot take the check's {given}")
    if (stand_ins := _unused_arguments(ctx, fn)) is not None:
        return fn, stand_ins, (f"built as {describe_call(name, stand_ins)}: its arguments do not change the "
                               f"network (the same layers with {STAND_INS[1]}s), and the check's {given} does not "
                               "fit it")
    raise Unresolved(key, target, Resolution(
        problem="unbuildable", found_as=name,
        candidates=[f"the check builds it as {given} ({wanted}), but the submission's {describe(name, fn)} cannot "
                    "be called that way, has no defaults for its parameters, and the code built no network "
                    "with it that the grader can see"]))


def _instances_of(ctx: ProbeContext, cls: type) -> list[tuple[str, Any]]:
    """The networks of exactly class ``cls`` the student's code holds, one per structure (the
    same network under two names, or trained twice from the same class, is one)."""
    seen: dict[tuple[Any, ...], tuple[str, Any]] = {}
    for label, ns in ctx.namespaces:
        for name, obj in ns.items():
            if type(obj) is cls and not name.startswith("_"):
                shown = name if len(ctx.namespaces) == 1 else f"{label}.{name}"
                seen.setdefault(_structure(obj), (shown, obj))
    return list(seen.values())


def _structure(model: Any) -> tuple[Any, ...]:
    import torch

    if not isinstance(model, torch.nn.Module):
        return (id(model),)
    layers = tuple(f"{type(m).__module__}.{type(m).__qualname__}" for m in model.modules())
    shapes = tuple((k, tuple(torch.Tensor.size(v))) for k, v in model.state_dict().items()
                   if isinstance(v, torch.Tensor))
    return layers + shapes


def _unused_arguments(ctx: ProbeContext, fn: Any) -> list[Any] | None:
    """Stand-in arguments for a constructor whose arguments do not shape the network: it builds
    the same layers and parameter shapes from ``STAND_INS[0]`` and ``STAND_INS[1]`` in every
    required position; None when it does not (or raises)."""
    import torch

    names = parameter_names(fn) or []
    for count in range(1, len(names) + 1):
        first, second = [STAND_INS[0]] * count, [STAND_INS[1]] * count
        if not can_build(fn, first):
            continue
        try:
            with ctx.student_code("trying stand-in arguments"):
                one, other = build(fn, first), build(fn, second)
        except StudentRaised:
            return None
        if isinstance(one, torch.nn.Module) and isinstance(other, torch.nn.Module) \
                and _structure(one) == _structure(other):
            return first
        return None
    return None


class SignatureMismatch(TypeError):
    """The student's callable does not take the arguments the handout's interface gives it."""


def describe_call(name: str, args: Args) -> str:
    if isinstance(args, list):
        return f"{name}({', '.join(repr(a) for a in args)})"
    return call_description(name, args)


def type_name(obj: Any) -> str:
    """Fully qualified type name, e.g. ``torch.Tensor`` or ``PIL.Image.Image``."""
    cls = type(obj)
    module = cls.__module__
    if module == "builtins":
        return cls.__qualname__
    # PIL images report their plugin module (PIL.PngImagePlugin...) only for file-backed images.
    return f"{module}.{cls.__qualname__}"


def is_plain_tensor(obj: Any) -> bool:
    """Exactly ``torch.Tensor``: a subclass could rig ``__eq__``, ``shape`` or ``size``."""
    import torch

    return type(obj) is torch.Tensor


def tensor_shape(obj: Any) -> list[int]:
    """Shape read through torch's own method, never through the object's attributes."""
    import torch

    return [int(d) for d in torch.Tensor.size(obj)]


def format_shape(dims: list[int | str]) -> str:
    return "[" + ", ".join(str(d) for d in dims) + "]"


def input_dtype(model: Any, wanted: Any) -> Any:
    """The dtype of a probe's input for ``model``: ``wanted``, unless the network's own floating
    parameters are of another floating precision (a notebook that calls
    ``torch.set_default_dtype(torch.float64)`` builds double networks and feeds them doubles; the
    handout fixes shapes, not precision)."""
    import torch

    if not getattr(wanted, "is_floating_point", False) or not isinstance(model, torch.nn.Module):
        return wanted
    own = next((p.dtype for p in torch.nn.Module.parameters(model) if p.is_floating_point()), None)
    return own if own is not None else wanted


def short_error(exc: StudentRaised) -> str:
    """``ValueError: message (while doing X)``, the message cut short; never raises."""
    try:
        text = str(exc.exc)[:300]
    except BaseException:  # noqa: BLE001 - a student's exception may refuse to print
        text = "<message cannot be shown>"
    return f"{type(exc.exc).__name__}: {text} (while {exc.during})"
