"""The course's provided files in a submission: the course's version runs, the student's additions stay.

A handout that ships ``dataloaders.py`` expects students to use it, and the grader replaces any
copy a student hands in with the course's, so every submission is graded against the same
helpers. Students also extend such files: a ``load_cifar10_augmented`` added to their
``dataloaders.py`` and imported by their ``task3.py``. Replacing the file would make that import
fail and cost every check of task 3.

``keep_additions`` keeps both: the course's file is written in place, the student's copy is kept
under ``.student_copies/``, and the course's module gets a module-level ``__getattr__`` (PEP 562)
that serves the names only the student's copy defines, loading that copy on first use. Every name
the course defines still comes from the course's file.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path
from grader import pysource

KEPT = ".student_copies"

_SHIM = '''

# ---- added by the grader -------------------------------------------------------------------
# This is the course's file, as graded. The student's own copy of it defined more names
# ({names}); they are served from that copy ({kept}), loaded on first use.
_STUDENT_ADDITIONS = {additions!r}
_student_copy = None


def __getattr__(name):
    global _student_copy
    if name not in _STUDENT_ADDITIONS:
        raise AttributeError(f"module {{__name__!r}} has no attribute {{name!r}}")
    if _student_copy is None:
        import importlib.util
        import os

        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), {relative_kept!r})
        spec = importlib.util.spec_from_file_location("_student_copy_of_" + __name__.replace(".", "_"), path)
        _student_copy = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(_student_copy)
    return getattr(_student_copy, name)
'''


def keep_additions(course_file: Path, student_copy: Path, root: Path) -> bool:
    """Write the course's ``course_file`` over ``student_copy`` with the student's additions kept
    importable; False (nothing done) when there is nothing to keep: not a Python file, no copy,
    the same file, a copy that does not parse, or one that adds no top-level name."""
    if course_file.suffix != ".py" or not student_copy.is_file() or student_copy.is_symlink():
        return False
    course_text = course_file.read_text(encoding="utf-8")
    try:
        student_text = student_copy.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    if student_text == course_text:
        return False
    additions = sorted(top_level_names(student_text) - top_level_names(course_text))
    if not additions:
        return False
    relative = student_copy.relative_to(root)
    kept = root / KEPT / relative
    kept.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(student_copy), kept)
    relative_kept = str(Path(*([".."] * (len(relative.parts) - 1)), KEPT, relative))
    student_copy.write_text(course_text + _SHIM.format(names=", ".join(additions), kept=f"{KEPT}/{relative}",
                                                       additions=set(additions), relative_kept=relative_kept),
                            encoding="utf-8")
    return True


def top_level_names(text: str) -> set[str]:
    """Functions, classes and assigned names a module defines at its top level (none if it does
    not parse: a broken copy has nothing worth keeping)."""
    try:
        tree = pysource.parse(text)
    except (SyntaxError, ValueError):
        return set()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return {n for n in names if not n.startswith("__")}
