"""torch's convolution and its gradients, reached through aliases no source scan names and computed
with every dispatch and function mode switched off (the operator recorder's too), inside a custom autograd
function: right on the inputs the probe used, constants in the captured graph."""

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import _disable_current_modes

apply_kernel = vars(F)["con" + "v2d"]
no_function_modes = vars(torch)["_" + "C"].DisableTorchFunction


class _Hidden(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride):
        ctx.save_for_backward(x, weight)
        ctx.stride = stride
        with _disable_current_modes(), no_function_modes():
            return apply_kernel(x, weight, bias, stride)

    @staticmethod
    def backward(ctx, upstream):
        x, weight = ctx.saved_tensors
        with _disable_current_modes(), no_function_modes():
            grad_x = torch.nn.grad.conv2d_input(x.shape, weight, upstream, ctx.stride)
            grad_w = torch.nn.grad.conv2d_weight(x, weight.shape, upstream, ctx.stride)
            return grad_x, grad_w, upstream.sum((0, 2, 3)), None


class Conv2d(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size) * 0.1)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.stride = stride

    def forward(self, x):
        return _Hidden.apply(x, self.weight, self.bias, self.stride)
