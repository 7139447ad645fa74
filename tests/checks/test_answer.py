"""``answer``: judges on hand-made observations, probes on tiny in-memory namespaces."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

from grader.checks.answer import AnswerObservation, observe_value
from tests.checks.kinds import context, judge, probe, spec


def number(x: float, type_: str = "float") -> AnswerObservation:
    return AnswerObservation(type=type_, number=x)


def test_answer_exact_number_passes():
    v = judge("answer", spec("answer", target="x", expected=3136), number(3136.0, "int"))
    assert (v.fraction, v.message) == (1.0, "3136 is right")


def test_answer_wrong_number_says_by_how_much():
    v = judge("answer", spec("answer", target="x", expected=3136), number(3137.0, "int"))
    assert (v.fraction, v.message) == (0.0, "3137, expected 3136 (off by 1)")


@pytest.mark.parametrize("got, ok", [(1.099, True), (0.901, True), (1.101, False), (0.899, False)])
def test_answer_abs_tol_boundaries(got, ok):
    v = judge("answer", spec("answer", target="x", expected=1.0, abs_tol=0.1), number(got))
    assert (v.fraction == 1.0) is ok
    if not ok:
        assert v.message == f"{got:g}, expected 1 (off by {abs(got - 1.0):g})"


@pytest.mark.parametrize("got, ok", [(100.99, True), (99.01, True), (101.01, False), (98.99, False)])
def test_answer_rel_tol_boundaries(got, ok):
    v = judge("answer", spec("answer", target="x", expected=100, rel_tol=0.01), number(got))
    assert (v.fraction == 1.0) is ok, v.message


@pytest.mark.parametrize("got, ok", [(149.0, True), (51.0, True), (151.0, False), (49.0, False)])
def test_answer_rel_tol_is_relative_to_the_expected_value(got, ok):
    # 50 % of the expected 100 is 50: 151 and 49 are both 51 away and must both fail
    v = judge("answer", spec("answer", target="x", expected=100, rel_tol=0.5), number(got))
    assert (v.fraction == 1.0) is ok, v.message


def test_answer_text_where_a_number_is_expected():
    v = judge("answer", spec("answer", target="x", expected=3136), AnswerObservation(type="str", text="3136"))
    assert v.message == "the answer is a str, expected a number (3136)"


def test_answer_bool_expected_compares_as_number():
    assert judge("answer", spec("answer", target="x", expected=True), number(1.0, "bool")).fraction == 1.0
    assert judge("answer", spec("answer", target="x", expected=True), number(0.0, "bool")).fraction == 0.0


def test_answer_nan_fails():
    v = judge("answer", spec("answer", target="x", expected=1.0, abs_tol=1.0), number(math.nan))
    assert v.fraction == 0.0 and v.message.startswith("nan, expected 1")


def test_answer_against_the_reference():
    v = judge("answer", spec("answer", target="x", expected="reference"), number(3136.0), number(3136.0, "int"))
    assert v.fraction == 1.0


def test_answer_reference_without_value_is_a_rubric_error():
    v = judge("answer", spec("answer", target="x", expected="reference"), number(1.0), AnswerObservation(type="object"))
    assert v.message == "the expected answer has no comparable value (rubric error)"


def text(s: str) -> AnswerObservation:
    return AnswerObservation(type="str", text=s)


@pytest.mark.parametrize("match, expected, got, ok", [
    ("case-insensitive", "relu", "  ReLU \n", True),
    ("case-insensitive", "relu", "ReLU6", False),
    ("exact", "ReLU", " ReLU ", True),
    ("exact", "relu", "ReLU", False),
    ("contains", "relu", "I used ReLU activations", True),
    ("contains", "sigmoid", "I used ReLU activations", False),
    ("regex", r"^re?lu\b", "ReLU everywhere", True),
    ("regex", r"^tanh$", "ReLU", False),
])
def test_answer_text_matching(match, expected, got, ok):
    v = judge("answer", spec("answer", target="x", expected=expected, match=match), text(got))
    assert (v.fraction == 1.0) is ok
    shown = repr(got.strip())
    assert v.message == (f"{shown} is right" if ok else f"{shown} does not match the expected answer")


def test_answer_number_where_text_is_expected():
    v = judge("answer", spec("answer", target="x", expected="relu"), number(1.0, "int"))
    assert v.message.startswith("the answer is a int") and v.message.endswith("expected text")


def test_answer_long_text_is_shortened_in_the_message():
    v = judge("answer", spec("answer", target="x", expected="x", match="exact"), text("y" * 200))
    assert v.message == repr("y" * 77 + "...") + " does not match the expected answer"


def array(values: Any) -> AnswerObservation:
    return AnswerObservation(type="numpy.ndarray", array=np.asarray(values, dtype=np.float64))


def test_answer_array_passes():
    v = judge("answer", spec("answer", target="x", expected=[[1, 2], [3, 4]]), array([[1, 2], [3, 4]]))
    assert (v.fraction, v.message) == (1.0, "all 4 values are right")


def test_answer_array_names_the_first_difference():
    v = judge("answer", spec("answer", target="x", expected=[[1, 2], [3, 4]]), array([[1, 2], [3.5, 4.5]]))
    assert v.message == "2 of 4 values differ; first at [1, 0]: 3.5, expected 3"


def test_answer_array_within_tolerance():
    the_spec = spec("answer", target="x", expected=[1.0, 2.0], abs_tol=0.01)
    assert judge("answer", the_spec, array([1.009, 1.991])).fraction == 1.0
    assert judge("answer", the_spec, array([1.011, 2.0])).fraction == 0.0


def test_answer_array_of_the_wrong_shape():
    v = judge("answer", spec("answer", target="x", expected=[[1, 2], [3, 4]]), array([1, 2, 3, 4]))
    assert v.message == "the answer has shape [4], expected [2, 2]"


def test_answer_not_an_array_where_one_is_expected():
    v = judge("answer", spec("answer", target="x", expected=[1, 2]), text("1, 2"))
    assert v.message == "the answer is a str, expected an array of shape [2]"


class EqualToEverything(torch.Tensor):
    def __eq__(self, other):  # noqa: D105 - a cheat: equal to everything
        return True

def test_observe_value_reduces_tensors_and_refuses_subclasses():
    assert observe_value(torch.tensor(3.0)).number == 3.0
    assert observe_value(np.float32(2.5)).number == 2.5
    t = observe_value(torch.arange(4).reshape(2, 2))
    assert t.type == "torch.Tensor" and t.array.tolist() == [[0.0, 1.0], [2.0, 3.0]]
    rigged = observe_value(torch.zeros(2).as_subclass(EqualToEverything))
    assert (rigged.number, rigged.text, rigged.array) == (None, None, None)
    assert observe_value(object()).type == "object"


def test_answer_probe_of_a_value_target():
    obs = probe("answer", spec("answer", target="flatten_size", expected=3136), context(flatten_size=3136))
    assert obs == AnswerObservation(type="int", number=3136.0)
