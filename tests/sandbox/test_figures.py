"""How many plots a matplotlib figure counts as (counted in the kernel, read by the runner)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from grader.sandbox.figures import MAX_PLOTS, PLOTS_MIME, plots_in, plots_of_output  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_loss_and_accuracy_side_by_side_are_two_plots():
    fig, (loss, accuracy) = plt.subplots(1, 2)
    loss.plot([3, 2, 1])
    accuracy.plot([0.5, 0.7, 0.9])
    assert plots_in(fig) == 2


def test_a_grid_of_sample_images_is_one_plot():
    fig, axes = plt.subplots(2, 8)
    for ax in axes.flat:
        ax.imshow(np.zeros((4, 4)))
        ax.axis("off")
    assert plots_in(fig) == 1


def test_an_image_with_its_colorbar_is_one_plot():
    fig, ax = plt.subplots()
    fig.colorbar(ax.imshow(np.eye(3)), ax=ax)
    assert plots_in(fig) == 1


def test_a_heatmap_with_its_colorbar_is_one_plot():
    fig, ax = plt.subplots()
    fig.colorbar(ax.pcolormesh(np.eye(3)), ax=ax)
    assert plots_in(fig) == 1


def test_twin_axes_are_one_plot():
    fig, ax = plt.subplots()
    ax.plot([1, 2])
    ax.twinx().plot([3, 1])
    assert plots_in(fig) == 1


def test_empty_subplots_do_not_count_and_images_add_one():
    fig, axes = plt.subplots(1, 4)
    axes[0].bar([1, 2], [3, 4])
    axes[1].scatter([1, 2], [3, 4])
    axes[2].imshow(np.eye(2))
    axes[3].axis("off")
    assert plots_in(fig) == 3


def test_a_figure_with_only_text_still_counts_one():
    fig, ax = plt.subplots()
    ax.text(0.5, 0.5, "hello")
    assert plots_in(fig) == 1


@pytest.mark.parametrize(("told", "counted"), [
    ({"plots": 3}, 3), (None, 1), ({"plots": True}, 1), ({"plots": 0}, 1), ({"plots": -2}, 1),
    ({"plots": MAX_PLOTS + 1}, 1), ({"plots": "7"}, 1), ([3], 1)])
def test_the_runner_believes_only_a_sensible_count(told, counted):
    data = {"image/png": "iVBORw0KGgo="} | ({PLOTS_MIME: told} if told is not None else {})
    assert plots_of_output(data) == counted
