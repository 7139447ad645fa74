"""The grader's own source, hashed: what a stored result or expectation was computed by.

``__version__`` names a release and changes only when someone remembers to change it, so a
result journaled, or an expectation cached, by a grader whose probe or judge has since changed
would be reused as if nothing had. Keys that must change with the grader's behaviour use
``exact_version()`` instead: the release plus a hash of every ``grader/**/*.py`` file (path and
bytes). Every module can change a grade, and telling which cannot would be a judgement that
goes stale; a change to a comment regrades too, which costs time, never correctness.

The report templates (``grader/report/templates``) are left out: reports are rendered afresh
from the stored results on every run, so a template change needs no regrading. Rubrics and
reference folders have their own hashes in the same keys; calibrations are keyed on the numeric
configuration and the check instead (``grader.calibration``), being too costly to redo for every
change of the source.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


@cache
def source_hash() -> str:
    """A hash of the grader package's Python source, read once per process."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        digest.update(path.relative_to(PACKAGE).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def exact_version() -> str:
    """``0.1.0+src.<source hash>``: the release for people, the source for cache and journal keys.

    ``__version__`` is read at each call, not at import: a test may pretend to be another release."""
    import grader

    return f"{grader.__version__}+src.{source_hash()}"
