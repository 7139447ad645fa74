"""A notebook's kernel forked from a warm runner, torch already imported.

A notebook's code runs in an IPython kernel that jupyter_client starts as a new process
(``python -m ipykernel_launcher -f CONNECTION``): a fresh interpreter that imports IPython, then
torch, again for every notebook (about 2 s of CPU). When the runner is itself a warm fork
(``warm.py``, which imported torch and ipykernel), ``use_forked_kernels`` makes jupyter_client's
local launcher fork the runner instead: the child does what ``ipykernel_launcher`` does after the
``execve`` it skips (a session of its own, the kernel's environment, working folder and standard
streams, no handler or event loop of the runner's), then runs the same ``IPKernelApp``. The runner
talks to it over the same connection file and signals it through ``ForkedKernel``, which answers
as the ``Popen`` the launcher would have returned. The kernel is inside the run's sandbox, as the
runner is; it is forked before the runner has a socket or a thread, and nothing the runner holds is
secret from the student's code (the job file is readable in the sandbox anyway).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from typing import Any

POLL_SECONDS = 0.02


def use_forked_kernels() -> None:
    """From now on, this process's jupyter_client starts kernels by forking it."""
    from jupyter_client.provisioning import local_provisioner

    local_provisioner.launch_kernel = fork_kernel


class ForkedKernel:
    """The forked kernel, as the ``subprocess.Popen`` jupyter_client keeps for a kernel it started."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self.stdin = self.stdout = self.stderr = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.returncode = -signal.SIGKILL  # reaped by someone else: gone, how is not known
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"kernel {self.pid}", timeout or 0.0)
            time.sleep(POLL_SECONDS)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def fork_kernel(cmd: list[str], stdin: Any = None, stdout: Any = None, stderr: Any = None,
                env: dict[str, str] | None = None, independent: bool = False, cwd: str | None = None,
                **_: Any) -> ForkedKernel:
    """``jupyter_client.launcher.launch_kernel``'s contract, by fork: ``cmd`` is the kernel spec's
    command (``python -m ipykernel_launcher -f FILE``); its arguments after the module go to the app."""
    args = cmd[cmd.index("ipykernel_launcher") + 1:] if "ipykernel_launcher" in cmd else cmd[3:]
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            _become_kernel(stdout, stderr, env, cwd)
            from ipykernel import kernelapp

            kernelapp.launch_new_instance(argv=args)
            code = 0
        except BaseException:  # noqa: BLE001 - the kernel's own stderr says why; the runner sees it die
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)
    return ForkedKernel(pid)


def _become_kernel(stdout: Any, stderr: Any, env: dict[str, str] | None, cwd: str | None) -> None:
    """What the launcher's ``Popen`` and ``ipykernel_launcher`` would have given a new kernel."""
    os.setsid()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    for stream, fd in ((stdout, 1), (stderr, 2)):
        if stream is not None and stream != subprocess.PIPE:
            os.dup2(stream if isinstance(stream, int) else stream.fileno(), fd)
    if cwd:
        os.chdir(cwd)
    if env is not None:
        os.environ.clear()
        os.environ.update(env)
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as a new interpreter starts:
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # Python ignores these two
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    signal.set_wakeup_fd(-1)
    asyncio.set_event_loop(asyncio.new_event_loop())  # the runner's loop is running in its process, not here
    if sys.path and sys.path[0] in ("", os.getcwd(), "/"):
        del sys.path[0]  # ipykernel_launcher's own first step; IPython puts the working folder back
    sys.argv = [sys.executable]
