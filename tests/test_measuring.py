"""The measure stage: the host's secret seed, a real measure run in the process sandbox, and what
the judge makes of forged observations once the graphs are measured."""

from __future__ import annotations

import os
import stat

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grader import checks, measuring, observations, sandbox
from grader.checks.base import Measured
from tests.checks.test_op_equivalence import context, load_fixture

KIND = checks.get("op_equivalence")
LIMITS = {"wall_seconds": 120, "cell_seconds": 60, "memory_mb": 4096, "disk_mb": 64, "output_mb": 4,
          "processes": 64, "open_files": 256, "output_chars": 20_000, "threads": 1}
CONFIGS = [{"args": {"in_channels": 2, "out_channels": 3, "kernel_size": 3, "stride": 1}, "input": [2, 2, 6, 6]},
           {"args": {"in_channels": 1, "out_channels": 2, "kernel_size": 2, "stride": 2}, "input": [1, 1, 5, 7]}]


def conv_spec(backward: bool = True):
    return KIND.Spec.model_validate({"id": "conv", "kind": "op_equivalence", "points": 2, "target": "Op",
                                     "counterpart": "torch.nn.Conv2d", "configs": CONFIGS, "partial_credit": True,
                                     "backward": backward})


def observed(op_class: type, spec=None) -> object:
    return KIND.probe(spec or conv_spec(), context({"Conv2d": op_class}, "Conv2d"))


def measured_by_the_sandbox(obs, tmp_path, spec=None) -> Measured:
    spec = spec or conv_spec()
    writer = observations.ArrayWriter()
    record = observations.ProbeRecord.model_validate(
        {"check": spec.id, "status": "observed", "data": writer.encode(obs.model_dump(mode="python"))})
    found = measuring.measure([spec], [record], writer.arrays, work=tmp_path, isolation="process", limits=LIMITS,
                              slot=sandbox.Slot())
    assert found is not None
    return found[spec.id]


@pytest.fixture(autouse=True)
def pinned_secret(monkeypatch):
    monkeypatch.setenv(measuring.SECRET_ENV, "tests")


# ================================================================ the seed


def test_the_seed_is_stable_per_check_and_differs_between_checks():
    assert measuring.seed_for("conv") == measuring.seed_for("conv")
    assert measuring.seed_for("conv") != measuring.seed_for("pool")
    assert 0 <= measuring.seed_for("conv") < 2**31


def test_without_a_pinned_secret_the_machine_makes_one_only_its_user_reads(monkeypatch, tmp_path):
    monkeypatch.delenv(measuring.SECRET_ENV)
    monkeypatch.setenv("GRADER_CACHE", str(tmp_path))
    first = measuring.seed_for("conv")
    secret = tmp_path / measuring.SECRET_FILE
    assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600 and len(secret.read_bytes()) == 64
    assert measuring.seed_for("conv") == first
    secret.write_bytes(b"another machine")
    assert measuring.seed_for("conv") != first


# ================================================================ measured in a sandbox


@pytest.mark.slow
def test_an_honest_op_is_measured_in_a_sandbox_and_passes(tmp_path):
    obs = observed(load_fixture("loop_ops").Conv2d)
    found = measured_by_the_sandbox(obs, tmp_path)
    assert found.problem == "" and all(run is not None and run.output is not None for run in found.data.runs)
    verdict = KIND.judge(conv_spec(), obs, None, found)
    assert verdict.fraction == 1.0 and verdict.review is None, verdict.message


@pytest.mark.slow
def test_reports_forged_with_torchs_numbers_earn_nothing_without_a_graph(tmp_path):
    """The probe's outputs rewritten to torch's (a stub op that only raises, a rebound probe):
    without a graph of the op, no config is measured, so none earns points; a person is told."""
    class Stub(nn.Module):
        def __init__(self, in_channels, out_channels, kernel_size, stride=1):
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(out_channels, in_channels, kernel_size, kernel_size))
            self.bias = nn.Parameter(torch.zeros(out_channels))
            self.stride = stride

        def forward(self, x):
            return F.conv2d(x, self.weight, self.bias, self.stride)  # what the forged report shows

    honest_numbers = observed(Stub)
    forged = honest_numbers.model_copy(update={
        "runs": [run.model_copy(update={"graph": None, "graph_problem": "too big"}) for run in honest_numbers.runs],
        "forward_ops": [], "backward_ops": [], "sources": []})
    assert KIND.judge(conv_spec(), forged, None).fraction == 1.0  # what the report alone would have earned
    verdict = KIND.judge(conv_spec(), forged, None, measured_by_the_sandbox(forged, tmp_path))
    assert verdict.fraction == 0.0
    assert "2 config(s) the run reported as matching could not be measured" in verdict.review


@pytest.mark.slow
def test_a_graph_of_torchs_own_convolution_is_forbidden_whatever_the_sources_say(tmp_path):
    class Aliased(nn.Module):
        def __init__(self, in_channels, out_channels, kernel_size, stride=1):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
            self.bias = nn.Parameter(torch.zeros(out_channels))
            self.stride = stride
            self.apply_kernel = vars(F)["con" + "v2d"]

        def forward(self, x):
            return self.apply_kernel(x, self.weight, self.bias, self.stride)

    obs = observed(Aliased)
    clean_report = obs.model_copy(update={"forward_ops": [], "backward_ops": []})  # the recorder's names removed
    verdict = KIND.judge(conv_spec(), clean_report, None, measured_by_the_sandbox(clean_report, tmp_path))
    assert verdict.fraction == 0.0 and verdict.review == "forbidden implementation"
    assert "aten.convolution" in verdict.message and "in the captured graph" in verdict.message


@pytest.mark.slow
def test_an_op_that_switches_the_recording_off_matches_only_the_inputs_it_saw(tmp_path):
    from torch.utils._python_dispatch import _disable_current_modes

    class Hidden(nn.Module):
        def __init__(self, in_channels, out_channels, kernel_size, stride=1):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
            self.bias = nn.Parameter(torch.zeros(out_channels))
            self.stride = stride

        def forward(self, x):
            with _disable_current_modes():  # out of the graph, and out of the dispatch recorder
                out = F.conv2d(x.detach(), self.weight.detach(), self.bias.detach(), self.stride)
            return out + 0 * (x.sum() + self.weight.sum() + self.bias.sum())

    forward_only = conv_spec(backward=False)  # its forward's numbers are right where the process saw them
    obs = observed(Hidden, forward_only).model_copy(update={"sources": [], "forward_ops": [], "backward_ops": []})
    assert KIND.judge(forward_only, obs, None).fraction == 1.0  # what the scrubbed report alone would earn
    found = measured_by_the_sandbox(obs, tmp_path, forward_only)
    assert all("aten.convolution" not in run.operators for run in found.data.runs)
    verdict = KIND.judge(forward_only, obs, None, found)
    assert verdict.fraction == 0.0
    assert "only on the inputs the student's process saw" in verdict.review


@pytest.mark.slow
def test_a_measure_run_that_cannot_start_is_the_machines_fault_not_the_students(tmp_path, monkeypatch):
    from grader.errors import GraderError

    obs = observed(load_fixture("loop_ops").Conv2d)
    monkeypatch.setattr(sandbox, "run", lambda job: sandbox.RunResult(status="sandbox-error", message="no uid free",
                                                                      isolation="process", seconds=0.0))
    with pytest.raises(GraderError, match="the measure stage could not run: no uid free"):
        measured_by_the_sandbox(obs, tmp_path)


def test_a_check_judged_on_a_measurement_says_so_and_one_without_says_observed():
    from grader.judging import judge_all

    obs = observed(load_fixture("loop_ops").Conv2d)
    writer = observations.ArrayWriter()
    record = observations.ProbeRecord.model_validate(
        {"check": "conv", "status": "observed", "data": writer.encode(obs.model_dump(mode="python"))})
    unmeasured = judge_all([conv_spec()], [record], writer.arrays, {}, "ok", "")
    assert unmeasured[0].basis == "observed"
    forged = Measured(seed=1, problem="the measure stage ended crash")
    measured = judge_all([conv_spec()], [record], writer.arrays, {}, "ok", "", measured={"conv": forged})
    assert measured[0].basis == "measured" and measured[0].points == 0.0


@pytest.mark.slow
def test_an_op_too_big_to_capture_on_the_full_input_is_measured_on_a_smaller_one(tmp_path, monkeypatch):
    from grader import artifacts

    loops = load_fixture("loop_ops").Conv2d
    monkeypatch.setattr(artifacts, "MAX_NODES", 140)  # full inputs trace to 390 and 146, the smaller ones to 98
    obs = observed(loops)
    assert all(run.graph is not None and run.graph_input for run in obs.runs), [r.graph_problem for r in obs.runs]
    assert obs.runs[0].graph_input == [1, 2, 4, 4] and obs.runs[1].graph_input == [1, 1, 4, 4]
    verdict = KIND.judge(conv_spec(), obs, None, measured_by_the_sandbox(obs, tmp_path))
    assert verdict.fraction == 1.0, verdict.message
    assert "measured on the smaller input [1, 2, 4, 4]" in str(verdict.table)
