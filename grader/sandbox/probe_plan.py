"""The plan as the sandbox receives it: only what the probes need.

The job file lies where the student's code can read it, so it holds nothing a student should not
see: no check's title, points, visibility, threshold, tolerance or expected answer (each check
goes as its capture view, ``grader.checks.toolkit.capture``), and nothing computed from the reference
(expectations and an accuracy check's labels and calibrations stay in the host's ``Prepared``).

What it keeps, and why:

* ``checks``: every check's capture view, hidden checks included, since they are probed too;
* ``targets``: how to find each student object, used by every check's probe (a target's
  contract holds only what the handout fixes, and its ``description`` words the probe's messages);
* ``seed``: the seed every probe starts from;
* ``mapping``: an instructor's names for this student's targets.

The training budget of the profile is already in each accuracy check's planned fields, so the
plan's ``profile`` stays on the host.
"""

from __future__ import annotations

from typing import Any

KEPT = ("seed", "targets", "mapping")


def for_probe(plan: dict[str, Any]) -> dict[str, Any]:
    """``plan`` (``pipeline``'s: checks as the profile planned them, plain JSON) trimmed to what
    the probe side reads. Each check is validated against its kind's spec here, on the host, so a
    malformed plan fails before anything runs."""
    from grader import checks
    from grader.checks.toolkit.capture import capture_view

    views = [capture_view(checks.get(raw["kind"]).Spec.model_validate(raw)) for raw in plan["checks"]]
    return {key: plan[key] for key in KEPT if key in plan} | {"checks": views}
