"""The command line: exit codes, messages without tracebacks, outputs of `grade` and `check`."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, GOOD_NET, PROJECT
from tests.conftest import run_cli as grader

TINY = str(FIXTURES / "tiny" / "rubric.yaml")


def test_help_does_not_import_torch():
    code = ("import sys, grader.cli\n"
            "try:\n    grader.cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'numpy', 'nbclient', 'pydantic') if m in sys.modules]\n"
            "assert not heavy, heavy")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "grade" in done.stdout and "exit codes" in done.stdout


def test_version_names_the_release_and_the_source():
    done = subprocess.run([sys.executable, "-m", "grader", "--version"], cwd=PROJECT, capture_output=True, text=True,
                          timeout=60)  # also: `python -m grader` starts
    assert done.returncode == 0 and done.stdout.startswith("grader 0.1.0+src.")


def test_fail_under_fails_the_build_below_the_bar_and_the_batch_exports_for_ci(tmp_path):
    (tmp_path / "batch").mkdir()
    (tmp_path / "batch" / "good.py").write_text(GOOD_NET + "\nanswer = 42\n")
    (tmp_path / "batch" / "wrong.py").write_text(GOOD_NET + "\nanswer = 41\n")
    out = str(tmp_path / "out")
    done = grader("grade", TINY, str(tmp_path / "batch"), "--out", out, "--quiet", "--fail-under", "100%")
    assert done.returncode == 3, done.stderr
    assert "1 submission(s) below --fail-under 100%: wrong (" in done.stderr and "good" not in done.stderr
    done = grader("grade", TINY, str(tmp_path / "batch"), "--out", out, "--quiet", "--fail-under", "50")
    assert done.returncode == 0, done.stderr  # kept from the journal, all above the bar
    done = grader("grade", TINY, str(tmp_path / "batch"), "--out", out, "--fail-under", "120")
    assert done.returncode == 2 and "expected a percentage from 0 to 100, got '120'" in done.stderr

    # the same batch for a CI's test report and a spreadsheet
    done = grader("export", out, "--to", "junit")
    assert done.returncode == 0 and "2 submission(s) written as junit" in done.stdout, done.stderr
    import xml.etree.ElementTree as ET

    suites = {s.get("name"): s for s in ET.parse(tmp_path / "out" / "export" / "junit.xml").getroot()}
    assert set(suites) == {"good", "wrong"} and suites["good"].get("failures") == "0"
    assert suites["wrong"].find("testcase[@name='answer']/failure") is not None
    done = grader("export", out, "--to", "csv", "--output", str(tmp_path / "grades.csv"))
    rows = list(csv.DictReader((tmp_path / "grades.csv").open()))
    assert done.returncode == 0 and sorted(r["student"] for r in rows) == ["good", "wrong"] and "answer" in rows[0]
    done = grader("export", str(tmp_path / "batch"), "--to", "junit")
    assert done.returncode == 2 and "not a batch output folder" in done.stderr and "Traceback" not in done.stderr


def test_a_late_file_graded_into_the_folder_adds_a_row_and_accented_names_stay_two_students(tmp_path):
    (tmp_path / "batch").mkdir()
    for name in ("alice.py", "José García.py", "José Garcia.py"):
        (tmp_path / "batch" / name).write_text(GOOD_NET + "\nanswer = 42\n")
    (tmp_path / "late").mkdir()
    (tmp_path / "late" / "alice.ipynb").write_text("")  # the same student id, another file: both kept
    (tmp_path / "late" / "bob.py").write_text(GOOD_NET + "\nanswer = 41\n")
    out = tmp_path / "out"
    assert grader("grade", TINY, str(tmp_path / "batch"), "--out", str(out), "--quiet").returncode == 0
    done = grader("grade", TINY, str(tmp_path / "late" / "bob.py"), str(tmp_path / "late" / "alice.ipynb"),
                  "--out", str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    assert "reports: 5 submission(s), 3 of them graded earlier" in done.stdout
    rows = {r["student"]: r for r in csv.DictReader((out / "gradebook.csv").open(encoding="utf-8"))}
    assert set(rows) == {"alice.py", "alice.ipynb", "bob", "José_García", "José_Garcia"}
    assert rows["alice.py"]["status"] == "ok" and rows["José_García"]["status"] == "ok"
    assert {r["student"] for r in json.loads((out / "summary.json").read_text())} == set(rows)
    assert (out / "submissions" / "José_García.html").is_file()
    assert "José_García" in (out / "index.html").read_text(encoding="utf-8")


def test_list_shows_bundled_assignments():
    done = grader("list")
    assert done.returncode == 0
    assert "fc-vs-cnn" in done.stdout and "28 points" in done.stdout


def test_schema_is_json_with_every_kind():
    done = grader("schema")
    schema = json.loads(done.stdout)
    text = json.dumps(schema)
    for kind in ("defined", "shape", "param_count", "answer", "notebook", "dataset", "training"):
        assert f'"const": "{kind}"' in text or f'"{kind}"' in text


def test_validate_good_rubric():
    done = grader("validate", "mlp-checkpoint", TINY)  # a bundled rubric whose reference trains in seconds
    assert done.returncode == 0, done.stderr
    assert "mlp-checkpoint.yaml: ok (14 checks, 22 points, 1 expectation(s)" in done.stdout
    assert "reference graded as a submission: " in done.stdout and "problem(s)" not in done.stdout


def test_validate_bad_rubric_exits_2_without_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(Path(TINY).read_text().replace("kind: shape", "kind: shapes").replace("reference: reference",
                                                                                          f"reference: {FIXTURES / 'tiny' / 'reference'}"))
    done = grader("validate", str(bad))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "unknown check kind 'shapes' (did you mean 'shape'?)" in done.stderr
    assert "check 'net-shape' (checks[1])" in done.stderr


def test_unknown_assignment_and_missing_paths_exit_2(tmp_path):
    done = grader("check", str(tmp_path / "nothing.ipynb"), "--assignment", "no-such-thing")
    assert done.returncode == 2 and "no rubric for assignment 'no-such-thing'" in done.stderr
    done = grader("grade", TINY, str(tmp_path / "missing"), "--out", str(tmp_path / "out"))
    assert done.returncode == 2 and "no such file or folder" in done.stderr


@pytest.mark.slow
def test_grade_writes_every_report(tmp_path):
    batch = tmp_path / "batch"
    batch.mkdir()
    (batch / "good.py").write_text(GOOD_NET + "\nanswer = 42\n")
    (batch / "wrong_answer.py").write_text(GOOD_NET + "\nanswer = 41\nprint('<b>41</b>')\n")
    (batch / "broken.zip").write_bytes(b"not a zip")
    out = tmp_path / "out"
    done = grader("grade", TINY, str(batch), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert f"summary page {out / 'index.html'}" in done.stdout
    summary = {row["student"]: row for row in json.loads((out / "summary.json").read_text())}
    assert set(summary) == {"good", "wrong_answer", "broken"}
    # a module: the notebook check does not apply and is left out of the score and the maximum
    assert summary["good"]["score"] == 5 and summary["good"]["max_score"] == 5
    assert summary["broken"]["status"] == "rejected"
    assert set(summary["good"]["checks"][0]) == {"id", "outcome", "points", "max_points", "counted", "message", "review"}
    rows = list(csv.DictReader((out / "gradebook.csv").open()))
    assert [r["student"] for r in rows] == ["broken", "good", "wrong_answer"]
    assert rows[1]["net-params"] == "1.0"
    page = (out / "submissions" / "wrong_answer.html").read_text()
    assert "<b>41</b>" not in page and "&lt;b&gt;41&lt;/b&gt;" in page
    assert "41, expected 42 (off by 1)" in page
    assert (out / "submissions" / "good.json").is_file() and (out / "index.html").is_file()


@pytest.mark.slow
def test_check_shows_visible_checks_and_exit_code(tmp_path):
    good = tmp_path / "good.py"
    good.write_text(GOOD_NET + "\nanswer = 42\n")
    done = grader("check", str(good), "--rubric", TINY)
    assert done.returncode == 0, done.stdout  # a module: the notebook check does not apply
    assert "net-params" not in done.stdout  # hidden
    assert "net-shape" in done.stdout and "PASS" in done.stdout
    assert "visible score: 4 / 4" in done.stdout
    wrong = tmp_path / "wrong.py"
    wrong.write_text(GOOD_NET + "\nanswer = 41\n")
    done = grader("check", str(wrong), "--rubric", TINY)
    assert done.returncode == 3 and "visible score: 3 / 4" in done.stdout
    nb = tmp_path / "good.ipynb"
    from tests.conftest import write_notebook

    write_notebook(nb, ["md:# Work", GOOD_NET, "answer = 42"])
    done = grader("check", str(nb), "--rubric", TINY)
    assert done.returncode == 0, done.stdout
    assert "visible score: 5 / 5  (1 more check(s) are graded after submission)" in done.stdout


def test_validate_names_what_the_reference_lacks(tmp_path):
    rubric = tmp_path / "lacking.yaml"
    rubric.write_text(Path(TINY).read_text()
                      .replace("reference: reference", f"reference: {FIXTURES / 'tiny' / 'reference'}")
                      .replace("aliases: [answer, the_answer]", "aliases: [final_answer]"))
    done = grader("validate", str(rubric))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    # candidates are the reference's values only, since the target is a `value`
    assert "lacking.yaml: check 'answer': the reference has no final_answer (missing; candidates: answer: int)" \
        in done.stderr


def test_download_is_asked_for_explicitly_and_reaches_the_settings():
    from grader.cli import build_parser, load_rubric, settings_from

    rubric = load_rubric("fc-vs-cnn")
    plain = settings_from(build_parser().parse_args(["grade", "fc-vs-cnn", "x", "--out", "o"]), rubric)
    asked = settings_from(build_parser().parse_args(["grade", "fc-vs-cnn", "x", "--out", "o", "--download", "--data-root",
                                                 "/d"]), rubric)
    assert (plain.download, asked.download, asked.data_root) == (False, True, Path("/d"))
    assert build_parser().parse_args(["calibrate", "fc-vs-cnn", "--download"]).download


def test_a_failed_download_is_a_clear_error_not_a_traceback(tmp_path, monkeypatch):
    from grader.data import fetch

    def offline(spec, root):
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(fetch, "_torchvision_download", offline)
    from grader import pipeline, rubric

    with pytest.raises(Exception) as err:
        pipeline.prepare(rubric.load(PROJECT / "rubrics" / "fc-vs-cnn.yaml"),
                         pipeline.Settings(data_root=tmp_path / "empty", download=True))
    assert type(err.value).__name__ == "GraderError"
    assert "downloading failed" in str(err.value.what) and "name resolution" in str(err.value.what)


def test_grade_force_probes_the_reference_again(tmp_path, monkeypatch):
    """Expectations are reused from the cache between runs, and `--force` recomputes them (the
    batch holds one rejected file, so nothing but the preparation runs)."""
    from grader import cli, references

    monkeypatch.setenv("GRADER_CACHE", str(tmp_path / "cache"))
    probed: list[str] = []
    probe = references._probe_reference
    monkeypatch.setattr(references, "_probe_reference",
                        lambda spec, ctx, rubric: probed.append(spec.id) or probe(spec, ctx, rubric))
    batch = tmp_path / "batch"
    batch.mkdir()
    (batch / "broken.zip").write_bytes(b"not a zip")
    grade = ["grade", TINY, str(batch), "--out", str(tmp_path / "out"), "--isolation", "process", "--quiet"]
    assert cli.main(grade) == 0
    assert sorted(probed) == ["answer", "net-params"]
    assert cli.main(grade) == 0
    assert len(probed) == 2  # the cached expectations
    assert cli.main([*grade, "--force"]) == 0
    assert len(probed) == 4
