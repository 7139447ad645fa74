"""Parsing Python source on the host, one thread at a time.

A batch grades submissions in several threads, and several of them read source (the host's scan,
the op rescan, the provided files, the scaled splits). CPython 3.11's AST constructor keeps a
recursion counter per interpreter that two threads parsing at once corrupt: one of them fails with
``SystemError: AST constructor recursion depth mismatch``. Every host-side parse goes through here.
"""

from __future__ import annotations

import ast
import threading

_one_at_a_time = threading.Lock()


def parse(text: str, filename: str = "<submitted>", flags: int = 0) -> ast.Module:
    """``ast.parse`` (with ``compile``'s extra ``flags``), under the lock."""
    with _one_at_a_time:
        return compile(text, filename, "exec", flags=ast.PyCF_ONLY_AST | flags, dont_inherit=True)
