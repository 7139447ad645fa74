"""The LMS exports hold the fields each system's import requires: Canvas's identity columns and
``Points Possible`` row, Moodle's user-id columns, Gradescope's results.json test fields."""

from __future__ import annotations

import csv
import io
import json
import subprocess

from grader import roster
from grader.report import lms
from grader.results import CheckResult
from tests.conftest import run_cli
from tests.report.test_html import result_with

ROSTER = """Student,ID,SIS User ID,SIS Login ID,Section
"García, José",48213,S1001,jgarcia,DL Fall
"Nguyen, Anh",48377,S1002,anguyen,DL Fall
"""
MOODLE_ROSTER = """Identifier,Full name,Email address,ID number
Participant 4021,José García,jgarcia@uni.example,S1001
Participant 4022,Anh Nguyen,anguyen@uni.example,S1002
"""


def jose(**over):
    return result_with(student="garciajose_48213_1_nb", source="/in/garciajose_48213_1_nb.ipynb", **over)


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def course(tmp_path, text=ROSTER):
    path = tmp_path / "roster.csv"
    path.write_text(text, encoding="utf-8")
    return roster.load(path)


def test_canvas_has_its_identity_columns_points_row_and_a_blank_for_no_submission(tmp_path):
    students = course(tmp_path)
    results = [jose()]
    matching = students.match({r.student: "garciajose_48213_1_nb.ipynb" for r in results})
    table = rows(lms.canvas_csv(results, students, matching, "CNN notebook (88120)"))
    assert table[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "CNN notebook (88120)"]
    assert table[1][0] == "Points Possible" and table[1][5] == "3"
    assert table[2] == ["García, José", "48213", "S1001", "jgarcia", "DL Fall", "1"]
    assert table[3][:2] == ["Nguyen, Anh", "48377"] and table[3][5] == ""  # no submission: left alone, not 0


def test_canvas_rescales_to_the_assignments_points(tmp_path):
    students = course(tmp_path)
    matching = students.match({"garciajose_48213_1_nb": "garciajose_48213_1_nb.ipynb"})
    table = rows(lms.canvas_csv([jose()], students, matching, "HW", out_of=100))
    assert table[1][5] == "100" and table[2][5] == "33.33"


def test_moodle_has_every_user_id_column_the_import_can_map_and_feedback_without_hidden_detail(tmp_path):
    students = course(tmp_path, MOODLE_ROSTER)
    matching = students.match({"garciajose_48213_1_nb": "José García_4021_assignsubmission_file_nb.ipynb"})
    table = rows(lms.moodle_csv([jose()], students, matching, "CNN notebook"))
    assert table[0] == ["Full name", "Email address", "ID number", "Username", "CNN notebook", "Feedback"]
    name, email, number, _, grade, feedback = table[1]
    assert (name, email, number, grade) == ("José García", "jgarcia@uni.example", "S1001", "1")
    assert feedback.startswith("1/3") and "ValueError: boom" in feedback and "1 hidden check(s) lost points" in feedback
    assert "3136" not in feedback  # the hidden check's message stays hidden
    assert table[2][4] == "" and table[2][5] == ""


def test_gradescope_results_have_the_fields_its_autograder_specification_requires():
    skipped = CheckResult(id="gpu", kind="accuracy", visibility="visible", outcome="skipped", points=0, max_points=2,
                          message="no calibration for this GPU", counted=False)
    result = jose(checks=[*jose().checks, skipped], status="ok")
    document = json.loads(json.dumps(lms.gradescope_results(result)))
    assert document["score"] == 1
    assert [t["name"] for t in document["tests"]] == ["seen", "secret", "other", "gpu"]
    for test in document["tests"]:
        assert {"name", "score", "max_score", "status", "visibility", "output"} <= test.keys()
        assert test["status"] in ("passed", "failed")
        assert test["visibility"] in ("visible", "hidden", "after_due_date", "after_published")
    assert document["tests"][1]["visibility"] == "after_published"  # a hidden check, shown once published
    assert document["tests"][3]["max_score"] == 0 and document["tests"][3]["output"].startswith("not counted")


def test_export_to_canvas_lists_what_it_could_not_match_and_needs_a_roster(tmp_path):
    out = tmp_path / "out"
    (out / "submissions").mkdir(parents=True)
    for result in (jose(), result_with(student="stray", source="/in/stray.ipynb")):
        (out / "submissions" / f"{result.student}.json").write_text(result.model_dump_json())
    roster_file = tmp_path / "roster.csv"
    roster_file.write_text(ROSTER, encoding="utf-8")

    def export(*args: str) -> subprocess.CompletedProcess:
        return run_cli("export", str(out), *args)

    done = export("--to", "canvas")
    assert done.returncode != 0 and "needs --roster" in done.stderr and "Traceback" not in done.stderr
    done = export("--to", "canvas", "--roster", str(roster_file), "--column", "HW 1")
    assert done.returncode == 0, done.stderr
    assert "submission 'stray' matched no student" in done.stderr
    assert "Nguyen, Anh (48377) has no submission" in done.stderr
    assert "1 of 2 student(s) of the roster have a grade" in done.stdout
    assert rows((out / "export" / "canvas.csv").read_text())[2][5] == "1"
    done = export("--to", "gradescope")
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "export" / "gradescope" / "stray" / "results.json").read_text())["score"] == 1
