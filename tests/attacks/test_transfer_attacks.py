"""The transfer attacks: a student who has read the grader's source tries to pass the check that a
ResNet18 holds its pretrained weights without building it with them. Before the check was
measured, a record carrying fingerprints computed from the weights file (readable in the sandbox)
scored full marks.

Every case is graded in one batch, in the namespace sandbox, with a hub cache of the test's own
holding a stand-in for torchvision's file, next to an honest model that must keep its marks. The
cases (``transfer/cases``): the record's capture dropped and the file's fingerprints at hand; the
pretrained network kept where the probe finds it while the forward uses another; and the record
rewritten to claim the weights file was missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.sandbox import namespace
from tests.attacks import batches
from tests.attacks.batches import checks_of

UIDS = batches.own_uids(75)
HERE = Path(__file__).parent / "transfer"
FILE = "resnet18-f37072fd.pth"

why_not = namespace.unavailable_reason()
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(why_not is not None, reason=f"the transfer attacks need the namespace sandbox: {why_not}")]

EXPECTED = {  # case -> score, of 2
    "honest": 2,
    "forges_the_fingerprints": 0,
    "keeps_the_weights_beside": 0,
    "claims_the_file_is_missing": 0,
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    import torch
    import torchvision

    home = tmp_path_factory.mktemp("torch-home")
    (home / "hub" / "checkpoints").mkdir(parents=True)
    torch.manual_seed(7)
    torch.save(torchvision.models.resnet18().state_dict(), home / "hub" / "checkpoints" / FILE)
    out = tmp_path_factory.mktemp("transfer-attacks")
    return batches.graded(HERE / "rubric.yaml", HERE / "cases", out, UIDS, env={"TORCH_HOME": str(home)})


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_each_case_gets_its_exact_score(graded, case):
    batches.assert_scored(graded[case], EXPECTED[case])


def test_the_honest_model_is_measured_and_unflagged(graded):
    check = checks_of(graded["honest"])["pretrained"]
    assert (check["outcome"], check["basis"], check["review"]) == ("passed", "measured", None), check
    assert "hold the pretrained weights of resnet18-f37072fd.pth" in check["message"]


def test_a_record_without_its_capture_earns_nothing_and_asks_a_person(graded):
    check = checks_of(graded["forges_the_fingerprints"])["pretrained"]
    assert "not measured: the run shipped no capture of the model" in check["message"], check
    assert check["review"]


def test_pretrained_weights_the_forward_never_reads_count_for_nothing(graded):
    check = checks_of(graded["keeps_the_weights_beside"])["pretrained"]
    assert check["outcome"] == "failed" and "not read by the model's forward at all" in check["message"], check


def test_a_claimed_missing_file_is_counted_and_flagged_not_skipped(graded):
    check = checks_of(graded["claims_the_file_is_missing"])["pretrained"]
    assert (check["outcome"], check["counted"]) == ("failed", True), check
    assert "graded 0 until a person looks" in check["message"] and check["review"]
