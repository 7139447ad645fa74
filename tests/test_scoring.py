"""grader.scoring: points for one check and totals, at the boundaries."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from grader.scoring import Totals, points_for, totals


@dataclass
class Row:
    points: float
    max_points: float
    visibility: str = "visible"
    counted: bool = True


# ---------------------------------------------------------------- points_for


@pytest.mark.parametrize("partial", [True, False])
def test_nothing_passed_earns_nothing(partial):
    assert points_for(3, 0.0, partial) == 0.0


@pytest.mark.parametrize("partial", [True, False])
def test_everything_passed_earns_all(partial):
    assert points_for(3, 1.0, partial) == 3.0


def test_partial_fraction_with_partial_credit_earns_the_share():
    assert points_for(3, 0.5, True) == 1.5
    assert points_for(1, 1 / 3, True) == 0.3333  # rounded to 4 places


def test_partial_fraction_without_partial_credit_earns_nothing():
    assert points_for(3, 0.5, False) == 0.0
    assert points_for(3, 0.9999, False) == 0.0


@pytest.mark.parametrize("fraction", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("partial", [True, False])
def test_check_worth_zero_points_earns_zero(fraction, partial):
    assert points_for(0, fraction, partial) == 0.0


@pytest.mark.parametrize("fraction", [-0.01, 1.01, -1.0, 2.0, math.nan, math.inf])
def test_fraction_outside_unit_interval_raises(fraction):
    with pytest.raises(ValueError, match="fraction must be within"):
        points_for(1, fraction, True)


# ---------------------------------------------------------------- totals


def test_totals_of_nothing():
    t = totals([])
    assert t == Totals(0.0, 0.0, 0.0, 0.0)
    assert t.percent == 100.0


def test_totals_split_visible_and_hidden():
    t = totals([Row(2, 2), Row(1, 3, "hidden"), Row(0.5, 1), Row(0, 4, "hidden")])
    assert (t.score, t.max_score) == (3.5, 10.0)
    assert (t.visible_score, t.visible_max) == (2.5, 3.0)
    assert t.percent == pytest.approx(35.0)


def test_totals_with_only_hidden_checks_have_empty_visible_part():
    t = totals([Row(1, 1, "hidden")])
    assert (t.visible_score, t.visible_max) == (0.0, 0.0)
    assert (t.score, t.max_score) == (1.0, 1.0)


def test_totals_are_rounded_sums():
    t = totals([Row(0.1, 0.1), Row(0.2, 0.2)])
    assert t.score == 0.3 and t.max_score == 0.3


def test_totals_with_zero_point_checks_only():
    t = totals([Row(0, 0), Row(0, 0, "hidden")])
    assert t == Totals(0.0, 0.0, 0.0, 0.0)
    assert t.percent == 100.0


def test_percent_of_zero_score():
    assert totals([Row(0, 4)]).percent == 0.0


def test_totals_accept_a_generator():
    assert totals(Row(1, 1) for _ in range(3)).score == 3.0


def test_a_check_not_counted_is_left_out_of_both_sides():
    t = totals([Row(2, 2), Row(0, 1, counted=False), Row(0, 3, "hidden", counted=False), Row(1, 2, "hidden")])
    assert t == Totals(3, 4, 2, 2)
    assert t.percent == 75.0
