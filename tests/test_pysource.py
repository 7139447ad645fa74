"""Host-side parsing goes through ``grader.pysource``, one thread at a time (a batch's threads
parsing at once broke CPython 3.11's AST constructor: "recursion depth mismatch")."""

from __future__ import annotations

import re
import threading
from pathlib import Path

from grader import pysource

GRADER = Path(__file__).resolve().parents[1] / "grader"
DIRECT = re.compile(r"\bast\.parse\(|PyCF_ONLY_AST")


def test_no_host_module_parses_source_itself():
    offenders = [str(path.relative_to(GRADER)) for path in GRADER.rglob("*.py")
                 if path.name != "pysource.py" and DIRECT.search(path.read_text())]
    assert offenders == []


def test_parses_from_many_threads_all_succeed():
    text = "def f():\n" + "".join(f"    x{i} = [[({i}, {{'a': [1, (2, 3)]}})]]\n" for i in range(200))
    failures: list[BaseException] = []

    def parse_often() -> None:
        for _ in range(20):
            try:
                assert pysource.parse(text).body[0].name == "f"
            except BaseException as exc:  # noqa: BLE001 - collected and reported below
                failures.append(exc)

    threads = [threading.Thread(target=parse_often) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
