"""Running the grader as ``nobody``, the rootless level's tests' way of being an ordinary user.

``nobody`` needs an interpreter it may execute: the project's own lives where this machine put it
(often a private home), so ``Nobody`` builds a bare virtual environment on the system's Python of
the same version whose packages are the project's (a link to its site-packages, read-only to
nobody), in a folder nobody owns. ``unavailable()`` says why that cannot be done here, if it cannot.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

SYSTEM_PYTHON = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")


def unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root, to run the grader as nobody"
    if shutil.which("su") is None or shutil.which("unshare") is None:
        return "needs su and unshare"
    if not SYSTEM_PYTHON.is_file():
        return f"needs {SYSTEM_PYTHON}, an interpreter nobody may run, of this Python's version"
    probe = subprocess.run(["su", "nobody", "-s", "/bin/sh", "-c", "unshare --user --map-root-user true"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return f"this machine does not let nobody create a user namespace: {probe.stderr.strip()[:200]}"
    return None


class Nobody:
    """A folder ``work`` that nobody owns, and ``python(...)``: the project's Python run as nobody there."""

    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="grader-rootless-"))
        os.chmod(self.home, 0o755)
        self.venv = self.home / "venv"
        subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", "--without-pip", str(self.venv)], check=True)
        site = self.venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
        shutil.rmtree(site)
        site.symlink_to(sysconfig.get_paths()["purelib"])  # the project's packages, torch and grader among them
        self.work = self.home / "work"
        self.work.mkdir()
        shutil.chown(self.work, "nobody")

    def cannot_import(self) -> str | None:
        """Why nobody cannot import the project (its checkout or .venv in a folder others may not enter)."""
        done = self.python("-c", "import torch, grader", timeout=120)
        if done.returncode == 0:
            return None
        return (f"nobody cannot import the project's packages from {sysconfig.get_paths()['purelib']}: "
                f"{done.stderr.strip()[-200:]}")

    def command(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> list[str]:
        """``python ARGS`` as nobody, through su: the shell execs Python, so su's child is the interpreter."""
        pinned = {k: os.environ[k] for k in ("GRADER_MEASURE_SECRET",) if os.environ.get(k)}  # tests/conftest.py
        settings = {"HOME": str(self.work), "GRADER_CACHE": str(self.work / "cache"), **pinned, **(env or {})}
        line = " ".join(["cd", shlex.quote(str(cwd or self.work)), "&&", "exec", "env",
                         *(f"{k}={shlex.quote(v)}" for k, v in settings.items()),
                         str(self.venv / "bin" / "python"), *map(shlex.quote, args)])
        return ["su", "nobody", "-s", "/bin/sh", "-c", line]

    def python(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
               timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(*args, cwd=cwd, env=env), capture_output=True, text=True, timeout=timeout)

    def give(self, path: Path) -> None:
        """Make ``path`` (a file or a folder) nobody's."""
        subprocess.run(["chown", "-R", "nobody", str(path)], check=True)

    def remove(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)


def for_test(request: "pytest.FixtureRequest") -> Nobody:
    """A ``Nobody`` removed after the test (or module) asking; skips, saying why, where there can be none."""
    import pytest

    if (why := unavailable()) is not None:
        pytest.skip(f"the rootless level needs nobody: {why}")
    user = Nobody()
    request.addfinalizer(user.remove)
    if (why := user.cannot_import()) is not None:
        pytest.skip(why)
    return user
