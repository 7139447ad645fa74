"""The README's rubric examples are valid: the complete rubric as a whole, and each kind's example
as a check of it; and every registered check kind has an example there."""

from __future__ import annotations

import re

import yaml

from grader import checks, rubric
from tests.conftest import PROJECT

README = (PROJECT / "README.md").read_text(encoding="utf-8")
BLOCKS = [block for block in re.findall(r"```yaml\n(.*?)```", README, flags=re.S)]


def complete_rubric() -> dict:
    (whole,) = [yaml.safe_load(b) for b in BLOCKS if b.startswith("assignment:")]
    return whole


def kind_examples() -> list[dict]:
    import textwrap

    return [check for b in BLOCKS if not b.startswith("assignment:") for check in yaml.safe_load(textwrap.dedent(b))]


def load(document: dict, tmp_path) -> rubric.Rubric:
    """Through ``rubric.load``, with its cross-checks (targets, requirements, profiles)."""
    path = tmp_path / "rubric.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return rubric.load(path).model


def test_the_complete_rubric_is_valid(tmp_path):
    model = load(complete_rubric(), tmp_path)
    assert model.assignment == "mnist-mlp" and len(model.checks) >= 4


def test_every_kinds_example_is_a_valid_check_of_the_complete_rubric(tmp_path):
    document = complete_rubric()
    examples = kind_examples()
    document["checks"] = document["checks"] + examples
    model = load(document, tmp_path)
    assert [c.id for c in model.checks][-len(examples):] == [e["id"] for e in examples]


def test_every_registered_kind_has_an_example_in_the_readme():
    shown = {example["kind"] for example in kind_examples()} | {c["kind"] for c in complete_rubric()["checks"]}
    assert sorted(set(checks.REGISTRY) - shown) == []
    for kind in checks.REGISTRY:
        assert f"- **`{kind}`**:" in README, f"the README does not describe {kind}"
