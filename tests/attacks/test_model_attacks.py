"""The model attacks: a student who has read the grader's source tries to pass the shape and
parameter-count checks of a small network without building a right one, or the accuracy check of
a classifier without training one. Before ``shape`` and ``param_count`` were measured, rewriting
the records scored full marks; before ``accuracy`` was scored on images the sandbox never holds,
a network that looked its answers up in the data folder's test split scored 1.000.

Every case is graded in one batch, in the namespace sandbox, next to an honest network that must
keep its full marks. The cases (``models/cases``): records rewritten with the right shapes and
count and no capture; records rewritten with graphs forged to return zeros of the right shape,
beside a weights list padded to the right count; and records rewritten with a faithful capture of
another, right network: measuring cannot tell that one from the submitted network, and the host's
scan of the code is what puts it before a person; a classifier that answers with the stored
label of the identical test image (``looks_up_test_labels``); and a classifier that cannot learn,
its record claiming a GPU the run never had (``forges_the_device``); and the libraries a probe
writes with (json, numpy, builtins) patched to put the right values in the records.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.sandbox import namespace
from tests.attacks import batches
from tests.attacks.batches import checks_of

UIDS = batches.own_uids(25)
HERE = Path(__file__).parent / "models"

why_not = namespace.unavailable_reason()
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(why_not is not None, reason=f"the model attacks need the namespace sandbox: {why_not}")]

# case -> score, of 6 (net-shape 2, net-params 2, classifier-accuracy 2; only two cases define a classifier)
EXPECTED = {
    "honest": 6,
    "rewrites_its_records": 0,
    "forged_constant_graph": 0,
    "forged_graph_of_another_model": 4,  # measuring's limit: a real computation of a right network (flagged below)
    "looks_up_test_labels": 4,  # its honest Net; the classifier finds none of the scored images in the test split
    "forges_the_device": 4,  # its honest Net; the classifier fails, judged for the CPU the run was given
    "monkeypatches_json_numpy_builtins": 0,
    "trains_longer_in_its_own_process": 4,  # its honest Net; the measure stage trains the classifier as asked
    "trains_in_its_constructor": 6,  # a network that does reach the accuracy; put before a person (below)
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    out = tmp_path_factory.mktemp("model-attacks")
    return batches.graded(HERE / "rubric.yaml", HERE / "cases", out, UIDS)


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_each_case_gets_its_exact_score(graded, case):
    batches.assert_scored(graded[case], EXPECTED[case])


def test_the_honest_network_is_measured_and_unflagged(graded):
    checks = checks_of(graded["honest"])
    assert checks["net-shape"]["review"] is None and checks["net-params"]["review"] is None
    assert checks["net-params"]["message"] == "58 learnable parameters"
    accuracy = checks["classifier-accuracy"]
    assert (accuracy["outcome"], accuracy["basis"], accuracy["review"]) == ("passed", "measured", None), accuracy
    assert "on 300 held-out synthetic images" in accuracy["message"]


def test_a_classifier_that_looks_up_the_test_labels_finds_none_of_the_scored_images(graded):
    accuracy = checks_of(graded["looks_up_test_labels"])["classifier-accuracy"]
    assert (accuracy["outcome"], accuracy["basis"]) == ("failed", "measured"), accuracy
    scored = float(accuracy["message"].split()[1])
    assert scored < 0.2 and "on 300 held-out synthetic images" in accuracy["message"]
    assert all(row["as 0"] == row["images"] for row in accuracy["table"])  # it answered class 0 to every image


def test_a_forged_device_neither_skips_the_check_nor_picks_another_calibration(graded):
    accuracy = checks_of(graded["forges_the_device"])["classifier-accuracy"]
    assert (accuracy["outcome"], accuracy["counted"]) == ("failed", True), accuracy
    assert "(calibrated over 30 seeds" in accuracy["message"]
    assert "cuda" not in accuracy["message"]  # the measure stage trained it, on the CPU the host gave the run


def test_a_harness_loop_rebound_in_the_students_process_trains_nothing(graded):
    """The harness trains in the measure stage: the loop the student's code rebound never runs."""
    accuracy = checks_of(graded["trains_longer_in_its_own_process"])["classifier-accuracy"]
    assert (accuracy["outcome"], accuracy["basis"], accuracy["counted"]) == ("failed", "measured", True), accuracy
    assert float(accuracy["message"].split()[1]) < 0.3


def test_a_network_trained_before_the_harness_saw_it_keeps_its_points_and_asks_a_person(graded):
    accuracy = checks_of(graded["trains_in_its_constructor"])["classifier-accuracy"]
    assert accuracy["outcome"] == "passed", accuracy
    assert accuracy["review"].startswith("before the harness trained it, the network as the student's code built it "
                                         "already scored"), accuracy
    honest = checks_of(graded["honest"])["classifier-accuracy"]
    assert honest["review"] is None


def test_the_lookup_is_right_on_every_image_of_the_test_split_the_run_can_read(tmp_path, monkeypatch):
    """The attack is real: on the images under the data folder, the classifier is never wrong."""
    import runpy

    import torch

    from grader import data

    (tmp_path / "data").symlink_to(data.resolve("mnist", None, allow_synthetic=True).path)
    monkeypatch.chdir(tmp_path)
    module = runpy.run_path(str(HERE / "cases" / "looks_up_test_labels.py"))
    classifier = module["Classifier"]()
    from torchvision import datasets

    test = datasets.MNIST("data", train=False)
    with torch.no_grad():
        answers = classifier(test.data[:, None].float() / 255).argmax(1)
    assert torch.equal(answers, test.targets)


def test_records_rewritten_without_a_capture_earn_nothing_and_ask_a_person(graded):
    checks = checks_of(graded["rewrites_its_records"])
    assert "the run shipped no capture of the model" in checks["net-shape"]["message"]
    assert "2 input shape(s) the run reported as matching could not be measured" in checks["net-shape"]["review"]
    assert checks["net-params"]["review"].startswith("the count the run reported as matching could not be measured")


def test_records_forged_through_patched_json_numpy_and_builtins_earn_nothing(graded):
    checks = checks_of(graded["monkeypatches_json_numpy_builtins"])
    assert "the run shipped no capture of the model" in checks["net-shape"]["message"], checks["net-shape"]
    assert checks["net-params"]["points"] == 0 and checks["net-params"]["review"]


def test_graphs_forged_to_return_the_right_shape_from_nothing_are_refused(graded):
    checks = checks_of(graded["forged_constant_graph"])
    for check in ("net-shape", "net-params"):
        assert "the graph's output does not depend on its input" in checks[check]["message"], checks[check]


def test_a_capture_of_another_network_is_what_the_hosts_scan_puts_before_a_person(graded):
    reached = {case for case, result in graded.items() if any(f["rule"] == "grader" for f in result.get("flags", []))}
    assert reached == {"rewrites_its_records", "forged_constant_graph", "forged_graph_of_another_model",
                       "forges_the_device", "monkeypatches_json_numpy_builtins", "trains_longer_in_its_own_process"}
