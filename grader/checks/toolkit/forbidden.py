"""Forbidden implementations: did a hand-written op secretly call the torch op it re-implements?

Two independent detectors, because neither is enough alone:

* **Static scan** (``scan``): an AST walk of the op's source for the names of the counterpart
  (``conv2d``, ``F.max_pool2d``, ``nn.ReLU`` ...) and for the usual ways of hiding a call
  (``eval``/``exec``, ``__import__``, ``importlib``, ``getattr`` with a computed name,
  ``torch._C``, ``torch.ops``). It says where: the function and the line.
* **Dispatch record** (``OpRecorder``): the torch functions (a ``TorchFunctionMode``) and the
  aten operators (a ``TorchDispatchMode``) actually called while the student's forward and
  backward ran, e.g. ``torch.nn.functional.max_pool2d`` and ``aten.max_pool2d_with_indices``.
  Renaming, ``getattr(F, "conv" + "2d")`` or ``torch.ops.aten.convolution`` do not hide a call
  from the dispatcher. Legitimate building blocks (``unfold``/``aten.im2col``, ``as_strided``,
  ``mul``, ``sum``, ``max``) are not on any default list.

Trust. Both detectors' *inputs* come from the student's process: the probe collects the source
text (``collect_sources``) and the operator names there, and a determined student can tamper
with either (patch ``inspect`` or ``linecache``, pop the dispatch mode, rewrite the record). So
the matching runs on the host, in the judge, on plain strings: the student can lie about what
ran, but cannot change what counts as forbidden or what a hit costs. Hiding from the dispatcher
takes ``torch._C`` or the mode stack (``_python_dispatch``, ``torch.overrides``), which the
static scan flags. Hiding from the scan takes tampering outside the op's own code, which this
module cannot see; that is why the host should also scan the submission's files as submitted
(``class_source_in`` finds the class in a module's or notebook cell's text that never passed
through the student's process). A hit is a failure *flagged for human review*, never a silent
verdict: both detectors can be fooled, and both can misfire on unusual but honest code.
"""

from __future__ import annotations

import dataclasses

import ast
import fnmatch
import functools
import inspect
import linecache
import os
import sys
import textwrap
import types
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from pydantic import BaseModel, ConfigDict

from grader import pysource
from grader.checks.base import Verdict

# Ways of reaching a function without naming it; scanned for whatever the counterpart is.
# `getattr` stands for "getattr whose attribute name is not a plain string literal".
EVASION_NAMES = ["eval", "exec", "compile", "__import__", "importlib", "getattr", "globals", "__dict__",
                 "__builtins__", "__getattribute__", "_C", "torch.ops", "aten", "_python_dispatch",
                 "torch.overrides"]

# Per counterpart: names the source must not mention, torch functions / aten operators it must
# not run. Names are matched whole (fnmatch globs); an op name is `aten.<op>` or `torch.<function>`.
DEFAULTS: dict[str, tuple[list[str], list[str]]] = {
    "Conv2d": (["conv1d", "conv2d", "conv3d", "convolution", "_convolution", "conv_transpose*",
                "Conv1d", "Conv2d", "Conv3d", "LazyConv*", "ConvTranspose*"],
               ["aten.*convolution*", "aten.*conv[123]d*", "aten.*conv_depthwise*", "aten.*conv_transpose*",
                "aten.*conv_dilated*", "aten.*conv_tbc*", "torch.*conv[123]d", "torch.*convolution*",
                "torch.*conv_transpose*"]),
    "MaxPool2d": (["*max_pool*", "*MaxPool*"], ["aten.*max_pool*", "torch.*max_pool*"]),
    "ReLU": (["relu", "relu_", "relu6", "ReLU", "ReLU6", "threshold", "threshold_", "Threshold", "leaky_relu",
              "LeakyReLU", "hardtanh", "hardtanh_", "Hardtanh", "rrelu", "RReLU", "prelu", "PReLU"],
             ["aten.*relu*", "aten.threshold*", "aten.hardtanh*", "torch.*relu*", "torch.*threshold*",
              "torch.*hardtanh*"]),
}


def snake_case(name: str) -> str:
    """``MaxPool2d`` -> ``max_pool2d``, ``AvgPool2d`` -> ``avg_pool2d``: the functional spelling."""
    return "".join(f"_{c.lower()}" if c.isupper() and i and not name[i - 1].isupper() else c.lower()
                   for i, c in enumerate(name))


def default_names(counterpart: str) -> list[str]:
    """Forbidden source names for ``torch.nn.<short>``: curated for the course's ops, else the class
    name and its functional spelling (give the rubric's own list for anything subtler)."""
    short = counterpart.rsplit(".", 1)[-1]
    names = DEFAULTS[short][0] if short in DEFAULTS else [short, snake_case(short)]
    return names + EVASION_NAMES


def default_ops(counterpart: str) -> list[str]:
    short = counterpart.rsplit(".", 1)[-1]
    if short in DEFAULTS:
        return DEFAULTS[short][1]
    return [f"aten.*{snake_case(short)}*", f"torch.*{snake_case(short)}*"]


# ---------------------------------------------------------------- review flag


def flag(verdict: Verdict, reason: str) -> Verdict:
    """The same verdict, flagged for human review."""
    return dataclasses.replace(verdict, review=reason)


# ---------------------------------------------------------------- static scan (host side)


class SourcePiece(BaseModel):
    """One piece of the op's source: a class or function, and the line it starts on."""

    model_config = ConfigDict(extra="forbid", strict=True)
    name: str
    first_line: int
    text: str


@dataclass(frozen=True)
class Hit:
    """One forbidden thing: what (``F.conv2d``, ``eval``), where (``Conv2d.forward, line 12``) and
    how it was found (``in the source``, ``called during backward``)."""

    found: str
    where: str
    how: str


def matches(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def scan(pieces: list[SourcePiece], patterns: list[str]) -> tuple[list[Hit], list[str]]:
    """Forbidden names in the op's source; also the names of pieces that are not valid Python.

    Rules: a dotted pattern (``torch.ops``) matches an attribute chain or import that starts
    with it; a plain pattern matches a bare name, an attribute, an imported name, or a string
    literal that is a (dotted) identifier. Names the pieces themselves define (classes,
    functions, arguments, variables) and attributes of ``self``/``cls`` are the student's own
    and never hits, so a helper the student wrote and named ``conv2d`` is not a hit, while
    ``conv2d`` imported from torch is.
    """
    trees, unreadable = [], []
    for piece in pieces:
        try:
            tree = pysource.parse(textwrap.dedent(piece.text))
            trees.append((piece, tree, _own_names(tree)))
        except (SyntaxError, ValueError, RecursionError, MemoryError):  # the text comes from the sandbox
            unreadable.append(piece.name)
    own = set().union(*(names for _, _, names in trees))
    hits: list[Hit] = []
    for piece, tree, _ in trees:
        try:
            hits += _Scanner(patterns, own, piece.first_line).run(tree)
        except RecursionError:
            unreadable.append(piece.name)
    return hits, unreadable


def _own_names(tree: ast.AST) -> set[str]:
    own: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            own.add(node.name)
        elif isinstance(node, ast.arg):
            own.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            own.add(node.id)
    return own


def _dotted(node: ast.AST) -> str | None:
    """``torch.ops.aten.convolution`` for a chain of names and attributes, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


def _prefixes(dotted_name: str) -> list[str]:
    """``a.b.c`` -> ``a.b``, ``a.b.c``: what a dotted pattern such as ``torch.ops`` is matched to."""
    parts = dotted_name.split(".")
    return [".".join(parts[:n]) for n in range(2, len(parts) + 1)]


class _Scanner(ast.NodeVisitor):
    def __init__(self, patterns: list[str], own: set[str], first_line: int):
        self.plain = [p for p in patterns if "." not in p]
        self.dotted = [p for p in patterns if "." in p]
        self.own, self.first_line = own, first_line
        self.scope: list[str] = []
        self.hits: list[Hit] = []

    def run(self, tree: ast.AST) -> list[Hit]:
        self.visit(tree)
        return self.hits

    def hit(self, found: str, node: ast.AST) -> None:
        line = self.first_line + getattr(node, "lineno", 1) - 1
        self.hits.append(Hit(found, f"{'.'.join(self.scope) or 'top level'}, line {line}", "in the source"))

    def forbidden(self, dotted_name: str) -> bool:
        """A dotted pattern matches a prefix of the name; a plain one matches any of its parts."""
        return any(matches(p, self.dotted) for p in _prefixes(dotted_name)) or \
            any(matches(part, self.plain) for part in dotted_name.split(".") if part)

    def visit_scope(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = visit_scope

    def visit_Name(self, node: ast.Name) -> None:
        if node.id not in self.own and matches(node.id, self.plain):
            self.hit(node.id, node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        chain = _dotted(node)
        if chain is None:  # e.g. f(x).conv2d: the attribute, then whatever is inside the base
            if matches(node.attr, self.plain):
                self.hit(f"(...).{node.attr}", node)
            self.visit(node.value)
            return
        root, _, attributes = chain.partition(".")
        if root in ("self", "cls"):
            return
        if any(matches(p, self.dotted) for p in _prefixes(chain)) or \
                any(matches(a, self.plain) for a in attributes.split(".")) or \
                (root not in self.own and matches(root, self.plain)):
            self.hit(chain, node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if self.forbidden(alias.name):
                self.hit(f"import {alias.name}", node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            name = f"{node.module}.{alias.name}" if node.module else alias.name
            if self.forbidden(name):
                self.hit(f"from {node.module or '.'} import {alias.name}", node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name) and func.id == "getattr" and "getattr" in self.plain and len(node.args) >= 2:
            name = node.args[1]
            if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
                self.hit(f"getattr with a computed name: {ast.unparse(node)}", node)
            for arg in node.args:
                self.visit(arg)
            return
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, str) and value.replace(".", "_").isidentifier() and self.forbidden(value):
            self.hit(repr(value), node)


def class_source_in(text: str, class_name: str, containing_line: int | None = None) -> tuple[str, int] | None:
    """The source of ``class class_name`` (or ``def class_name``) in a module's or notebook cell's
    text and its first line (the one around ``containing_line`` if several have that name). Lets
    the host scan what the student wrote rather than what their process reported."""
    try:
        tree = pysource.parse(text)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if not (isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == class_name):
            continue
        start = node.decorator_list[0].lineno if node.decorator_list else node.lineno
        if containing_line is None or start <= containing_line <= (node.end_lineno or start):
            return "".join(text.splitlines(keepends=True)[start - 1:node.end_lineno]), start
    return None


def scan_submitted(files: list[tuple[str, str]], names: str | list[str],
                   patterns: list[str]) -> tuple[list[Hit], list[str]]:
    """The static scan on the host's own copy of the submission, which the student's process
    never touched: ``files`` are ``(label, text)`` pairs (notebook code cells, module files), and
    every definition of one of ``names`` (the op's class, or its factory) in them is scanned.
    Returns hits and reasons for review (none of the names is defined in the files as submitted:
    the op was built at run time)."""
    wanted = [names] if isinstance(names, str) else list(dict.fromkeys(names))
    pieces = []
    for label, text in files:
        for name in wanted:
            found = class_source_in(_without_shell_lines(text), name)
            if found is not None:
                pieces.append((label, SourcePiece(name=name, first_line=found[1], text=found[0])))
    if not pieces:
        return [], [f"{' / '.join(wanted)} is not defined in the submitted files"]
    hits: list[Hit] = []
    doubts = []
    for label, piece in pieces:
        found_hits, unreadable = scan([piece], patterns)
        hits += [Hit(h.found, f"{label}: {h.where}", "in the submitted source") for h in found_hits]
        doubts += [f"the source of {piece.name} in {label} is not valid Python" for _ in unreadable]
    return hits, doubts


def _without_shell_lines(text: str) -> str:
    """A notebook cell with its IPython magics and shell escapes (``%``, ``!``) blanked, lines kept."""
    return "".join("\n" if line.lstrip().startswith(("%", "!")) else line for line in text.splitlines(keepends=True))


# ---------------------------------------------------------------- source collection (probe side)

MAX_PIECES = 30
MAX_SOURCE_CHARS = 200_000


def collect_sources(target: Any, also: Iterable[Any] = ()) -> tuple[list[SourcePiece], list[str]]:
    """The op's source, and what could not be read.

    The pieces: the target (a class, or a factory function), then whatever else the student
    defined among ``also`` (the classes the factory built), the student's own base classes, and
    the student-defined functions and classes their code names as globals, transitively. A class
    comes from the file or notebook cell its methods were compiled from, because a notebook's
    classes have no file of their own."""
    pieces: list[SourcePiece] = []
    problems: list[str] = []
    seen: set[int] = set()
    queue = [(target, True), *((obj, False) for obj in also)]
    chars = 0
    while queue and len(pieces) < MAX_PIECES and chars < MAX_SOURCE_CHARS:
        obj, is_target = queue.pop(0)
        if id(obj) in seen or not (is_target or _student_defined(obj)):
            continue
        seen.add(id(obj))
        piece = _source_of(obj)
        if piece is None:
            problems.append(f"the source of {getattr(obj, '__qualname__', type(obj).__name__)} could not be read")
        else:
            pieces.append(piece)
            chars += len(piece.text)
        for fn in _functions_of(obj):
            seen.add(id(fn))
            queue.extend((g, False) for g in _referenced_globals(fn))
        if inspect.isclass(obj):
            queue.extend((base, False) for base in obj.__mro__[1:])
    return pieces, problems


def _code_file(obj: Any) -> str:
    functions = _functions_of(obj)
    if functions:
        return functions[0].__code__.co_filename
    try:
        return inspect.getfile(obj)
    except TypeError:
        return ""


def _student_defined(obj: Any) -> bool:
    """A function or class whose code lives outside the installed libraries (in a notebook cell
    or one of the student's modules)."""
    if not (inspect.isclass(obj) or inspect.isfunction(obj)):
        return False
    path = _code_file(obj)
    if not path:
        return False
    real = os.path.realpath(path)
    return not any(p.startswith(folder) for p in (path, real) for folder in library_folders())


@functools.cache
def library_folders() -> tuple[str, ...]:
    """Where installed code lives: the interpreter's prefixes, every site-packages folder (the
    user's too), and the folders torch and numpy were imported from, which a user site,
    ``PYTHONPATH`` or a ``.pth`` file may put outside the prefixes (torch's own methods would
    otherwise count as the student's)."""
    import site
    import sysconfig

    folders = {sys.prefix, sys.base_prefix, sys.exec_prefix, *sysconfig.get_paths().values()}
    try:
        folders |= {*site.getsitepackages(), site.getusersitepackages()}
    except AttributeError:  # a virtualenv's old site module
        pass
    for name in ("torch", "numpy"):
        module = sys.modules.get(name)
        if module is not None and getattr(module, "__file__", None):
            folders.add(os.path.dirname(os.path.dirname(module.__file__)))
    return tuple(sorted({os.path.realpath(f).rstrip("/") + "/" for f in folders if f} |
                        {f.rstrip("/") + "/" for f in folders if f}))


def _functions_of(obj: Any) -> list[types.FunctionType]:
    if inspect.isfunction(obj):
        return [obj]
    if not inspect.isclass(obj):
        return []
    found = []
    for value in vars(obj).values():
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if isinstance(value, property):
            found += [f for f in (value.fget, value.fset) if inspect.isfunction(f)]
        elif inspect.isfunction(value):
            found.append(value)
    return found


def _referenced_globals(fn: types.FunctionType) -> list[Any]:
    names: set[str] = set()
    stack = [fn.__code__]
    while stack:
        code = stack.pop()
        names.update(code.co_names)
        stack.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    return [fn.__globals__[n] for n in sorted(names) if n in fn.__globals__]


def _source_of(obj: Any) -> SourcePiece | None:
    name = getattr(obj, "__qualname__", type(obj).__name__)
    if inspect.isclass(obj):
        for fn in _functions_of(obj):
            code = fn.__code__
            text = "".join(linecache.getlines(code.co_filename))
            found = class_source_in(text, obj.__name__, code.co_firstlineno) if text else None
            if found is not None:
                return SourcePiece(name=name, first_line=found[1], text=found[0])
    try:
        lines, first = inspect.getsourcelines(obj)
    except (OSError, TypeError):
        return None
    return SourcePiece(name=name, first_line=max(first, 1), text="".join(lines))


# ---------------------------------------------------------------- dispatch record (probe side)


def function_name(func: Any) -> str:
    """``torch.nn.functional.max_pool2d``, ``torch.conv2d``, ``torch.Tensor.relu`` for a function
    seen by a ``TorchFunctionMode``."""
    try:
        if type(func).__name__ == "method-wrapper":  # a property of Tensor, e.g. `.shape`
            func = func.__self__
        name = getattr(func, "__name__", type(func).__name__)
        owner = getattr(func, "__objclass__", None)
        qualname = getattr(func, "__qualname__", "") or ""
        if owner is not None or str(qualname).split(".")[0] in ("Tensor", "TensorBase"):
            return f"torch.Tensor.{name}"
        return f"{getattr(func, '__module__', None) or 'torch'}.{name}"
    except Exception:  # noqa: BLE001 - a student's callable may refuse to be named
        return f"<{type(func).__name__}>"


class OpRecorder:
    """Names of the torch functions and aten operators run inside ``watching(phase)`` blocks.

    The modes keep the function objects themselves (a set lookup per call, which matters for
    ops written as scalar loops) and name them only when asked."""

    MAX_DISTINCT = 2000

    def __init__(self) -> None:
        self.seen: dict[str, set[Any]] = {}

    @contextmanager
    def watching(self, phase: str) -> Iterator[None]:
        from torch.overrides import TorchFunctionMode
        from torch.utils._python_dispatch import TorchDispatchMode

        seen = self.seen.setdefault(phase, set())
        limit = self.MAX_DISTINCT

        def note(what: str, func: Any) -> None:
            if len(seen) < limit:
                try:
                    seen.add((what, func))
                except TypeError:  # an unhashable callable: name it now
                    seen.add(("name", function_name(func)))

        class FunctionRecorder(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
                note("function", func)
                return func(*args, **(kwargs or {}))

        class DispatchRecorder(TorchDispatchMode):
            @classmethod
            def _should_skip_dynamo(cls) -> bool:  # no torch.compile here; skipping it costs importing dynamo
                return False

            def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
                note("operator", func)
                return func(*args, **(kwargs or {}))

        with FunctionRecorder(), DispatchRecorder():
            yield

    def names(self, phase: str) -> list[str]:
        """``aten.convolution`` for an operator (any overload), ``torch.conv2d`` for a function."""
        named = {"operator": lambda op: str(op._overloadpacket), "function": function_name, "name": str}
        return sorted({named[what](func) for what, func in self.seen.get(phase, ())})
