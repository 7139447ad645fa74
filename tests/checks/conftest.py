"""Every probe in these tests gets the spec as the sandbox would: rebuilt from its capture view.

A probe that reads a judge-only field (``grader.checks.toolkit.capture``) then fails here with an
``AttributeError`` naming the field, instead of reading a value the sandbox never receives."""

from __future__ import annotations

from typing import Any

import pytest

from grader.checks import REGISTRY
from grader.checks.base import CheckSpec, ProbeContext
from grader.checks.toolkit.capture import capture_view, from_capture_view


@pytest.fixture(autouse=True)
def probes_get_the_capture_view(monkeypatch: pytest.MonkeyPatch) -> None:
    for kind in REGISTRY.values():
        def probe(spec: Any, ctx: ProbeContext, _probe: Any = kind.probe) -> Any:
            if isinstance(spec, CheckSpec):
                spec = from_capture_view(type(spec), capture_view(spec))
            return _probe(spec, ctx)

        monkeypatch.setattr(kind, "probe", staticmethod(probe))
