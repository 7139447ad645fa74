"""Run a notebook with nbclient in a fresh kernel of the grader's own environment.

Stored outputs are cleared, the kernel name is forced to the grader's Python, shell escapes
(``!cmd``, ``%pip``, ``%%bash``) are not executed but reported, each cell has a timeout, and a
failing cell does not stop the run: later definitions still count. After the student's cells a
probe cell runs in the same kernel and writes the observations.

Each cell's record says what it raised and at which line of the cell (a missing package by name),
and how many plots it showed (``figures``). Cells keep their place in the notebook: ``index``
from 0, and "cell N" in every message is ``index + 1``, markdown cells counted.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from grader.sandbox import data_paths
from grader.sandbox.figures import plots_of_output

KERNEL_NAME = "python3"  # ipykernel's native spec: the grader's own interpreter
SHELL_LINE = re.compile(r"^\s*(!|%(pip|conda|sx|system|sc)\b)")
SHELL_CELL = re.compile(r"^\s*%%(bash|sh|script|system|capture\s+--no-stdout)\b")
FIGURE_MIMES = ("image/png", "image/svg+xml", "image/jpeg")
TIMEOUT_ENAME = "CellTimeoutError"
IPYTHON_FILE = re.compile(r"\(\d+\.py, line (\d+)\)")  # SyntaxError's "(1054858500.py, line 1)"
CELL_FRAME = re.compile(r"Cell In\[(\d+)\], line (\d+)")  # IPython's traceback frame of a cell
MISSING_MODULE = re.compile(r"No module named '([^']+)'")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def sanitize(nb: Any) -> list[str]:
    """Clear stored outputs, force our kernel, comment out shell escapes; return what was removed."""
    removed: list[str] = []
    nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "Python 3 (grader)", "language": "python"}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.outputs, cell.execution_count = [], None
        lines = cell.source.splitlines()
        if lines and SHELL_CELL.match(lines[0]):
            removed.append(lines[0].strip())
            cell.source = "\n".join("# [grader: not run] " + line for line in lines)
            continue
        kept = []
        for line in lines:
            if SHELL_LINE.match(line):
                removed.append(line.strip())
                indent = line[: len(line) - len(line.lstrip())]
                kept.append(f"{indent}pass  # [grader: not run] {line.strip()}")
            else:
                kept.append(line)
        cell.source = "\n".join(kept)
    return removed


def _client_class() -> Any:
    import asyncio

    from nbclient import NotebookClient

    class GuardedClient(NotebookClient):
        """Remembers which cells hit the per-cell timeout (the kernel only reports an interrupt),
        and stops a cell that prints more than ``output_cap`` bytes instead of keeping it all."""

        timed_out: set[int] = set()
        flooded: set[int] = set()
        output_cap: int = 16 * 2**20
        _printed: dict[int, int] = {}

        async def _async_handle_timeout(self, timeout: int, cell: Any = None) -> Any:
            if cell is not None:
                self.timed_out.add(id(cell))
            return await super()._async_handle_timeout(timeout, cell)

        def output(self, outs: Any, msg: dict[str, Any], display_id: Any, cell_index: int) -> Any:
            printed = self._printed.get(cell_index, 0) + len(json.dumps(msg.get("content", {})))
            self._printed[cell_index] = printed
            if printed <= self.output_cap:
                return super().output(outs, msg, display_id, cell_index)
            if cell_index not in self.flooded:
                self.flooded.add(cell_index)
                asyncio.ensure_future(self.km.interrupt_kernel())
            return None

    return GuardedClient


def cell_record(index: int, cell: Any, timed_out: bool = False, flooded: bool = False) -> dict[str, Any]:
    """What happened in one executed cell, as plain data (a ``sandbox.CellRun``). ``figures``
    counts plots as ``figures`` explains: a figure with a loss and an accuracy subplot is two."""
    if cell.cell_type == "markdown":
        return {"index": index, "type": "markdown", "status": "ok", "words": len(cell.source.split())}
    if cell.cell_type != "code":
        return {"index": index, "type": cell.cell_type, "status": "ok"}
    status, error, raised = "ok", None, None
    figures = 0
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            status = "error"
            raised = _raised(out, cell.get("execution_count"))
            error = f"{raised['type']}: {raised['message']}"[:500]
        elif out.get("output_type") in ("display_data", "execute_result"):
            data = out.get("data", {})
            if any(m in data for m in FIGURE_MIMES):
                figures += plots_of_output(data)
    if timed_out:
        status, error = "timeout", f"{TIMEOUT_ENAME}: the cell was interrupted after the time limit"
        raised = {"type": TIMEOUT_ENAME, "message": "the cell was interrupted after the time limit",
                  "line": raised["line"] if raised else None}
    elif flooded:
        status, error = "error", "OutputLimit: the cell printed more than allowed and was interrupted"
        raised = {"type": "OutputLimit", "message": "the cell printed more than allowed and was interrupted",
                  "line": raised["line"] if raised else None}
    return {"index": index, "type": "code", "status": status, "error": error, "raised": raised, "figures": figures,
            "source": cell.source[:400], "output": _text_output(cell)}


def _raised(out: dict[str, Any], execution_count: Any) -> dict[str, Any]:
    """An error output as a ``sandbox.Raised``: type, message, the line of the cell it raised at
    (IPython's ``Cell In[n], line L`` frame of this very cell; the first such frame otherwise)
    and, for a ModuleNotFoundError, the module it could not find."""
    ename, evalue = str(out.get("ename")), IPYTHON_FILE.sub(r"(line \1 of the cell)", str(out.get("evalue")))
    frames = [(int(n), int(line)) for text in out.get("traceback", [])
              for n, line in CELL_FRAME.findall(ANSI.sub("", str(text)))]
    own = [line for n, line in frames if n == execution_count]
    line = own[0] if own else frames[0][1] if frames else None
    missing = MISSING_MODULE.match(evalue) if ename == "ModuleNotFoundError" else None
    return {"type": ename[:200], "message": evalue[:500], "line": line,
            "missing_module": missing.group(1)[:200] if missing else None}


def _text_output(cell: Any, limit: int = 2000) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif out.get("output_type") == "error":
            parts.append("\n".join(out.get("traceback", [])))
    text = ANSI.sub("", "".join(parts))  # ANSI colours from IPython tracebacks
    return text if len(text) <= limit else text[: limit // 2] + "\n[... cut ...]\n" + text[-limit // 2:]


def execute(job: dict[str, Any], execution: dict[str, Any], save: Any) -> None:
    """Run the notebook cells, then the probe cell. ``save(execution)`` persists the record."""
    import nbformat
    from nbclient.exceptions import DeadKernelError

    entry = job["entry"]
    try:
        nb = nbformat.read(entry["notebook"], as_version=4)
    except Exception as exc:  # noqa: BLE001 - any unreadable notebook is the student's to fix
        execution["problem"] = f"the notebook cannot be read: {str(exc).splitlines()[0][:300]}"
        save(execution)
        return
    execution["removed_commands"] = sanitize(nb)
    limits = job["limits"]
    from grader.sandbox import warm

    if warm.in_place:  # this runner is a warm fork: its kernel is forked from it, torch already imported
        from grader.sandbox import warm_kernel

        warm_kernel.use_forked_kernels()
    client = _client_class()(
        nb, timeout=int(limits["cell_seconds"]), kernel_name=KERNEL_NAME, allow_errors=True,
        interrupt_on_timeout=True, error_on_timeout={"ename": TIMEOUT_ENAME,
                                                     "evalue": f"the cell ran longer than {limits['cell_seconds']:g}s"},
        resources={"metadata": {"path": entry["root"]}}, startup_timeout=120)
    client.timed_out, client.flooded, client._printed = set(), set(), {}
    client.output_cap = int(limits["output_mb"]) * 2**20
    # Kernel and client talk over Unix sockets in a private folder, not over TCP on localhost,
    # where any local process could connect to them.
    client.create_kernel_manager()
    client.km.transport = "ipc"
    client.km.ip = str(_private_dir("kernel") / "socket")
    cells = execution["cells"]
    with client.setup_kernel():
        kernel_process = getattr(client.km.provisioner, "process", None)
        _count_plots(client, nb)
        _cuda_fallback(client, nb, execution)
        _serve_data(client, nb)
        for index, cell in enumerate(nb.cells):
            if execution["kernel_died"]:
                cells.append({"index": index, "type": cell.cell_type, "status": "skipped"})
                continue
            try:
                client.execute_cell(cell, index)
            except DeadKernelError:
                execution["kernel_died"] = True
                execution["died_in_cell"] = index
                execution["kernel_signal"] = _killed_by(kernel_process)
            cells.append(cell_record(index, cell, id(cell) in client.timed_out, index in client.flooded))
            execution["output_limited"] = bool(client.flooded)
            if execution["kernel_died"]:
                cells[-1]["status"] = "died"
        if not execution["kernel_died"] and data_paths.wanted_by([c.source for c in nb.cells if c.cell_type == "code"]):
            execution["data_served"] = _data_served(client, nb)
        save(execution)
        if execution["kernel_died"]:
            return
        probe = nbformat.v4.new_code_cell(
            "import grader.sandbox.probe_side as _grader_probe_side\n"
            f"_grader_probe_side.run_in_kernel(globals(), {json.dumps(job['job_path'])})\n"
            "del _grader_probe_side")
        nb.cells.append(probe)
        client.timeout = None  # the supervisor's wall deadline bounds the probes
        try:
            client.execute_cell(probe, len(nb.cells) - 1)
        except DeadKernelError:
            execution["kernel_died"] = True
            execution["died_in_cell"] = "probes"
            execution["kernel_signal"] = _killed_by(kernel_process)
        record = cell_record(len(nb.cells) - 1, probe)
        if record["status"] != "ok":
            execution["probe_failure"] = record["output"][-2000:]
        save(execution)


def _cuda_fallback(client: Any, nb: Any, execution: dict[str, Any]) -> None:
    """Before the student's cells: if they ask for CUDA, let the kernel fall back to the CPU where
    there is no GPU (``cpu_fallback``), and record what asked for it."""
    from grader.sandbox import cpu_fallback

    asked = cpu_fallback.mentions([(f"cell {i + 1}", c.source) for i, c in enumerate(nb.cells) if c.cell_type == "code"])
    if asked and _run_setup(client, nb, "import grader.sandbox.cpu_fallback as _grader_cpu_fallback\n"
                                         "_grader_cpu_fallback.install()"):
        execution["cuda_on_cpu"] = asked


def _serve_data(client: Any, nb: Any) -> None:
    """Torchvision data sets find the grader's copy of the data wherever the cells look (``data_paths``),
    literal split sizes fit a synthetic stand-in (``data_sizes``), and provided modules answer to the
    names students import them by (``provided_aliases``)."""
    from grader.sandbox import data_sizes, provided_aliases

    sources = [c.source for c in nb.cells if c.cell_type == "code"]
    if data_paths.wanted_by(sources):
        _run_setup(client, nb, "import grader.sandbox.data_paths as _grader_data_paths\n_grader_data_paths.install()")
    if data_sizes.wanted_by(sources) and os.environ.get(data_sizes.ENV):
        _run_setup(client, nb, "import grader.sandbox.data_sizes as _grader_data_sizes\n_grader_data_sizes.install()")
    if os.environ.get(provided_aliases.ENV):  # the course's reader under the names students import it by
        _run_setup(client, nb, "import grader.sandbox.provided_aliases as _grader_aliases\n_grader_aliases.install()")


def _count_plots(client: Any, nb: Any) -> None:
    """Before the student's cells: displayed matplotlib figures say how many plots they hold
    (``figures``), so a figure with two subplots counts two."""
    _run_setup(client, nb, "import grader.sandbox.figures as _grader_figures\n_grader_figures.install()")


def _run_setup(client: Any, nb: Any, source: str) -> bool:
    """Run a setup cell of the grader's in the kernel; whether its last expression was ``True``."""
    return _kernel_value(client, nb, source) == "True"


def _kernel_value(client: Any, nb: Any, source: str) -> str | None:
    """Run a cell of the grader's in the kernel; the text of its last expression's value, if any.
    The cell is run at index 0 and taken out again, so the student's cells keep their numbers."""
    import nbformat

    setup = nbformat.v4.new_code_cell(source)
    nb.cells.insert(0, setup)
    try:
        client.execute_cell(setup, 0)
    finally:
        nb.cells.pop(0)
        client._printed.pop(0, None)
    results = [o for o in setup.get("outputs", []) if o.get("output_type") == "execute_result"]
    return results[0].get("data", {}).get("text/plain") if results else None


def _data_served(client: Any, nb: Any) -> list[str]:
    """The cells' data-set calls whose root the kernel replaced by the grader's copy (``data_paths``).
    Only shown to the student: whatever the kernel says is read as plain JSON and kept if it is a
    list of strings."""
    import ast

    text = _kernel_value(client, nb, "import json as _grader_json, grader.sandbox.data_paths as _grader_data_paths\n"
                                     "_grader_json.dumps(_grader_data_paths.served())")
    try:
        served = json.loads(ast.literal_eval(text)) if text else []
    except (ValueError, SyntaxError, TypeError):
        return []
    if not isinstance(served, list) or not all(isinstance(call, str) for call in served):
        return []
    return [call[:300] for call in served][:data_paths.MAX_SHOWN]


def _killed_by(process: Any) -> int | None:
    """The signal that ended the kernel process (SIGXCPU, SIGSEGV...), or None if it exited."""
    import subprocess

    if process is None:
        return None
    try:
        code = process.wait(timeout=5)
    except (subprocess.TimeoutExpired, OSError):
        return None
    return -code if code is not None and code < 0 else None


def _private_dir(name: str) -> Path:
    import tempfile

    return Path(tempfile.mkdtemp(prefix=f"grader-{name}-"))
