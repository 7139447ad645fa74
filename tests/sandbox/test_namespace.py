"""What the code sees inside the namespace sandbox, read from the inside by a submission.

One module submission reports its uid, capabilities, ``no_new_privs``, limits, network
interfaces, what it can write and what exists; the test reads the report from its stdout.
Skips, saying why, where the namespace level cannot run.
"""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

from grader import pipeline, submission
from grader.sandbox import namespace

why_not = namespace.unavailable_reason()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(why_not is not None, reason=f"needs the namespace sandbox: {why_not}")]

INSPECTOR = r'''
import json, os, resource, socket, sys
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)

def writable(path):
    try:
        with open(os.path.join(path, ".probe"), "w") as f:
            f.write("x")
        return True
    except OSError:
        return False

report = {
    "uid": os.getuid(), "euid": os.geteuid(), "cap_eff": status["CapEff"].strip(),
    "cap_bnd": status["CapBnd"].strip(), "no_new_privs": status["NoNewPrivs"].strip(),
    "nproc": resource.getrlimit(resource.RLIMIT_NPROC)[0], "cpu": resource.getrlimit(resource.RLIMIT_CPU)[0],
    "interfaces": sorted(name for _, name in socket.if_nameindex()),
    "writable": {p: writable(p) for p in ("/usr", sys.prefix, os.path.dirname(os.__file__), "/tmp", os.getcwd(), "/")},
    "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
    "top": sorted(os.listdir("/")),
    "executable": sys.executable,
}
print("REPORT " + json.dumps(report))
answer = 42
'''


@pytest.fixture(scope="module")
def inside(tmp_path_factory, tiny_rubric):
    folder = tmp_path_factory.mktemp("inspector")
    (folder / "inspector.py").write_text(INSPECTOR)
    prep = pipeline.prepare(tiny_rubric, pipeline.Settings(isolation="namespace"))
    result = pipeline.grade_one(submission.single(folder / "inspector.py"), prep)
    line = next(line for line in result.stdout.splitlines() if line.startswith("REPORT "))
    return result, json.loads(line[len("REPORT "):])


def test_runs_as_an_unprivileged_uid_without_capabilities(inside):
    result, report = inside
    assert result.isolation == "namespace"
    assert report["uid"] == report["euid"] == namespace.UID_BASE
    assert int(report["cap_eff"], 16) == 0 and int(report["cap_bnd"], 16) == 0
    assert report["no_new_privs"] == "1"
    assert report["nproc"] == 512  # the rubric's default `processes`


def test_only_loopback_and_only_its_own_processes(inside):
    _, report = inside
    assert report["interfaces"] == ["lo"]
    assert 1 in report["pids"] and len(report["pids"]) <= 6  # supervisor, runner, and whatever it started


def test_the_tmpfs_is_writable_and_nothing_else(inside):
    _, report = inside
    assert report["writable"]["/tmp"] and report["writable"]["/home/student/work"]
    for path, ok in report["writable"].items():
        if path not in ("/tmp", "/home/student/work"):
            assert not ok, f"{path} is writable inside the sandbox"
    assert "reference" not in report["top"] and "rubrics" not in report["top"]


def test_an_interpreter_under_a_private_home_is_reachable(inside):
    """The interpreter's folder may be unreadable to other uids on the host (0700 home): the
    sandbox shows it through folders of its own, without changing any permission on the host."""
    _, report = inside
    private = [p for p in Path(sys.executable).resolve().parents if not p.stat().st_mode & stat.S_IXOTH]
    if not private:
        pytest.skip("the interpreter is under world-readable folders here; nothing private to prove")
    # It ran as another uid (the report exists) and the folder is still closed to other uids.
    assert report["executable"] == sys.executable and report["uid"] != 0
