"""An instructor's answers to ``needs-review``: which object is the target, per student.

When resolution cannot decide (``grader.unresolved``), a person looks at the submission and
writes down the student's name for the target, in a small YAML file keyed by student id (as the
gradebook and the batch page name them)::

    alice_smith:
      fc_network: build_dense        # rubric target -> the name in the student's code
      cnn_network: task5.MyCNN       # qualified: one module of a module folder

``grader grade ASSIGNMENT BATCH --out OUT --mappings FILE`` then regrades only the mapped
submissions (a student's mapping is part of its journal key), each found under the given name
(``how: instructor`` in the check messages), and records the mapping in the result.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import yaml

from grader.errors import GraderError

Mappings = dict[str, dict[str, str]]  # student id -> {target key: the student's name for it}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def load(path: Path, targets: list[str]) -> Mappings:
    """Read and check a mappings file against the rubric's ``targets``; every problem is one
    ``GraderError`` naming the file, the student and the target."""
    where = str(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise GraderError(f"cannot read the mappings file: {exc.strerror}", where=where) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark is not None else ""
        raise GraderError(f"the mappings file is not valid YAML: {getattr(exc, 'problem', exc)}", where=where + line,
                          hint="one entry per student id, each a mapping of target: name") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise GraderError("the mappings file must map student ids to {target: name}", where=where,
                          hint="e.g.  alice_smith: {fc_network: build_dense}")
    problems = []
    for student, mapping in raw.items():
        if not isinstance(mapping, dict) or not mapping:
            problems.append(f"{student}: expected a mapping of target: name, got {type(mapping).__name__}")
            continue
        for target, name in mapping.items():
            if target not in targets:
                problems.append(f"{student}: {target!r} is not a target of the rubric (targets: {', '.join(targets)})")
            elif not isinstance(name, str) or not _NAME.match(name):
                problems.append(f"{student}: {target}: {name!r} is not a Python name (use name or module.name)")
    if problems:
        raise GraderError("; ".join(problems), where=where, hint="fix these entries and run the command again")
    return {str(student): {str(t): str(n) for t, n in mapping.items()} for student, mapping in raw.items()}


def key(mapping: dict[str, str]) -> str:
    """A short hash of one student's mapping ("" for none), for the journal key."""
    if not mapping:
        return ""
    return hashlib.sha256(json.dumps(mapping, sort_keys=True).encode()).hexdigest()[:12]
