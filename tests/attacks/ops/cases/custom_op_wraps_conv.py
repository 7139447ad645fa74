"""torch's convolution wrapped in a custom operator of the student's own library, with a custom
backward run out of the recorders' sight: they see one opaque `attack::conv` call, not the
convolution inside."""

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import _disable_current_modes

apply_kernel = vars(F)["con" + "v2d"]
no_function_modes = vars(torch)["_" + "C"].DisableTorchFunction


@torch.library.custom_op("attack::conv", mutates_args=())
def opaque_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, stride: int) -> torch.Tensor:
    return apply_kernel(x, weight, bias, stride)


@opaque_conv.register_fake
def _(x, weight, bias, stride):
    return apply_kernel(x, weight, bias, stride)


def _setup(ctx, inputs, output):
    ctx.save_for_backward(inputs[0], inputs[1])
    ctx.stride = inputs[3]


def _backward(ctx, upstream):
    x, weight = ctx.saved_tensors
    with _disable_current_modes(), no_function_modes():  # kept from the operator recorder too
        grad_x = torch.nn.grad.conv2d_input(x.shape, weight, upstream, ctx.stride)
        grad_w = torch.nn.grad.conv2d_weight(x, weight.shape, upstream, ctx.stride)
        return grad_x, grad_w, upstream.sum((0, 2, 3)), None


opaque_conv.register_autograd(_backward, setup_context=_setup)


class Conv2d(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size) * 0.1)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.stride = stride

    def forward(self, x):
        return opaque_conv(x, self.weight, self.bias, self.stride)
