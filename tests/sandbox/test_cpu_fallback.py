"""cpu_fallback: code written for a GPU runs on the CPU, and what asked for CUDA is named."""

from __future__ import annotations

import torch
from torch import nn

from grader.sandbox import cpu_fallback


def test_mentions_name_the_lines_that_ask_for_cuda_and_skip_comments():
    texts = [("cell 2", 'device = "cuda"\n# model.cuda() was too slow\nnet.cuda()\n'),
             ("cell 3", "dev = torch.device('cuda:1')\nprint('cudas are fish')\n")]
    assert cpu_fallback.mentions(texts) == ['cell 2: device = "cuda"', "cell 2: net.cuda()",
                                            "cell 3: dev = torch.device('cuda:1')"]
    assert cpu_fallback.mentions([("m.py", "x = 1\n")]) == []


def test_every_common_way_of_asking_for_cuda_lands_on_the_cpu():
    with cpu_fallback.redirecting() as mode:
        device = torch.device("cuda")
        net = nn.Linear(3, 2).to(device)
        other = nn.Linear(3, 2).cuda()
        inputs = [torch.zeros(4, 3, device=device), torch.randn(4, 3).to(device), torch.randn(4, 3).cuda(),
                  torch.randn(4, 3).to("cuda:0", non_blocking=True), torch.randn(4, 3).to(device, torch.float32)]
        out = sum(net(x) + other(x) for x in inputs)
        out.sum().backward()
    assert out.device.type == "cpu" and net.weight.grad is not None
    assert type(mode).redirected >= 7


def test_cpu_code_is_left_alone():
    with cpu_fallback.redirecting() as mode:
        x = torch.ones(2, device="cpu").to("cpu", torch.float64)
    assert x.dtype == torch.float64 and type(mode).redirected == 0
