"""The student kit: no hidden check, hidden value or reference code in it; a student checks with
it exactly as with the instructor's rubric; a kit that does not match is refused, saying why."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from grader import checks, cli, kit, references, rubric
from grader.errors import GraderError
from tests.conftest import FIXTURES, GOOD_NET, PROJECT, write_notebook

BUNDLED = sorted((PROJECT / "rubrics").glob("*.yaml"))
TINY = FIXTURES / "tiny" / "rubric.yaml"


def kit_text(folder: Path) -> str:
    """Everything readable in the kit except the provided files (which the handout gives anyway)."""
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(folder.rglob("*"))
                     if p.is_file() and p.suffix in (".json", ".yaml") and kit.PROVIDED not in p.parts)


def defined_names(folder: Path) -> set[str]:
    """Top-level functions, classes and variables of a folder's modules and notebooks (methods
    such as ``forward`` are the handout's words, not the reference's)."""
    names: set[str] = set()
    for path in folder.rglob("*"):
        if path.suffix == ".py":
            sources = [path.read_text(encoding="utf-8")]
        elif path.suffix == ".ipynb":
            sources = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        else:
            continue
        for source in sources:
            try:
                tree = ast.parse(source)
            except SyntaxError:
                continue
            names |= {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
            names |= {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
                      if isinstance(t, ast.Name)}
    return names


def numbers_in(value) -> set[str]:
    """The distinctive numbers of a value (four digits or more, or a fraction), as text."""
    text = json.dumps(value, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))
    return {n for n in re.findall(r"\d+(?:\.\d+)?", text) if len(n.replace(".", "")) >= 4}


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> dict[str, tuple[rubric.LoadedRubric, Path]]:
    out = tmp_path_factory.mktemp("kits")
    kits = {}
    for path in BUNDLED:
        loaded = rubric.load(path)
        kit.release(loaded, out / loaded.model.assignment)
        kits[loaded.model.assignment] = (loaded, out / loaded.model.assignment)
    return kits


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_a_kit_holds_no_hidden_check_hidden_value_or_reference_name(path, released):
    loaded, folder = released[path.stem]
    text = kit_text(folder)
    visible = [c for c in loaded.model.checks if c.visibility == "visible"]
    hidden = [c for c in loaded.model.checks if c.visibility == "hidden"]
    assert hidden, "every bundled rubric has hidden checks"
    visible_text = json.dumps([c.model_dump(mode="json") for c in visible])
    expected = references.expectations(loaded)
    in_kit = set(re.findall(r"\d+(?:\.\d+)?", text))
    for spec in hidden:
        assert re.search(rf"\b{re.escape(spec.id)}\b", text) is None, f"hidden check {spec.id} named in the kit"
        if spec.title:
            assert spec.title not in text, f"hidden check {spec.id}'s title in the kit"
        secret = numbers_in(spec.model_dump(mode="json"))
        if spec.id in expected:
            secret |= numbers_in(expected[spec.id].model_dump())
        leaked = (secret - numbers_in(json.loads(visible_text))) & in_kit
        assert not leaked, f"hidden check {spec.id}'s values in the kit: {sorted(leaked)[:5]}"
    # What the visible checks and their targets say is the kit's to say; what else names the reference is a leak.
    allowed = set(re.findall(r"\w+", visible_text + json.dumps(
        [t.model_dump(mode="json") for t in loaded.model.targets.values()])))
    allowed |= defined_names(folder / kit.PROVIDED)
    for name in sorted(defined_names(loaded.reference_dir) - allowed):
        if len(name) >= 4:
            assert re.search(rf"\b{re.escape(name)}\b", text) is None, f"reference name {name} in the kit"
    assert not any(p.suffix in (".pkl", ".pt", ".pth") for p in folder.rglob("*"))
    reference_only = {p.name for p in loaded.reference_dir.iterdir()} - set(loaded.model.submission.provided)
    assert not reference_only & {p.name for p in (folder / kit.PROVIDED).iterdir()}


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_a_kit_loads_as_a_rubric_of_the_visible_checks_with_the_same_expectations(path, released):
    loaded, folder = released[path.stem]
    student = kit.load(folder)
    assert [c.id for c in student.model.checks] == [c.id for c in loaded.model.checks if c.visibility == "visible"]
    full = references.expectations(loaded)
    for spec in student.model.checks:
        if checks.get(spec.kind).needs_reference(spec):
            assert references.expectations(student)[spec.id] == full[spec.id]


def test_checking_with_the_kit_is_checking_with_the_rubric(tmp_path, capsys):
    folder = tmp_path / "kit"
    assert cli.main(["release", str(TINY), "--out", str(folder)]) == 0
    assert (tmp_path / "kit.zip").is_file()
    notebook = write_notebook(tmp_path / "mine.ipynb", ["md:# mine", GOOD_NET, "answer = 41"])
    tables = []
    for how in (["--rubric", str(TINY)], ["--kit", str(tmp_path / "kit.zip")]):
        capsys.readouterr()
        assert cli.main(["check", str(notebook), *how, "--isolation", "process"]) == 3  # the answer is wrong
        tables.append(capsys.readouterr().out.split("\n", 1)[1])  # past the line naming the rubric's file
    assert tables[0] == tables[1]
    assert "(1 more check(s) are graded after submission)" in tables[1] and "net-params" not in tables[1]
    assert kit.load(folder).model == kit.load(tmp_path / "kit.zip").model  # the folder is the archive


def test_a_kit_of_another_release_or_rubric_is_refused(tmp_path, capsys):
    folder = tmp_path / "kit"
    kit.release(rubric.load(TINY), folder)
    assert cli.main(["release", str(TINY), "--verify", str(folder)]) == 0
    changed = tmp_path / "rubric.yaml"
    changed.write_text(TINY.read_text().replace("points: 2", "points: 3") + "\n",)
    shutil.copytree(TINY.parent / "reference", tmp_path / "reference")
    capsys.readouterr()
    assert cli.main(["release", str(changed), "--verify", str(folder)]) == 2
    assert "the rubric changed since the kit was released" in capsys.readouterr().err
    manifest = json.loads((folder / kit.MANIFEST).read_text())
    (folder / kit.MANIFEST).write_text(json.dumps(manifest | {"grader": "0.0.1"}))
    with pytest.raises(GraderError) as caught:
        kit.load(folder)
    assert "released for grader 0.0.1" in caught.value.what and "pip install grader==0.0.1" in caught.value.hint


def test_a_damaged_kit_says_so(tmp_path):
    folder = tmp_path / "kit"
    kit.release(rubric.load(TINY), folder)
    shutil.rmtree(folder / kit.EXPECTED)
    with pytest.raises(GraderError, match="the kit has no expectation for check 'answer'"):
        references.expectations(kit.load(folder))
    with pytest.raises(GraderError, match="not a kit"):
        kit.load(tmp_path)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(GraderError, match="no kit here"):
        kit.load(tmp_path / "notes.txt")


@pytest.mark.slow
def test_a_student_checks_with_the_built_wheel_and_the_kit_outside_any_checkout(tmp_path):
    """What a student does: install the grader from the wheel (no checkout, no root) and check a
    notebook against the kit's archive. The wheel goes into a folder of its own, put first on the
    path of the project's interpreter, which has the dependencies a student's pip would fetch."""
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(PROJECT), "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(wheels)], check=True, capture_output=True, timeout=300)
    (wheel,) = wheels.glob("grader-*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    kit.release(rubric.load(TINY), tmp_path / "kit")
    laptop = tmp_path / "laptop"
    laptop.mkdir()
    write_notebook(laptop / "mine.ipynb", ["md:# mine", GOOD_NET, "answer = 42"])
    env = {"PATH": "/usr/bin:/bin", "HOME": str(laptop), "PYTHONPATH": str(site)}
    done = subprocess.run([sys.executable, "-c", "import grader, sys; print(grader.__file__)"], env=env,
                          capture_output=True, text=True, cwd=laptop, timeout=60)
    assert done.stdout.startswith(str(site)), done.stdout + done.stderr  # the wheel's grader, not the checkout's
    done = subprocess.run([sys.executable, "-m", "grader", "check", "mine.ipynb", "--kit", str(tmp_path / "kit.zip"),
                           "--isolation", "process"], env=env, capture_output=True, text=True, cwd=laptop, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "visible score: 5 / 5" in done.stdout
