"""Where the grader finds bundled assignments and keeps its caches."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent


def rubric_dirs() -> list[Path]:
    """Folders searched for ``<assignment>.yaml``: ``GRADER_RUBRICS`` (colon-separated) first,
    then the ``rubrics/`` folder of this checkout."""
    extra = [Path(p) for p in os.environ.get("GRADER_RUBRICS", "").split(os.pathsep) if p]
    return [*extra, PROJECT_ROOT / "rubrics"]


def cache_dir() -> Path:
    """The grader's own cache (expectations, synthetic data): ``GRADER_CACHE`` or XDG's cache."""
    if "GRADER_CACHE" in os.environ:
        return Path(os.environ["GRADER_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "grader"
