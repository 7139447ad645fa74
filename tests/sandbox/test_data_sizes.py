"""Literal split sizes written for the real data set fit the synthetic stand-in (``sandbox.data_sizes``)."""

from __future__ import annotations

import torch
import torch.utils.data as data
import torch.utils.data.dataset as dataset_module

from grader.data import synthetic
from grader.sandbox import data_sizes

FASHION = synthetic.stand_ins("fashion-mnist")  # [(60000, 2000), (10000, 500)]


def test_fashion_stand_in_sizes_are_known():
    assert FASHION == [(60000, 2000), (10000, 500)]
    assert synthetic.stand_ins("cifar10") == [(50000, 2000), (10000, 500)]


def test_tutorial_split_is_scaled_in_proportion_and_adds_up():
    assert data_sizes.scale([50000, 10000], 2000, FASHION) == [1667, 333]
    assert data_sizes.scale([48000, 6000, 6000], 2000, FASHION) == [1600, 200, 200]


def test_split_of_a_scaled_split_is_scaled_too():
    # random_split(train, [45000, 5000]) after [50000, 10000]: 1,667 items stand for 50,000.
    assert sum(data_sizes.scale([45000, 5000], 1667, FASHION)) == 1667


def test_lengths_that_already_fit_or_are_fractions_are_left_to_torch():
    assert data_sizes.scale([1600, 400], 2000, FASHION) is None
    assert data_sizes.scale([0.8, 0.2], 2000, FASHION) is None
    assert data_sizes.scale([True, False], 2000, FASHION) is None


def test_a_students_wrong_sum_is_not_hidden():
    # 59,000 is no real size: torch's own error must reach the student.
    assert data_sizes.scale([50000, 9000], 2000, FASHION) is None


def test_installed_random_split_takes_real_sizes_on_the_stand_in(monkeypatch):
    monkeypatch.setenv(data_sizes.ENV, data_sizes.env_for(FASHION)[data_sizes.ENV])
    monkeypatch.setattr(dataset_module, "random_split", dataset_module.random_split)
    monkeypatch.setattr(data, "random_split", data.random_split)
    assert data_sizes.install()
    full = data.TensorDataset(torch.zeros(2000, 1))
    train, val = data.random_split(full, [50000, 10000], generator=torch.Generator().manual_seed(0))
    assert (len(train), len(val)) == (1667, 333)
    assert not set(train.indices) & set(val.indices)


def test_without_a_stand_in_nothing_is_wrapped(monkeypatch):
    monkeypatch.delenv(data_sizes.ENV, raising=False)
    assert not data_sizes.install()
    assert data_sizes.env_for([]) == {}


def test_host_notes_name_the_scaled_call():
    code = "from torch.utils.data import random_split\ntr, va = random_split(full, [50000, 10000])\n"
    notes = data_sizes.notes_for([("cell 4", code), ("cell 5", "random_split(full, [0.8, 0.2])")], FASHION)
    assert notes == ["cell 4, line 2: random_split(..., [50000, 10000]) is sized for the real 60,000 images; the "
                     "synthetic stand-in has 2,000, so the lengths were scaled to [1667, 333]"]
