"""Small helpers several kinds share: building a target with arguments, exact-type checks."""

from __future__ import annotations

from typing import Any

from grader.checks.base import ProbeContext, call_description

Args = list[Any] | dict[str, Any]


def call_target(ctx: ProbeContext, key: str, args: Args) -> Any:
    """Resolve target ``key`` and call it with ``args`` (a list is positional, a dict keywords)."""
    fn = ctx.resolve(key)
    name = ctx.found_name(key)
    with ctx.student_code(f"calling {describe_call(name, args)}"):
        return fn(*args) if isinstance(args, list) else fn(**args)


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
