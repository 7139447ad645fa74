"""Provided files: the course's version is what runs; what a student's copy adds stays importable."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from grader import provided

COURSE = textwrap.dedent('''
    def load_cifar10(batch_size):
        return ("course", batch_size)
''')
EXTENDED = textwrap.dedent('''
    def load_cifar10(batch_size):
        return ("student's changed copy", batch_size)

    AUGMENT = "flip"

    def load_cifar10_augmented(batch_size):
        return ("student", AUGMENT, load_cifar10(batch_size))
''')


def _course_and_copy(tmp_path, copy_text: str):
    (tmp_path / "course").mkdir()
    course = tmp_path / "course" / "dataloaders.py"
    course.write_text(COURSE)
    root = tmp_path / "work"
    root.mkdir()
    (root / "dataloaders.py").write_text(copy_text)
    return course, root


def _run(root, code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_an_extended_copy_runs_the_course_file_and_keeps_the_students_additions(tmp_path):
    course, root = _course_and_copy(tmp_path, EXTENDED)
    assert provided.keep_additions(course, root / "dataloaders.py", root)
    assert (root / ".student_copies" / "dataloaders.py").read_text() == EXTENDED
    # the course's own name is the course's; the student's addition imports and uses its own file
    assert _run(root, "import dataloaders; print(dataloaders.load_cifar10(8))") == "('course', 8)"
    assert _run(root, "from dataloaders import load_cifar10_augmented as f; print(f(4))") == \
        "('student', 'flip', (\"student's changed copy\", 4))"
    missing = subprocess.run([sys.executable, "-c", "from dataloaders import nothing_here"], cwd=root,
                             capture_output=True, text=True, timeout=60)
    assert "cannot import name 'nothing_here'" in missing.stderr


def test_a_copy_with_nothing_added_is_simply_replaced(tmp_path):
    changed_only = EXTENDED.split("AUGMENT")[0]
    for number, text in enumerate((COURSE, changed_only, "def load_cifar10(:\n")):
        (tmp_path / str(number)).mkdir()
        course, root = _course_and_copy(tmp_path / str(number), text)
        assert not provided.keep_additions(course, root / "dataloaders.py", root)
        assert not (root / ".student_copies").exists()


def test_top_level_names_are_definitions_and_assignments_only():
    text = "import os\nA = B = 1\nx: int = 2\nfor i in range(3):\n    pass\ndef f():\n    y = 1\nclass C:\n    z = 2\n"
    assert provided.top_level_names(text) == {"A", "B", "x", "f", "C"}
