"""Torchvision data sets find the grader's data wherever the student's code looks, without a network."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from grader import data
from grader.data import synthetic
from grader.sandbox import data_paths

LOADS_FROM_HOME = textwrap.dedent('''
    import torchvision
    from grader.sandbox import data_paths
    assert data_paths.install()
    test = torchvision.datasets.MNIST("~/.pytorch/MNIST_data/", train=False, download=True)
    same = torchvision.datasets.MNIST(root="/content/drive/MyDrive/data", train=False)
    print(len(test), len(same), data_paths.redirected)
''')


def test_a_home_path_with_download_reads_the_served_copy_offline(tmp_path):
    root = synthetic.ensure("mnist", data.synthetic_root())
    env = {**os.environ, data_paths.ENV: str(root), "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", LOADS_FROM_HOME], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    count = done.stdout.split()[0]
    assert int(count) > 0 and done.stdout.split()[1] == count
    assert "MNIST(root='~/.pytorch/MNIST_data/')" in done.stdout and "/content/drive/MyDrive/data" in done.stdout
    assert not (tmp_path / ".pytorch").exists()  # nothing was downloaded or created there


def test_what_the_run_reports_is_each_replaced_call_once_and_cut_short(monkeypatch):
    calls = ["MNIST(root='a')", "MNIST(root='a')", "CIFAR10(root='" + "x" * 400 + "')"] + \
            [f"MNIST(root='{i}')" for i in range(30)]
    monkeypatch.setattr(data_paths, "redirected", calls)
    served = data_paths.served()
    assert served[0] == "MNIST(root='a')" and served[1].startswith("CIFAR10(root='xxx") and len(served[1]) == 300
    assert len(served) == data_paths.MAX_SHOWN


def test_a_root_that_holds_the_data_is_left_as_the_student_wrote_it(tmp_path):
    import torchvision

    root = synthetic.ensure("mnist", tmp_path / "only-mnist")
    assert data_paths.holds(torchvision.datasets.MNIST, str(root))
    assert not data_paths.holds(torchvision.datasets.FashionMNIST, str(root))
    assert not data_paths.holds(torchvision.datasets.CIFAR10, str(tmp_path))


def test_only_code_that_uses_torchvision_datasets_gets_the_wrapping():
    assert data_paths.wanted_by(["from torchvision import datasets", "x = 1"])
    assert not data_paths.wanted_by(["import torch\nx = torch.zeros(3)"])
