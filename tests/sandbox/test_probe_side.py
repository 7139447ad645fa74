"""The probe side's records (``sandbox.probe_side``): one check whose captures do not fit in what
the run may write loses only its own record, and says why."""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pytest

from grader import observations
from grader.sandbox import probe_side

ROOM = 4096  # bytes of arrays this test's run may write


@pytest.fixture
def run_with_little_room(monkeypatch):
    """Runs the probe side on three checks, the middle one capturing more than ``ROOM`` allows."""
    sizes = {"small": 16, "huge": 4 * ROOM, "after": 16}

    def probe_one(raw, ctx, writer):
        return {"check": raw["id"], "status": "observed", "seconds": 0.1,
                "data": writer.encode({"values": np.zeros(sizes[raw["id"]], dtype=np.uint8)})}

    write = observations.write

    def write_with_little_room(out_dir: Path, records, writer) -> None:
        write(out_dir, records, writer)  # half-written, as a write cut off by RLIMIT_FSIZE leaves it
        if sum(a.nbytes for a in writer.arrays.values()) > ROOM:
            raise OSError(errno.EFBIG, "File too large")

    monkeypatch.setattr(probe_side, "probe_one", probe_one)
    monkeypatch.setattr(observations, "write", write_with_little_room)

    def run(out_dir: Path):
        plan = {"seed": 0, "targets": {}, "checks": [{"id": name, "kind": "shape"} for name in sizes]}
        probe_side.run({"out_dir": str(out_dir), "plan": plan}, [])
        return observations.load(out_dir)

    return run


def test_a_capture_too_large_to_write_costs_only_its_own_record(tmp_path, run_with_little_room):
    doc, arrays = run_with_little_room(tmp_path)
    by_check = {r.check: r for r in doc.records}
    assert [by_check[c].status for c in ("small", "huge", "after")] == ["observed", "probe-error", "observed"]
    huge = by_check["huge"]
    assert huge.data is None and huge.error.type == "CaptureTooLarge"
    assert huge.error.message.startswith("its captured artifacts did not fit in what the run may write (the "
                                         "limits' disk_mb, shared with the student's own files): File too large")
    assert sum(a.nbytes for a in arrays.values()) == 32  # the two small checks' arrays, nothing of the huge one
    assert not (tmp_path / ".partial" / observations.ARRAYS_NAME).exists()


def test_other_write_failures_are_not_taken_for_want_of_room(tmp_path, monkeypatch):
    def probe_one(raw, ctx, writer):
        return {"check": raw["id"], "status": "observed", "data": {}}

    def unwritable(out_dir, records, writer):
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(probe_side, "probe_one", probe_one)
    monkeypatch.setattr(observations, "write", unwritable)
    with pytest.raises(PermissionError):
        probe_side.run({"out_dir": str(tmp_path), "plan": {"seed": 0, "targets": {}, "checks": [{"id": "a"}]}}, [])
