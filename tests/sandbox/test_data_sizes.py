"""Literal split sizes written for the real data set fit the synthetic stand-in (``sandbox.data_sizes``)."""

from __future__ import annotations

import pytest
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
    monkeypatch.setattr(data.DataLoader, "__init__", data.DataLoader.__init__)
    assert data_sizes.install()
    full = data.TensorDataset(torch.zeros(2000, 1))
    train, val = data.random_split(full, [50000, 10000], generator=torch.Generator().manual_seed(0))
    assert (len(train), len(val)) == (1667, 333)
    assert not set(train.indices) & set(val.indices)


@pytest.mark.parametrize("items, batch_size, keeps", [
    (200, 256, True),    # a 10% validation split of the 2,000 stand-in: 6,000 images at the real size
    (300, 256, False),   # fills a batch: drop_last as written
    (4, 256, False),     # 4 items stand for 120 at most: the real set would not fill a batch either
    (0, 256, False), (200, None, False), (200, True, False),
])
def test_a_drop_last_loader_keeps_its_short_batch_only_where_the_real_set_fills_one(items, batch_size, keeps):
    assert data_sizes.keeps_short_batch(items, batch_size, FASHION) is keeps


def test_installed_loader_over_a_small_split_still_yields_a_batch(monkeypatch):
    """The original failure: a drop_last validation loader over a stand-in's 10% split was empty,
    and the epoch's average loss divided by zero."""
    monkeypatch.setenv(data_sizes.ENV, data_sizes.env_for(FASHION)[data_sizes.ENV])
    monkeypatch.setattr(dataset_module, "random_split", dataset_module.random_split)
    monkeypatch.setattr(data, "random_split", data.random_split)
    monkeypatch.setattr(data.DataLoader, "__init__", data.DataLoader.__init__)
    val = data.TensorDataset(torch.zeros(200, 1))
    assert len(data.DataLoader(val, batch_size=256, drop_last=True)) == 0  # torch's own behaviour
    assert data_sizes.install()
    assert [len(x) for x, in data.DataLoader(val, batch_size=256, drop_last=True)] == [200]
    train = data.TensorDataset(torch.zeros(1800, 1))
    assert [len(x) for x, in data.DataLoader(train, batch_size=256, drop_last=True)] == [256] * 7


def test_without_a_stand_in_nothing_is_wrapped(monkeypatch):
    monkeypatch.delenv(data_sizes.ENV, raising=False)
    assert not data_sizes.install()
    assert data_sizes.env_for([]) == {}


def test_host_notes_name_the_scaled_call():
    code = "from torch.utils.data import random_split\ntr, va = random_split(full, [50000, 10000])\n"
    notes = data_sizes.notes_for([("cell 4", code), ("cell 5", "random_split(full, [0.8, 0.2])")], FASHION)
    assert notes == ["cell 4, line 2: random_split(..., [50000, 10000]) is sized for the real 60,000 images; the "
                     "synthetic stand-in has 2,000, so the lengths were scaled to [1667, 333]"]


def test_host_notes_name_a_drop_last_loader_only_on_a_stand_in():
    code = "val_loader = DataLoader(val, batch_size=256, drop_last=True)\nDataLoader(val, drop_last=False)\n"
    notes = data_sizes.notes_for([("cell 3", code)], FASHION)
    assert len(notes) == 1 and notes[0].startswith("cell 3, line 1: DataLoader(..., drop_last=True): on the synthetic")
    assert data_sizes.notes_for([("cell 3", code)], []) == []


@pytest.mark.parametrize("dataset", sorted(synthetic.RECIPES))
def test_every_stand_in_gives_batches_wherever_the_real_set_does(dataset, monkeypatch):
    """Split sizes and batch counts as handouts write them (a 10% or 20% validation split, in
    literal real sizes or fractions; batches of 32 to 512; drop_last or not): every loader over a
    stand-in's split yields a batch, as it would on the real data set."""
    pairs = synthetic.stand_ins(dataset)
    monkeypatch.setenv(data_sizes.ENV, data_sizes.env_for(pairs)[data_sizes.ENV])
    monkeypatch.setattr(dataset_module, "random_split", dataset_module.random_split)
    monkeypatch.setattr(data, "random_split", data.random_split)
    monkeypatch.setattr(data.DataLoader, "__init__", data.DataLoader.__init__)
    assert data_sizes.install()
    (real_train, train_size), (real_test, test_size) = pairs
    full, test = data.TensorDataset(torch.zeros(train_size, 1)), data.TensorDataset(torch.zeros(test_size, 1))
    for fraction in (0.1, 0.2):
        held_out = int(real_train * fraction)
        for lengths in ([real_train - held_out, held_out], [1 - fraction, fraction]):
            sets = [*data.random_split(full, lengths, generator=torch.Generator().manual_seed(0)), test]
            for part in sets:
                for batch_size in (32, 64, 100, 128, 256, 512):
                    for drop_last in (False, True):
                        loader = data.DataLoader(part, batch_size=batch_size, drop_last=drop_last)
                        assert len(loader) >= 1 and len(list(loader)) == len(loader), (lengths, batch_size, drop_last)
