"""An honest hand-written convolution (unfold and a matrix product): full marks."""

import torch
import torch.nn.functional as F
from torch import nn


class Conv2d(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size) * 0.1)
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x):
        batch, _, height, width = x.shape
        k, s = self.kernel_size, self.stride
        windows = F.unfold(x, kernel_size=k, stride=s)
        out = self.weight.reshape(self.weight.shape[0], -1) @ windows + self.bias.reshape(1, -1, 1)
        return out.reshape(batch, -1, (height - k) // s + 1, (width - k) // s + 1)
