"""The op attacks: a student who has read the grader's source tries to pass a hand-written
Conv2d without writing one. Before the measure stage, several of these scored full marks.

Every case is graded in one batch, in the namespace sandbox, next to an honest op that must keep
its full marks. The cases (``ops/cases``): a stub whose probe is rebound to report torch's
numbers; torch's convolution through an alias with the operator recorder emptied; torch's
convolution and gradients computed with every dispatch mode switched off; torch's convolution
inside a custom operator of the student's own library; a convolution computed in numpy's compiled
code, as a C extension would; records rewritten on their way out; torch's
convolution called plainly, the records naming a harmless class as the one graded; and an honest
op that reads the job file, looking for the hidden check.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.sandbox import namespace
from tests.attacks import batches
from tests.attacks.batches import checks_of

UIDS = batches.own_uids(50)
HERE = Path(__file__).parent / "ops"

why_not = namespace.unavailable_reason()
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(why_not is not None, reason=f"the op attacks need the namespace sandbox: {why_not}")]

# case -> score, of 6 (conv 4, the hidden conv-hidden 2)
EXPECTED = {
    "honest_unfold": 6,
    "reads_the_job_file": 6,  # honest work: reading the job file gains nothing, but costs nothing either
    "stub_rebinds_the_probe": 0,
    "aliased_conv_scrubbed_recorder": 0,
    "hides_conv_from_the_tracer": 0,
    "rewrites_its_records": 0,
    "custom_op_wraps_conv": 0,
    "forges_the_graded_class": 0,
    "computes_in_numpys_c_code": 0,
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    out = tmp_path_factory.mktemp("op-attacks")
    return batches.graded(HERE / "rubric.yaml", HERE / "cases", out, UIDS)


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_each_case_gets_its_exact_score(graded, case):
    batches.assert_scored(graded[case], EXPECTED[case])


def test_a_rebound_probe_reporting_torchs_numbers_earns_nothing_and_asks_a_person(graded):
    conv = checks_of(graded["stub_rebinds_the_probe"])["conv"]
    assert "could not be measured, so earned nothing" in conv["review"]


def test_records_rewritten_with_schema_valid_values_earn_nothing(graded):
    conv = checks_of(graded["rewrites_its_records"])["conv"]
    assert conv["outcome"] == "failed" and "could not be measured" in conv["review"]


def test_torchs_convolution_is_found_in_the_graph_when_the_recorder_was_emptied(graded):
    conv = checks_of(graded["aliased_conv_scrubbed_recorder"])["conv"]
    assert conv["review"] == "forbidden implementation"
    assert "aten.convolution in the captured graph" in conv["message"]


def test_a_convolution_hidden_from_every_mode_matches_only_where_the_process_looked(graded):
    conv = checks_of(graded["hides_conv_from_the_tracer"])["conv"]
    assert "only on the inputs the student's process saw" in conv["review"]


def test_arithmetic_in_compiled_code_outside_torch_matches_only_where_the_process_looked(graded):
    conv = checks_of(graded["computes_in_numpys_c_code"])["conv"]
    assert "only on the inputs the student's process saw" in conv["review"], conv


def test_a_custom_operator_is_opaque_so_it_is_not_measured_and_earns_nothing(graded):
    conv = checks_of(graded["custom_op_wraps_conv"])["conv"]
    assert "could not be measured" in conv["review"] and "attack.conv is not an aten operator" in conv["review"]


def test_a_forged_graded_class_hides_nothing_from_the_graph_or_the_hosts_rescan(graded):
    conv = checks_of(graded["forges_the_graded_class"])["conv"]
    assert conv["review"] == "forbidden implementation", conv
    assert "aten.convolution in the captured graph" in conv["message"]


def test_the_job_file_holds_no_hidden_title_or_tolerance(graded):
    printed = graded["reads_the_job_file"]["stdout"]
    assert "JOB FILE:" in printed and '"conv-hidden"' in printed  # it did read the job
    assert "HIDDEN-TITLE" not in printed and "3.25e-05" not in printed and '"points"' not in printed


def test_the_host_scan_flags_every_case_that_reached_into_the_grader(graded):
    reached = {case for case, result in graded.items() if any(f["rule"] == "grader" for f in result.get("flags", []))}
    assert reached == {"stub_rebinds_the_probe", "aliased_conv_scrubbed_recorder", "rewrites_its_records",
                       "forges_the_graded_class"}
