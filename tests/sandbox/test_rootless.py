"""The namespace sandbox without root: as an ordinary user, in a user namespace of its own.

The grader is run as `nobody` on a small batch whose submissions probe the sandbox: the network,
the host's files, the run's uid and capabilities, writing where it may only read. `auto` must
pick the namespace level, and every probe must find the walls a root-run sandbox has.

`nobody` needs an interpreter it may execute: the project's own lives where this machine put it
(often a private home), so the fixture builds a bare virtual environment on the system's Python of
the same version whose packages are the project's (a link to its site-packages, read-only to
nobody). Skips, saying why, where any of that is missing.
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

import pytest

from tests.conftest import FIXTURES, GOOD_NET, PROJECT

TINY = FIXTURES / "tiny" / "rubric.yaml"
SYSTEM_PYTHON = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")

# Each scores the `answer` check (42) only if the sandbox held; otherwise it says what it found.
PROBES = {
    "good": GOOD_NET + "\nanswer = 42\n",
    "network": "import socket\ntry:\n    socket.create_connection(('1.1.1.1', 53), timeout=3)\n    answer = 'reached'\n"
               "except OSError:\n    answer = 42\n",
    "files": "import os\nseen = []\n"
             "for path in ('/root', '/etc/shadow', {rubrics!r}, {reference!r}, {tests!r}):\n"
             "    if os.path.exists(path):\n        seen.append(path)\n"
             "try:\n    open('/usr/planted', 'w')\n    seen.append('wrote /usr')\nexcept OSError:\n    pass\n"
             "answer = 42 if not seen else repr(seen)\n",
    # RLIMIT_NPROC (512 here) counted per user namespace, in place of the uid lease: a bounded
    # try at 1,500 sleeping children must stop near 512 (and cannot go far past it if not).
    "processes": "import os, signal, time\nchildren = []\n"
                 "for _ in range(1500):\n    try:\n        pid = os.fork()\n    except OSError:\n        break\n"
                 "    if pid == 0:\n        time.sleep(60)\n        os._exit(0)\n    children.append(pid)\n"
                 "for pid in children:\n    os.kill(pid, signal.SIGKILL)\n    os.waitpid(pid, 0)\n"
                 "answer = 42 if 400 <= len(children) < 600 else len(children)\n",
    "privileges": "import os\ncaps = open('/proc/self/status').read().split('CapEff:')[1].split()[0]\n"
                  "answer = 42 if int(caps, 16) == 0 else caps\n",
}


def _unavailable() -> str | None:
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


pytestmark = [pytest.mark.slow, pytest.mark.skipif(bool(why := _unavailable()), reason=why or "")]


@pytest.fixture(scope="module")
def as_nobody():
    """Runs a command as nobody in a folder it owns, with an interpreter it may execute."""
    home = Path(tempfile.mkdtemp(prefix="grader-rootless-"))
    os.chmod(home, 0o755)
    venv = home / "venv"
    subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", "--without-pip", str(venv)], check=True)
    site = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    shutil.rmtree(site)
    site.symlink_to(sysconfig.get_paths()["purelib"])  # the project's packages, torch and grader among them
    work = home / "work"
    work.mkdir()
    shutil.chown(work, "nobody")
    readable = subprocess.run(["su", "nobody", "-s", "/bin/sh", "-c", f"{venv / 'bin' / 'python'} -c 'import torch, grader'"],
                              capture_output=True, text=True, timeout=120)
    if readable.returncode != 0:  # the checkout or its .venv lies in a folder other users may not enter
        shutil.rmtree(home, ignore_errors=True)
        pytest.skip(f"nobody cannot import the project's packages from {sysconfig.get_paths()['purelib']}: "
                    f"{readable.stderr.strip()[-200:]}")

    def run(*args: str) -> subprocess.CompletedProcess:
        command = " ".join(["cd", str(work), "&&", "HOME=" + str(work), "GRADER_CACHE=" + str(work / "cache"),
                            str(venv / "bin" / "python"), "-m", "grader", *args])
        return subprocess.run(["su", "nobody", "-s", "/bin/sh", "-c", command], capture_output=True, text=True,
                              timeout=600)

    yield work, run
    shutil.rmtree(home, ignore_errors=True)


def test_auto_picks_the_namespace_sandbox_without_root_and_its_walls_hold(as_nobody):
    work, run = as_nobody
    batch = work / "batch"
    batch.mkdir()
    for name, code in PROBES.items():
        (batch / f"{name}.py").write_text(code.format(rubrics=str(PROJECT / "rubrics"),
                                                      reference=str(PROJECT / "reference"),
                                                      tests=str(PROJECT / "tests")))
    subprocess.run(["chown", "-R", "nobody", str(batch)], check=True)
    done = run("grade", str(TINY), "batch", "--out", "out", "--workers", "2", "--quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    import json

    rows = {row["student"]: row for row in json.loads((work / "out" / "summary.json").read_text())}
    answers = {name: next(c for c in row["checks"] if c["id"] == "answer") for name, row in rows.items()}
    for name in PROBES:
        assert answers[name]["outcome"] == "passed", (name, answers[name]["message"])
    assert rows["good"]["score"] == rows["good"]["max_score"] == 5
    results = {name: json.loads((work / "out" / "submissions" / f"{name}.json").read_text()) for name in PROBES}
    assert {r["isolation"] for r in results.values()} == {"namespace"}


def test_the_measure_stages_warm_runs_hold_their_walls_without_root(as_nobody):
    """tests/sandbox/test_warm.py's inspection of a warm run's walls, run as nobody: the forks of a
    parent in a user namespace of their own keep no capability, as a cold run's runner does."""
    work, _ = as_nobody
    python = work.parent / "venv" / "bin" / "python"
    command = " ".join(["cd", str(PROJECT), "&&", f"HOME={work}", f"GRADER_CACHE={work / 'cache'}", str(python), "-m",
                        "pytest", "-q", "-p", "no:cacheprovider", "--basetemp", str(work / "pytest"),
                        "tests/sandbox/test_warm.py", "-k", shlex.quote("walled_in or records_a_cold")])
    done = subprocess.run(["su", "nobody", "-s", "/bin/sh", "-c", command], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and "2 passed" in done.stdout, done.stdout[-3000:] + done.stderr[-2000:]
