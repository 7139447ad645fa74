"""custom-ops' fit checks as the rubric writes them, on the harness's data: fit-best-model pays
only for a copy of the best epoch's weights (all or nothing), and a best model left ``None`` fails
its rows whatever the reason (grader/checks/training.py says why the harness keeps it so)."""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from grader import checks, rubric
from grader.checks.base import HarnessSeed, ProbeContext
from grader.targets import TargetSpec

ROOT = Path(__file__).resolve().parents[2]
FITS = ROOT / "tests" / "fixtures" / "contracts" / "best_model_copy_or_live.py"


@cache
def _rubric_check(check_id: str):
    return rubric.load(ROOT / "rubrics" / "custom-ops.yaml").checks_by_id[check_id]


def _graded(check_id: str, function: str):
    found = importlib.util.spec_from_file_location("best_model_copy_or_live", FITS)
    module = importlib.util.module_from_spec(found)
    found.loader.exec_module(module)
    spec = _rubric_check(check_id)
    ctx = ProbeContext(namespaces=[("module", vars(module))], targets={"fit": TargetSpec(name=function)})
    ctx.seed_everything()
    kind = checks.get("training")
    return kind.judge(spec, kind.probe(spec, ctx), HarnessSeed(seed=ctx.seed))  # the host's, as the plan makes it


def _failed(verdict) -> list[str]:
    return [row["requirement"] for row in verdict.table if not row["ok"]]


def test_a_fit_copying_its_best_model_passes():
    verdict = _graded("fit-best-model", "fit_copies_lowest_loss")
    assert verdict.fraction == 1.0, verdict.message


def test_a_live_reference_earns_nothing_in_fit_best_model():
    verdict = _graded("fit-best-model", "fit_keeps_live_model")
    assert not _rubric_check("fit-best-model").partial_credit
    failed = _failed(verdict)
    assert len(failed) == 1 and failed[0].startswith("returns the parameters of epoch"), verdict.message


def test_a_best_model_never_set_fails_its_rows():
    verdict = _graded("fit-best-model", "fit_copies_best_accuracy_slowly")
    assert "None: no model was returned (was the best one never set?)" in verdict.message
    assert len(_failed(verdict)) == 2
