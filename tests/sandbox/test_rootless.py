"""The namespace sandbox without root: as an ordinary user, in a user namespace of its own.

The grader is run as `nobody` on a small batch whose submissions probe the sandbox: the network,
the host's files, the run's uid and capabilities, writing where it may only read. `auto` must
pick the namespace level, and every probe must find the walls a root-run sandbox has.

How the grader runs as nobody is ``tests/nobody.py``'s. Skips, saying why, where that cannot be done.
"""

from __future__ import annotations

import subprocess

import pytest

from tests import nobody
from tests.conftest import FIXTURES, GOOD_NET, PROJECT

TINY = FIXTURES / "tiny" / "rubric.yaml"

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


pytestmark = [pytest.mark.slow, pytest.mark.skipif(bool(why := nobody.unavailable()), reason=why or "")]


@pytest.fixture(scope="module")
def as_nobody():
    """Runs ``grader ARGS`` as nobody in a folder it owns."""
    user = nobody.Nobody()
    if (why_not := user.cannot_import()) is not None:
        user.remove()
        pytest.skip(why_not)
    yield user.work, lambda *args: user.python("-m", "grader", *args), user
    user.remove()


def test_auto_picks_the_namespace_sandbox_without_root_and_its_walls_hold(as_nobody):
    work, run, _ = as_nobody
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


def test_the_warm_runs_hold_their_walls_without_root(as_nobody):
    """tests/sandbox/test_warm.py's inspection of a warm run's walls, run as nobody: the forks of a
    parent in a user namespace of their own keep no capability, as a cold run's runner does."""
    work, _, user = as_nobody
    done = user.python("-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp", str(work / "pytest"),
                       "tests/sandbox/test_warm.py", "-k", "walled_in or records_a_cold", cwd=PROJECT)
    assert done.returncode == 0 and "2 passed" in done.stdout, done.stdout[-3000:] + done.stderr[-2000:]
