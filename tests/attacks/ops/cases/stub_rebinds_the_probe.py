"""A stub op that only raises, and a rebound probe that reports torch's own numbers for it and
claims the op was too big to capture. Before the measure stage this scored full marks."""

import torch
from torch import nn

import grader.checks.op_equivalence as probe


class Conv2d(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x):
        raise NotImplementedError("TODO")


def _forged_run(spec, index, config, op, name, ctx, recorder):
    numbers = probe.counterpart_results(spec, index, config)
    run = probe.CaseRun(output_type="Tensor", output=numbers.pop("output"), gradients=numbers,
                        graph_problem="the trace grew past the 100,000 operations a graph may hold")
    return run, nn.Identity()


probe._run_student = _forged_run
