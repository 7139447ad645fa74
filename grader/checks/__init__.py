"""The check-kind registry: a dict from ``kind`` to its class, filled by a decorator.

Importing this package imports every kind module (each one short; none imports torch at import
time), so the registry is complete once ``grader.checks`` is imported.
"""

from __future__ import annotations

from typing import Callable, TypeVar

from grader.checks.base import CheckKind

REGISTRY: dict[str, type[CheckKind]] = {}

K = TypeVar("K", bound=type[CheckKind])


def register(name: str) -> Callable[[K], K]:
    """Class decorator: register a check kind under ``name``; a second kind of that name is a bug."""

    def add(cls: K) -> K:
        if name in REGISTRY:
            raise RuntimeError(f"check kind {name!r} is registered twice ({REGISTRY[name].__module__}, {cls.__module__})")
        cls.name = name
        REGISTRY[name] = cls
        return cls

    return add


def get(name: str) -> type[CheckKind]:
    return REGISTRY[name]


# Each import registers one kind; the order is the order `grader schema` lists them in.
from grader.checks import defined, shape, param_count, answer, notebook, dataset, training  # noqa: E402,F401
from grader.checks import architecture  # noqa: E402,F401
from grader.checks import op_equivalence  # noqa: E402,F401
from grader.checks import accuracy  # noqa: E402,F401
from grader.checks import residual  # noqa: E402,F401
from grader.checks import evaluation, transfer  # noqa: E402,F401
