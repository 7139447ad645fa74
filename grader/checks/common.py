"""Small helpers several kinds share: building a target with arguments, exact-type checks."""

from __future__ import annotations

from typing import Any

from grader.checks.base import ProbeContext, StudentRaised, call_description
from grader.targets import build, by_role, can_build, describe

Args = list[Any] | dict[str, Any]


def call_target(ctx: ProbeContext, key: str, args: Args) -> Any:
    """Resolve target ``key`` and call it with ``args`` (a list is positional, a dict keywords);
    a built model (a target that accepts ``instances``) is copied when no arguments are asked for.
    Positional ``args`` follow the target's ``signature``; a callable whose parameter names give
    the same roles in another order gets them in its own order (the call in messages shows it).

    A target whose signature cannot take ``args`` is the student's error, said as the two
    signatures side by side rather than as Python's ``TypeError`` from deep inside the call."""
    fn = ctx.resolve(key)
    name = ctx.found_name(key)
    if isinstance(args, list) and (reordered := by_role(fn, ctx.targets[key].signature, args)) is not None:
        args = reordered  # the student's parameters name the handout's roles in another order
    during = f"calling {describe_call(name, args)}"
    if not can_build(fn, args):
        wanted = ctx.targets[key].description or ctx.targets[key].label()
        raise StudentRaised(during, SignatureMismatch(
            f"the check calls it as {describe_call(name, args)} ({wanted}), but the submission's {describe(name, fn)} "
            "cannot be called that way"))
    with ctx.student_code(during):
        return build(fn, args)


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
