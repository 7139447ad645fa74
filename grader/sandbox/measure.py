"""The measure sandbox's work: ``python -m grader.sandbox.runner`` with a job of form ``measure``.

Runs where no student code exists: its folder holds what the host wrote (``measuring.measure``):
``measure.json`` (each check's spec, seed and what the host gives it, such as an accuracy
check's scored images) and the observations it validated, in the boundary's
own format. Each measured kind's ``measure`` turns its artifacts into a ``Measurement``, written
back as a record like a probe's. A graph that breaks the format's rules is the kind's to report;
anything else that fails is a ``probe-error`` record naming it.
"""

from __future__ import annotations

import json
import traceback
from pathlib import Path
from typing import Any

from grader import checks, observations
from grader.measuring import JOB_NAME


def run(job: dict[str, Any]) -> None:
    import torch

    torch.set_num_threads(1)
    root, out_dir = Path(job["entry"]["root"]), Path(job["out_dir"])
    plan = json.loads((root / JOB_NAME).read_text())
    doc, arrays = observations.load(root)
    observed = {r.check: r for r in doc.records}
    writer = observations.ArrayWriter()
    records = []
    for item in plan["items"]:
        record: dict[str, Any] = {"check": item["check"], "status": "probe-error"}
        try:
            kind = checks.get(item["kind"])
            spec = kind.Spec.model_validate(item["spec"])
            obs = observations.validate_data(kind.Observation, observed[item["check"]].data or {}, arrays)
            given = observations.decode(item.get("given") or {}, arrays)
            record.update(status="observed",
                          data=writer.encode(kind.measure(spec, obs, item["seed"], given).model_dump()))
        except Exception as exc:  # noqa: BLE001 - reported per check; the others are still measured
            record["error"] = {"type": type(exc).__name__, "message": str(exc)[:2000],
                               "during": f"measuring check {item['check']!r}", "traceback": traceback.format_exc()[-4000:]}
        records.append(record)
    observations.write(out_dir, records, writer)
