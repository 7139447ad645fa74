"""grader.rubric: loading, validation and one precise message per problem."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from grader import checks, rubric
from grader.errors import GraderError, RubricError
from grader.paths import PROJECT_ROOT
from tests.conftest import FIXTURES

# A minimal valid rubric: one target, one check. Tests derive broken variants from it.
MINIMAL = """\
assignment: demo
title: Demo
reference: ref
targets:
  net:
    name: make_net
checks:
  - id: net-shape
    kind: shape
    target: net
    input: [B, 4]
    output: [B, 2]
    points: 1
"""

KINDS = ", ".join(checks.REGISTRY)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based number of the line holding the ``occurrence``-th ``needle``."""
    hits = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    return hits[occurrence - 1]


def problems_of(path: Path) -> list[str]:
    with pytest.raises(RubricError) as info:
        rubric.load(path)
    assert info.value.path.startswith(str(path))
    assert str(path) in str(info.value)
    return info.value.problems


# ---------------------------------------------------------------- valid rubrics


def test_minimal_rubric_loads(tmp_path):
    path = write(tmp_path, "minimal.yaml", MINIMAL)
    loaded = rubric.load(path)
    assert loaded.model.assignment == "demo"
    assert list(loaded.checks_by_id) == ["net-shape"]
    assert loaded.model.max_points == 1
    assert loaded.reference_dir == (tmp_path / "ref").resolve()
    assert len(loaded.text_hash) == 64


def test_text_hash_changes_with_content(tmp_path):
    a = rubric.load(write(tmp_path, "a.yaml", MINIMAL))
    b = rubric.load(write(tmp_path, "b.yaml", MINIMAL.replace("points: 1", "points: 2")))
    assert a.text_hash != b.text_hash


def test_bundled_fc_vs_cnn_rubric_loads():
    loaded = rubric.load(PROJECT_ROOT / "rubrics" / "fc-vs-cnn.yaml")
    assert loaded.model.assignment == "fc-vs-cnn"
    assert "fc-shape" in loaded.checks_by_id
    assert loaded.reference_dir == (PROJECT_ROOT / "reference" / "fc-vs-cnn").resolve()
    for check in loaded.model.checks:
        assert set(check.target_refs()) <= set(loaded.model.targets)


def test_json_schema_lists_every_check_kind():
    schema = rubric.json_schema()
    mapping = schema["properties"]["checks"]["items"]["discriminator"]["mapping"]
    assert set(mapping) == set(checks.REGISTRY)
    assert {"ShapeSpec", "ParamCountSpec", "AnswerSpec", "TargetSpec"} <= set(schema["$defs"])


# ---------------------------------------------------------------- one error type per test


def test_unknown_kind_suggests_the_close_one(tmp_path):
    text = MINIMAL.replace("kind: shape", "kind: shapes")
    problems = problems_of(write(tmp_path, "unknown_kind.yaml", text))
    line = line_of(text, "kind: shapes")
    assert problems == [f"line {line}: check 'net-shape' (checks[0]), field 'kind': unknown check kind 'shapes' "
                        f"(did you mean 'shape'?); expected one of: {KINDS}"]


def test_unknown_kind_without_close_match_has_no_suggestion(tmp_path):
    text = MINIMAL.replace("kind: shape", "kind: zzzzzz")
    (problem,) = problems_of(write(tmp_path, "unknown_far_kind.yaml", text))
    assert "unknown check kind 'zzzzzz'; expected one of: " + KINDS in problem
    assert "did you mean" not in problem


def test_check_without_kind_lists_the_kinds(tmp_path):
    text = MINIMAL.replace("    kind: shape\n", "")
    problems = problems_of(write(tmp_path, "no_kind.yaml", text))
    assert problems == [f"line 8: check 'net-shape' (checks[0]): the check has no 'kind'; expected one of: {KINDS}"]


def test_shape_check_without_input_is_a_missing_field(tmp_path):
    text = MINIMAL.replace("    input: [B, 4]\n", "")
    problems = problems_of(write(tmp_path, "shape_without_input.yaml", text))
    assert problems == ["line 8: check 'net-shape' (checks[0]), field 'input': required field is missing"]


def test_missing_top_level_field(tmp_path):
    text = MINIMAL.replace("title: Demo\n", "")
    problems = problems_of(write(tmp_path, "no_title.yaml", text))
    assert problems == ["line 1, field 'title': required field is missing"]


def test_points_of_wrong_type(tmp_path):
    text = MINIMAL.replace("points: 1", 'points: "many"')
    problems = problems_of(write(tmp_path, "points_many.yaml", text))
    line = line_of(text, "points:")
    assert problems == [f"line {line}: check 'net-shape' (checks[0]), field 'points': Input should be a valid number, "
                        f"unable to parse string as a number (got 'many')"]


def test_negative_points(tmp_path):
    text = MINIMAL.replace("points: 1", "points: -1")
    (problem,) = problems_of(write(tmp_path, "negative_points.yaml", text))
    assert problem == (f"line {line_of(text, 'points:')}: check 'net-shape' (checks[0]), field 'points': "
                       f"Input should be greater than or equal to 0 (got -1)")


def test_duplicate_check_id(tmp_path):
    text = MINIMAL + """\
  - id: net-shape
    kind: defined
    target: net
    points: 1
"""
    problems = problems_of(write(tmp_path, "duplicate_id.yaml", text))
    line = line_of(text, "id: net-shape", occurrence=2)
    assert problems == [f"line {line}: check 'net-shape' (checks[1]), field 'id': duplicate check id; "
                        f"first used by checks[0]"]


def test_check_refers_to_undefined_target(tmp_path):
    text = MINIMAL.replace("target: net", "target: nett")
    problems = problems_of(write(tmp_path, "undefined_target.yaml", text))
    line = line_of(text, "target: nett")
    assert problems == [f"line {line}: check 'net-shape' (checks[0]), field 'target': no target 'nett' in "
                        f"`targets:` (did you mean 'net'?); defined: net"]


def test_unknown_check_field_suggests_the_close_one(tmp_path):
    text = MINIMAL.replace("    points: 1\n", "    points: 1\n    ouput: [B, 2]\n")
    problems = problems_of(write(tmp_path, "typo_field.yaml", text))
    line = line_of(text, "ouput:")
    assert problems == [f"line {line}: check 'net-shape' (checks[0]), field 'ouput': unknown field "
                        f"(did you mean 'output'?)"]


def test_unknown_top_level_field_suggests_the_close_one(tmp_path):
    text = MINIMAL + "seeds: 3\n"
    problems = problems_of(write(tmp_path, "typo_top_level.yaml", text))
    assert problems == [f"line {line_of(text, 'seeds:')}, field 'seeds': unknown field (did you mean 'seed'?)"]


def test_unknown_target_field_suggests_the_close_one(tmp_path):
    text = MINIMAL.replace("    name: make_net\n", "    name: make_net\n    alias: [net]\n")
    problems = problems_of(write(tmp_path, "typo_target_field.yaml", text))
    assert problems == [f"line {line_of(text, 'alias:')}, field 'targets.net.alias': unknown field "
                        f"(did you mean 'aliases'?)"]


def test_target_without_a_way_to_find_it(tmp_path):
    text = MINIMAL.replace("    name: make_net\n", "    kind: class\n")
    (problem,) = problems_of(write(tmp_path, "target_without_name.yaml", text))
    assert problem.startswith("line 6, field 'targets.net': ")  # the target's body
    assert "give at least one of name, aliases, signature or contract" in problem


def test_requires_names_a_later_check(tmp_path):
    text = MINIMAL.replace("    points: 1\n", "    points: 1\n    requires: [net-defined]\n") + """\
  - id: net-defined
    kind: defined
    target: net
    points: 1
"""
    problems = problems_of(write(tmp_path, "requires_later_check.yaml", text))
    line = line_of(text, "requires:")
    assert problems == [f"line {line}: check 'net-shape' (checks[0]), field 'requires': 'net-defined' "
                        f"is not the id of an earlier check"]


def test_requires_names_an_unknown_check(tmp_path):
    text = MINIMAL.replace("    points: 1\n", "    points: 1\n    requires: [nope]\n")
    (problem,) = problems_of(write(tmp_path, "requires_unknown_check.yaml", text))
    assert problem.endswith("check 'net-shape' (checks[0]), field 'requires': 'nope' is not the id of an earlier check")


def test_invalid_yaml_syntax_names_line_and_column(tmp_path):
    text = MINIMAL.replace("    kind: shape", "  kind: shape")  # dedented into the list item
    path = write(tmp_path, "invalid_yaml.yaml", text)
    with pytest.raises(RubricError) as info:
        rubric.load(path)
    line = line_of(text, "  kind: shape")
    assert info.value.path == f"{path}:{line}:3"
    assert info.value.problems == ["not valid YAML: expected <block end>, but found '?'"]


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", ""], ids=["list", "scalar", "empty"])
def test_rubric_that_is_not_a_mapping(tmp_path, text):
    path = write(tmp_path, "not_a_mapping.yaml", text)
    assert problems_of(path) == ["the rubric must be a mapping with `assignment`, `targets` and `checks`"]


def test_missing_rubric_file_is_a_grader_error(tmp_path):
    path = tmp_path / "missing.yaml"
    with pytest.raises(GraderError) as info:
        rubric.load(path)
    assert not isinstance(info.value, RubricError)
    assert info.value.what == "rubric file not found"
    assert info.value.where == str(path)
    assert info.value.hint


def test_undecodable_rubric_file_is_a_grader_error(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"\xff\xfe title: x")
    with pytest.raises(GraderError, match="cannot read the rubric"):
        rubric.load(path)


def test_check_that_is_not_a_mapping_names_the_entry(tmp_path):
    text = MINIMAL.split("checks:")[0] + "checks:\n  - just-a-string\n"
    (problem,) = problems_of(write(tmp_path, "check_not_a_mapping.yaml", text))
    assert problem.startswith("line 8: checks[0]")
    assert "field ''" not in problem


# ---------------------------------------------------------------- several problems


def test_several_field_problems_give_one_message_each(tmp_path):
    text = (MINIMAL.replace("title: Demo\n", "")
            .replace("kind: shape", "kind: shapes")
            + "  - id: second\n    kind: defined\n    target: net\n    points: many\n")
    problems = problems_of(write(tmp_path, "several_problems.yaml", text))
    assert len(problems) == 3
    assert problems[0] == "line 1, field 'title': required field is missing"
    assert "check 'net-shape' (checks[0]), field 'kind': unknown check kind 'shapes'" in problems[1]
    assert problems[2].startswith(f"line {line_of(text, 'points: many')}: check 'second' (checks[1]), field 'points': ")


def test_cross_check_problems_are_all_reported(tmp_path):
    text = MINIMAL + """\
  - id: net-shape
    kind: defined
    target: nope
    requires: [zzz]
    points: 1
"""
    problems = problems_of(write(tmp_path, "duplicate_and_dangling.yaml", text))
    assert len(problems) == 3
    assert [p.split(", field ")[1].split(":")[0] for p in problems] == ["'id'", "'target'", "'requires'"]


def test_field_and_cross_check_problems_are_reported_together(tmp_path):
    text = MINIMAL.replace("points: 1", "points: many") + """\
  - id: other
    kind: defined
    target: nope
    points: 1
"""
    problems = problems_of(write(tmp_path, "type_error_and_dangling_target.yaml", text))
    assert len(problems) == 2
    assert "field 'points'" in problems[0]
    assert "check 'other' (checks[1]), field 'target': no target 'nope'" in problems[1]


def test_error_text_counts_problems_and_names_the_file(tmp_path):
    text = MINIMAL.replace("title: Demo\n", "").replace("reference: ref\n", "")
    path = write(tmp_path, "two_problems.yaml", text)
    with pytest.raises(RubricError) as info:
        rubric.load(path)
    rendered = str(info.value)
    assert rendered.startswith(f"{path}: invalid rubric (2 problems):\n  - ")
    assert "hint: " in rendered


def test_every_target_a_check_names_is_cross_checked(tmp_path):
    """Lists of targets (the dataset split) and second targets (an accuracy check's train_fn)."""
    text = (FIXTURES / "accuracy" / "rubric.yaml").read_text().replace("train_fn: train_fn", "train_fn: trian_fn")
    text += """\
  - id: split
    kind: dataset
    target: [make_net, test_sett]
    items: {disjoint: true}
    points: 1
"""
    problems = problems_of(write(tmp_path, "dangling_refs.yaml", text))
    assert len(problems) == 2, problems
    assert f"line {line_of(text, 'train_fn: trian_fn')}: check 'loop-accuracy' (checks[1]), field 'train_fn': " \
           "no target 'trian_fn' in `targets:` (did you mean 'train_fn'?)" in problems[0]
    assert "check 'split' (checks[2]), field 'target': no target 'test_sett'" in problems[1]


def test_every_bundled_check_survives_the_trip_to_the_sandbox():
    """The plan sends each check to the sandbox as JSON and the probe validates it again there:
    a spec whose dump does not validate (a default read as a set field) fails every submission."""
    from grader import checks
    from grader.rubric import load

    for path in sorted((Path(__file__).resolve().parent.parent / "rubrics").glob("*.yaml")):
        for spec in load(path).model.checks:
            again = checks.get(spec.kind).Spec.model_validate(spec.model_dump(mode="json"))
            assert again.model_dump(mode="json") == spec.model_dump(mode="json"), f"{path.name}: {spec.id}"


def test_a_param_count_takes_the_input_of_a_shape_check_on_the_same_model_or_says_it_needs_one(tmp_path):
    from grader import rubric
    from grader.errors import RubricError

    base = {"assignment": "a", "title": "t", "reference": ".",
            "targets": {"net": {"name": "make_net", "kind": "callable"}},
            "checks": [{"id": "shape", "kind": "shape", "target": "net", "args": [4, 2], "input": ["B", 4],
                        "output": ["B", 2], "points": 1},
                       {"id": "params", "kind": "param_count", "target": "net", "args": [4, 2], "expected": 10,
                        "points": 1}]}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(base))
    assert rubric.load(path).checks_by_id["params"].input == ["B", 4]
    base["checks"][1]["args"] = [8, 2]  # another model: the shape check's input says nothing about it
    path.write_text(yaml.safe_dump(base))
    with pytest.raises(RubricError, match="param_count.*needs an input shape; give the check an `input`"):
        rubric.load(path)
