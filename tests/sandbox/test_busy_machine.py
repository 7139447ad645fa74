"""A run the machine starves is the grader's failure, not the student's: at its wall deadline it
had waited for a CPU far longer than it ran, so it ends ``sandbox-error`` (retried by a batch),
never ``timeout-wall``. Both levels that enforce a wall deadline measure this themselves."""

from __future__ import annotations

import dataclasses

import pytest

from grader import pipeline, submission
from grader.sandbox import namespace

pytestmark = pytest.mark.slow

CPU_BOUND = """
import time
answer = 42
start = time.process_time()
while time.process_time() - start < 60:  # needs a minute of CPU: far more than its wall budget
    pass
"""


@pytest.mark.parametrize("isolation", ["process", "namespace"])
def test_a_run_starved_of_cpu_until_its_wall_deadline_is_a_sandbox_error(isolation, tmp_path, tiny_prepared,
                                                                         crowded_core):
    if isolation == "namespace" and (why := namespace.unavailable_reason()):
        pytest.skip(f"needs the namespace sandbox: {why}")
    (tmp_path / "cpu_bound.py").write_text(CPU_BOUND)
    prepared = dataclasses.replace(tiny_prepared, isolation=isolation,
                                   settings=pipeline.Settings(limit_overrides={"wall_seconds": 4}))
    result = pipeline.grade_one(submission.single(tmp_path / "cpu_bound.py"), prepared)
    assert result.isolation == isolation
    assert result.status == "sandbox-error", result.message
    assert "too busy" in result.message and "not the code's fault" in result.message
