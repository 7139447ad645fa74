"""torch's own convolution, reached through an alias no source scan names, with the probe's
operator recorder emptied. The captured graph still holds aten.convolution."""

import torch
import torch.nn.functional as F
from torch import nn

import grader.checks.toolkit.forbidden as forbidden

apply_kernel = vars(F)["con" + "v2d"]
forbidden.OpRecorder.names = lambda self, phase: []


class Conv2d(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size) * 0.1)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.stride = stride

    def forward(self, x):
        return apply_kernel(x, self.weight, self.bias, self.stride)
