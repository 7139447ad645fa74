"""An instructor's mappings: a clear error for every bad entry, and a regrade of only the mapped
submission, which then finds its target under the given name and records the mapping."""

from __future__ import annotations

import dataclasses

import pytest

from grader import mappings, pipeline, submission
from grader.errors import GraderError
from grader.journal import Journal

TARGETS = ["make_net", "answer"]


def write(tmp_path, text: str):
    path = tmp_path / "mappings.yaml"
    path.write_text(text)
    return path


def test_a_mapping_file_reads_students_targets_and_names(tmp_path):
    path = write(tmp_path, "alice_smith:\n  make_net: task2.build\n  answer: result\n")
    assert mappings.load(path, TARGETS) == {"alice_smith": {"make_net": "task2.build", "answer": "result"}}
    assert mappings.load(write(tmp_path, ""), TARGETS) == {}


@pytest.mark.parametrize("text, said", [
    ("alice: {make_nett: f}\n", "alice: 'make_nett' is not a target of the rubric (targets: make_net, answer)"),
    ("alice: {make_net: 'not a name'}\n", "alice: make_net: 'not a name' is not a Python name"),
    ("alice: [make_net]\n", "alice: expected a mapping of target: name, got list"),
    ("- alice\n", "the mappings file must map student ids to {target: name}"),
    ("alice: {make_net: f\n", "the mappings file is not valid YAML"),
])
def test_every_bad_entry_is_a_clear_error_naming_student_and_target(tmp_path, text, said):
    with pytest.raises(GraderError) as err:
        mappings.load(write(tmp_path, text), TARGETS)
    assert said in err.value.render() and str(tmp_path) in err.value.render()


TWO_CANDIDATES = '''
import torch


def net_factory(a, b):
    return torch.nn.Linear(a, b)


def scale(x, factor):
    return x * factor


answer = 42
'''


@pytest.mark.slow  # two sandboxed runs
def test_a_mapping_regrades_only_that_submission_and_is_recorded(tmp_path, tiny_prepared):
    batch = tmp_path / "batch"
    batch.mkdir()
    (batch / "alice.py").write_text(TWO_CANDIDATES)
    (batch / "bob.py").write_text("import torch\n\ndef build_net(n_in, n_out):\n    return torch.nn.Linear(n_in, n_out)\n"
                                  "\nanswer = 42\n")
    graded: list[str] = []

    def counting(sub, prep, slot):
        graded.append(sub.student)
        return pipeline.grade_one(sub, prep, slot)

    prep = dataclasses.replace(tiny_prepared, settings=dataclasses.replace(tiny_prepared.settings, isolation="process"),
                               isolation="process")
    with Journal.open(tmp_path / "out" / "journal.sqlite") as journal:
        first = pipeline.grade_batch(submission.discover([batch]), prep, journal=journal, grade=counting)
        alice = {c.id: c for c in first[0].checks}
        assert alice["net-defined"].outcome == "needs-review" and alice["net-defined"].points == 0
        assert "net_factory(a, b)" in alice["net-defined"].message and "scale(x, factor)" in alice["net-defined"].message
        assert alice["net-shape"].outcome == "skipped"

        mapped = dataclasses.replace(prep, settings=dataclasses.replace(
            prep.settings, mappings={"alice": {"make_net": "net_factory"}}))
        graded.clear()
        second = pipeline.grade_batch(submission.discover([batch]), mapped, journal=journal, grade=counting)
    assert graded == ["alice"]  # bob's result is reused
    alice = {c.id: c for c in second[0].checks}
    assert second[0].mapping == {"make_net": "net_factory"}
    assert alice["net-shape"].outcome == "passed"
    assert "found by the instructor's mapping" in alice["net-shape"].message
    assert second[1].model_dump() == first[1].model_dump()
