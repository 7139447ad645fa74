"""The roster: class lists as LMSs export them, and submissions matched to students by the file
names those LMSs give downloads; what cannot be matched is listed with the reason, never guessed."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader import roster
from grader.errors import GraderError

CANVAS_GRADEBOOK = """\ufeffStudent,ID,SIS User ID,SIS Login ID,Section,CNN notebook (88120)
    Points Possible,,,,,100
"García, José",48213,S1001,jgarcia,DL Fall,
"Nguyen, Anh",48377,S1002,anguyen,DL Fall,
"Okafor, Chidi",48390,S1003,cokafor,DL Fall,
"Student, Test",99999,,,DL Fall,
"""

MOODLE_WORKSHEET = """Identifier,Full name,Email address,Status,Grade,Maximum Grade,Grade can be changed
Participant 4021,José García,jgarcia@uni.example,Submitted for grading,,100.00,Yes
Participant 4022,Anh Nguyen,anguyen@uni.example,Submitted for grading,,100.00,Yes
"""

GRADESCOPE_ROSTER = """First Name,Last Name,SID,Email,Role,Sections
José,García,S1001,jgarcia@uni.example,Student,DL
Anh,Nguyen,S1002,anguyen@uni.example,Student,DL
Tess,Assist,,tess@uni.example,TA,
"""


def write(tmp_path: Path, text: str, name: str = "roster.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_canvas_gradebook_export_is_read_without_its_points_row_or_test_student(tmp_path):
    course = roster.load(write(tmp_path, CANVAS_GRADEBOOK))
    assert [s.name for s in course.students] == ["García, José", "Nguyen, Anh", "Okafor, Chidi"]
    jose = course.students[0]
    assert (jose.lms_id, jose.sis_id, jose.login, jose.section) == ("48213", "S1001", "jgarcia", "DL Fall")


def test_canvas_downloads_match_on_the_user_id_late_ones_too(tmp_path):
    course = roster.load(write(tmp_path, CANVAS_GRADEBOOK))
    matching = course.match({"a": "garciajose_48213_9876543_cnn_notebook.ipynb",
                             "b": "nguyenanh_LATE_48377_9876611_cnn_notebook.ipynb",
                             "c": "someone_55555_9876700_cnn_notebook.ipynb"})
    assert {k: s.name for k, s in matching.matched.items()} == {"a": "García, José", "b": "Nguyen, Anh"}
    assert matching.unmatched == {"c": "Canvas user id 55555 is not in the roster"}
    assert [s.name for s in matching.without_submission] == ["Okafor, Chidi"]
    problems = matching.problems()
    assert any("'c' matched no student" in line for line in problems)
    assert any("Okafor, Chidi (48390) has no submission" in line for line in problems)


def test_moodle_downloads_match_on_the_participant_number_of_the_worksheet(tmp_path):
    course = roster.load(write(tmp_path, MOODLE_WORKSHEET))
    assert [s.lms_id for s in course.students] == ["4021", "4022"]
    matching = course.match({"jose": "José García_4021_assignsubmission_file_",  # a folder, as newer Moodles give
                             "anh": "Anh Nguyen_4022_assignsubmission_file_hw_cnn.ipynb"})
    assert {k: s.name for k, s in matching.matched.items()} == {"jose": "José García", "anh": "Anh Nguyen"}


def test_moodle_downloads_match_on_the_name_when_the_roster_has_no_participant_numbers(tmp_path):
    course = roster.load(write(tmp_path, "Full name,Email address\nJosé García,jgarcia@uni.example\n"))
    matching = course.match({"x": "Jose GARCIA_731_assignsubmission_file_net.py"})  # typed without the accents
    assert matching.matched["x"].email == "jgarcia@uni.example"


def test_a_gradescope_roster_keeps_students_only_and_plain_file_names_match_by_email_or_name(tmp_path):
    course = roster.load(write(tmp_path, GRADESCOPE_ROSTER))
    assert [s.name for s in course.students] == ["José García", "Anh Nguyen"]  # the TA is not a student
    matching = course.match({"1": "jgarcia.ipynb", "2": "hw3_anh_nguyen"})
    assert matching.matched["1"].name == "José García"  # the part of the e-mail address before the @
    assert matching.matched["2"].name == "Anh Nguyen"  # two parts of the name together
    assert course.match({"3": "S1002-late.py"}).matched["3"].name == "Anh Nguyen"  # the SID


def test_two_submissions_of_one_student_are_a_conflict_not_a_choice(tmp_path):
    course = roster.load(write(tmp_path, CANVAS_GRADEBOOK))
    matching = course.match({"first": "garciajose_48213_1_a.ipynb", "second": "jgarcia.ipynb"})
    assert matching.matched == {}
    assert {s.name: sorted(v) for s, v in matching.conflicts.items()} == {"García, José": ["first", "second"]}
    assert any("has 2 submissions (first, second)" in line for line in matching.problems())


def test_a_name_that_names_two_students_is_not_guessed(tmp_path):
    course = roster.load(write(tmp_path, "name,login\nAmy Lee,lee\nBo Kim,kim\n"))
    matching = course.match({"pair": "lee_kim_project.ipynb"})
    assert matching.unmatched["pair"].startswith("its name names more than one student")


def test_a_semicolon_separated_roster_saved_by_a_european_spreadsheet(tmp_path):
    course = roster.load(write(tmp_path, "Name;E-Mail;Matriculation number\nLea Müller;lea@uni.example;0815\n"))
    assert course.students[0].sis_id == "0815" and course.students[0].email == "lea@uni.example"


@pytest.mark.parametrize("text, what", [
    ("colour,size\nred,3\n", "no column the grader recognises (its header: colour, size)"),
    ("name,email\nA,a@x\nB,a@x\n", "two rows of the roster share the email 'a@x' (lines 2 and 3)"),
    ("", "the roster is empty"),
])
def test_a_roster_that_cannot_be_used_says_why(tmp_path, text, what):
    path = write(tmp_path, text)
    with pytest.raises(GraderError) as caught:
        roster.load(path)
    assert what in caught.value.what and caught.value.where == str(path) and caught.value.hint


def test_a_missing_roster_says_where_to_get_one(tmp_path):
    with pytest.raises(GraderError, match="does not exist") as caught:
        roster.load(tmp_path / "nope.csv")
    assert "LMS" in caught.value.hint
