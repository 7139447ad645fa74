"""A convolution whose arithmetic runs in numpy's compiled code, forward and backward, inside a
custom autograd function: right on the inputs the probe used, but none of it is a torch operator,
so the captured graph holds its results as constants, and they are wrong on fresh inputs. The
same holds for any C extension that computes outside torch's dispatcher."""

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
from torch import nn


def _windows(x, size, stride):
    return sliding_window_view(x, (size, size), axis=(2, 3))[:, :, ::stride, ::stride]


class _InNumpy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride):
        xs, ws = x.detach().numpy(), weight.detach().numpy()
        ctx.stride, ctx.shape, ctx.xs, ctx.ws = stride, xs.shape, xs, ws
        out = np.einsum("nchwij,ocij->nohw", _windows(xs, ws.shape[2], stride), ws) + bias.detach().numpy()[:, None, None]
        return torch.from_numpy(np.ascontiguousarray(out))

    @staticmethod
    def backward(ctx, upstream):
        g, xs, ws, stride = upstream.detach().numpy(), ctx.xs, ctx.ws, ctx.stride
        size = ws.shape[2]
        grad_w = np.einsum("nohw,nchwij->ocij", g, _windows(xs, size, stride))
        grad_x = np.zeros(ctx.shape, dtype=xs.dtype)
        height, width = g.shape[2], g.shape[3]
        for i in range(size):
            for j in range(size):
                grad_x[:, :, i:i + stride * height:stride, j:j + stride * width:stride] += \
                    np.einsum("nohw,oc->nchw", g, ws[:, :, i, j])
        return torch.from_numpy(grad_x), torch.from_numpy(grad_w), torch.from_numpy(g.sum((0, 2, 3))), None


class Conv2d(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size) * 0.1)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.stride = stride

    def forward(self, x):
        return _InNumpy.apply(x, self.weight, self.bias, self.stride)
