"""The measure stage's warm start (``grader.sandbox.warm``): each run forked from a parent that
imported torch is as walled in as a cold one, comes back the same, and never outlives its grader.

The walls are read from inside by a parent whose runner is replaced by an inspector: it does what
the real warm start does before the runner (``warm.become_runner``), then prints what it sees.
Skips, saying why, where the namespace level cannot run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader import sandbox
from grader.sandbox import namespace, uid_lease, warm
from tests.sandbox.test_measure_runs import LIMITS, measure_job, the_ghosts_record

why_not = namespace.unavailable_reason()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(why_not is not None, reason=f"needs the namespace sandbox: {why_not}")]

# A parent whose forks report their walls instead of running the measure runner.
INSPECTING_PARENT = r'''
import json, os, resource, socket, sys
from grader.sandbox import warm

def inspect(spec):
    warm.become_runner(spec)
    status = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines() if ":" in l)
    try:
        socket.create_connection(("10.255.255.1", 80), timeout=2)
        network = "reached"
    except OSError as exc:
        network = type(exc).__name__
    print("REPORT " + json.dumps({
        "uid": os.getuid(), "cap_eff": status["CapEff"].strip(), "cap_prm": status["CapPrm"].strip(),
        "no_new_privs": status["NoNewPrivs"].strip(), "pid": os.getpid(), "network": network,
        "interfaces": sorted(n for _, n in socket.if_nameindex()), "top": sorted(os.listdir("/")),
        "open_files": resource.getrlimit(resource.RLIMIT_NOFILE)[0], "home": os.environ.get("HOME"),
        "torch_imported": "torch" in sys.modules}), flush=True)
    os._exit(0)

warm._run_in_place = inspect
sys.exit(warm.main())
'''


@pytest.fixture
def fresh_parent(monkeypatch):
    """This test's own warm parent, ended afterwards (the process's shared one is left alone)."""
    monkeypatch.setattr(warm, "_parent", None)
    monkeypatch.setattr(warm, "_broken", False)
    yield
    if warm._parent is not None:
        warm._parent.close()


@pytest.fixture
def inspecting_parent(fresh_parent, monkeypatch):
    monkeypatch.setattr(warm.Parent, "COMMAND", [sys.executable, "-c", INSPECTING_PARENT])


def the_report(run: sandbox.RunResult) -> dict:
    lines = [line for line in run.stdout.splitlines() if line.startswith("REPORT ")]
    assert lines, (run.status, run.message, run.stdout, run.stderr)
    return json.loads(lines[0][len("REPORT "):])


def test_a_warm_run_is_walled_in_as_a_cold_one(tmp_path, inspecting_parent):
    run = sandbox.run(measure_job(tmp_path, "namespace"))
    report = the_report(run)
    assert warm._parent is not None and warm._parent.launched_any, "the run started cold"
    assert report["torch_imported"], "the fork did not come from the warm parent"
    assert report["cap_eff"] == report["cap_prm"] == "0000000000000000"
    assert report["no_new_privs"] == "1"
    if namespace.rootless():
        assert report["uid"] == 0  # the user namespace's root, with no capability (docs/security.md)
    else:
        assert report["uid"] >= uid_lease.UID_BASE
    assert report["pid"] < 10, "not in a PID namespace of its own"
    assert report["interfaces"] == ["lo"] and report["network"] != "reached"
    shown = {Path(p).parts[1] for p in namespace.readonly_paths([])}  # each at its host path
    assert set(report["top"]) <= shown | {"bin", "lib", "lib64", "sbin", "dev", "etc", "home", "proc", "sandbox", "tmp"}
    assert {"var", "mnt", "opt"} & set(os.listdir("/")) and not {"var", "mnt", "opt"} & set(report["top"])
    assert report["open_files"] == LIMITS["open_files"]
    assert report["home"] == namespace.HOME


def test_each_warm_run_is_a_new_fork_of_the_same_parent(tmp_path, inspecting_parent):
    """Two runs: one parent, two launchers, and the second sees nothing the first wrote."""
    first = the_report(sandbox.run(measure_job(tmp_path / "a", "namespace")))
    parent = warm._parent
    second = the_report(sandbox.run(measure_job(tmp_path / "b", "namespace")))
    assert warm._parent is parent
    assert first["top"] == second["top"]


def test_a_warm_run_gives_the_records_a_cold_run_gives(tmp_path, fresh_parent, monkeypatch):
    warm_run = sandbox.run(measure_job(tmp_path / "warm", "namespace"))
    assert warm._parent is not None and warm._parent.launched_any
    monkeypatch.setattr(warm, "launch", lambda *_: None)
    cold_run = sandbox.run(measure_job(tmp_path / "cold", "namespace"))
    assert the_ghosts_record(warm_run).error.message == the_ghosts_record(cold_run).error.message
    assert (warm_run.status, warm_run.execution) == (cold_run.status, cold_run.execution)


def test_a_dead_parent_is_replaced_and_its_run_is_the_machines_fault(tmp_path, fresh_parent):
    the_ghosts_record(sandbox.run(measure_job(tmp_path / "a", "namespace")))
    first = warm._parent
    assert first is not None
    first.proc.kill()
    first.proc.wait()
    deadline = time.monotonic() + 10
    while not first.dead and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.dead
    the_ghosts_record(sandbox.run(measure_job(tmp_path / "b", "namespace")))
    assert warm._parent is not first and warm._parent.launched_any


def test_a_parent_that_cannot_start_leaves_the_runs_cold(tmp_path, fresh_parent, monkeypatch):
    monkeypatch.setattr(warm.Parent, "COMMAND", [sys.executable, "-c", "raise SystemExit(3)"])
    the_ghosts_record(sandbox.run(measure_job(tmp_path / "a", "namespace")))
    assert warm._broken, "a parent that never launched a run is not retried"
    the_ghosts_record(sandbox.run(measure_job(tmp_path / "b", "namespace")))


# A parent whose runs hang: the host's deadline, Ctrl-C and the grader's death must end them.
HANGING_PARENT = r'''
import sys, time
from grader.sandbox import warm
def hang(spec):
    warm.become_runner(spec)
    time.sleep(600)
warm._run_in_place = hang
sys.exit(warm.main())
'''


def test_a_hanging_warm_run_meets_the_supervisors_deadline(tmp_path, fresh_parent, monkeypatch):
    monkeypatch.setattr(warm.Parent, "COMMAND", [sys.executable, "-c", HANGING_PARENT])
    job = measure_job(tmp_path, "namespace")
    job.limits = {**LIMITS, "wall_seconds": 2}
    started = time.monotonic()
    run = sandbox.run(job)
    assert run.status == "timeout-wall", (run.status, run.message)
    assert time.monotonic() - started < 30


def test_the_runs_of_a_parent_end_when_its_grader_dies(tmp_path):
    """A grader killed outright (SIGKILL) leaves its parent reading the end of its input: the parent
    and every run it launched are gone within seconds."""
    script = tmp_path / "grader_that_dies.py"
    script.write_text(f'''
import sys, threading
sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
from pathlib import Path
from grader import sandbox
from grader.sandbox import warm
from tests.sandbox.test_measure_runs import LIMITS, measure_job
warm.Parent.COMMAND = [sys.executable, "-c", {HANGING_PARENT!r}]
job = measure_job(Path({str(tmp_path)!r}), "namespace")
threading.Thread(target=sandbox.run, args=(job,), daemon=True).start()
import time
while warm._parent is None or not warm._parent.launched_any:
    time.sleep(0.05)
print(warm._parent.proc.pid, flush=True)
time.sleep(600)
''')
    dying = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    parent_pid = int(dying.stdout.readline())
    time.sleep(1)  # the launcher forks its sandbox
    hanging = _session_members(parent_pid)
    assert len(hanging) >= 3, hanging  # launcher, PID 1, runner
    os.kill(dying.pid, signal.SIGKILL)
    dying.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _alive(parent_pid):
        time.sleep(0.1)
    assert not _alive(parent_pid), "the warm parent outlived its grader"
    time.sleep(1)
    assert not [p for p in hanging if _alive(p)], "a warm run outlived its grader"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _session_members(parent_pid: int) -> list[int]:
    """Every process started under the parent (its launchers and their sandboxes)."""
    found, frontier = [], [parent_pid]
    while frontier:
        pid = frontier.pop()
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except FileNotFoundError:
            continue
        found += map(int, children)
        frontier += map(int, children)
    return found


def test_a_notebooks_kernel_is_forked_warm_and_grades_as_a_cold_one(tmp_path, fresh_parent, monkeypatch):
    """Its first cell finds torch imported already (the kernel is a fork of the warm runner) and
    runs as its own process in its own session; the grade is the one a cold kernel gives."""
    from grader import pipeline, rubric, submission
    from tests.conftest import FIXTURES, GOOD_NET, write_notebook

    write_notebook(tmp_path / "work.ipynb", [
        "import os, sys\nprint('torch already:', 'torch' in sys.modules, 'own session:', os.getsid(0) == os.getpid())",
        "md:# Work", GOOD_NET, "answer = 42"])
    prep = pipeline.prepare(rubric.load(FIXTURES / "tiny" / "rubric.yaml"), pipeline.Settings(isolation="namespace"))
    warm_result = pipeline.grade_one(submission.discover([tmp_path / "work.ipynb"])[0], prep, sandbox.Slot())
    assert "torch already: True own session: True" in warm_result.cells[0]["output"], warm_result.cells[0]
    monkeypatch.setattr(warm, "launch", lambda *_: None)
    cold_result = pipeline.grade_one(submission.discover([tmp_path / "work.ipynb"])[0], prep, sandbox.Slot())
    assert "torch already: False" in cold_result.cells[0]["output"]
    assert [(c.id, c.outcome, c.points) for c in warm_result.checks] == [(c.id, c.outcome, c.points)
                                                                        for c in cold_result.checks]
    assert warm_result.score == warm_result.max_score


def test_a_cold_runs_lifeline_ends_it_when_its_grader_dies(tmp_path):
    """Where no parent can start warm, the run starts cold with a lifeline of its own, made only
    then: a grader killed outright still takes the run down with it."""
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "hang.py").write_text("import time\ntime.sleep(600)\n")
    script = tmp_path / "grader_that_dies.py"
    script.write_text(f'''
import sys, threading, time
sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
from pathlib import Path
from grader import sandbox
from grader.sandbox import warm
from grader.submission import Entry
from tests.sandbox.test_measure_runs import LIMITS
warm._broken = True  # this machine cannot start warm: every run starts cold
job = sandbox.Job(entry=Entry(form="module", root=Path({str(tmp_path / "work")!r}), modules=("hang",)),
                  plan={{"seed": 0, "targets": {{}}, "checks": []}}, limits=LIMITS,
                  out_dir=Path({str(tmp_path / "out")!r}), isolation="namespace")
threading.Thread(target=sandbox.run, args=(job,), daemon=True).start()
print("started", flush=True)
time.sleep(600)
''')
    dying = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert dying.stdout.readline().strip() == "started"
        deadline = time.monotonic() + 60
        hanging: list[int] = []
        while time.monotonic() < deadline and not any("grader.sandbox.runner" in _command(p) for p in hanging):
            time.sleep(0.2)
            hanging = _descendants(dying.pid)
        assert any("grader.sandbox.runner" in _command(p) for p in hanging), [(_command(p), p) for p in hanging]
    finally:
        os.kill(dying.pid, signal.SIGKILL)  # on a failure too: its run ends with it, or the assertion below says so
        dying.wait()
        dying.stdout.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and [p for p in hanging if _alive(p)]:
        time.sleep(0.2)
    assert not [p for p in hanging if _alive(p)], "a cold run outlived its grader"


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return ""


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid``, whichever of its threads started it."""
    found, frontier = [], [pid]
    while frontier:
        for task in Path(f"/proc/{frontier.pop()}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except (FileNotFoundError, ProcessLookupError):
                continue
            found += children
            frontier += children
    return found
