"""The host's static scan of a whole submission: code that can reach into the grader or torch's
dispatcher is flagged for a person to review.

Probes run inside the student's process (``docs/architecture.md``), so a student who has read our
source could rebind a probe's helpers, walk the garbage collector to find its objects, climb the
stack into its frames, or hook torch's dispatcher so that the probe sees something else than what
ran. The judge never believes that process about anything that decides points, but it cannot see
such tampering either. This scan can: it reads the host's own copy of every cell and module
(``submission.code_texts``, taken before the student's process ran, so the student cannot alter
it) and reports each line that uses one of the ways in listed in ``RULES``.

A finding never changes points. It puts the submission in the review queue with the line that
raised it; a person decides. Rules are chosen so that honest work for these courses normally
raises none (an honest notebook seeds torch, appends to ``sys.path``, sets cuDNN flags, writes its
own ``torch.autograd.Function`` when the assignment is about custom ops): a rule that fires on
honest work costs every grader's time and teaches them to ignore the queue. Everything here is
plain ``ast`` over text; nothing the student wrote is imported or run.

What the scan cannot do: see code built at run time (that is why building it is itself a
finding), or tell what a local variable holds (``getattr(obj, name)`` on a computed name is not
followed). It is one more detector beside the sandbox and the closed observation schemas, not a
proof.
"""

from __future__ import annotations

import ast
import builtins
import fnmatch
import re
from dataclasses import dataclass
from typing import Iterable, Iterator

from grader import pysource
from grader.results import SourceFlag
from grader.rubric import Rubric


@dataclass(frozen=True)
class Rule:
    """One way in. ``names`` are qualified names (globs) whose use is a finding wherever it is
    written: resolved through the submission's imports, so ``from inspect import currentframe as cf;
    cf()`` is ``inspect.currentframe``, and an unbound builtin such as ``eval`` is ``builtins.eval``.
    ``attributes`` are attribute names that are findings on any object (``frame.f_back``). Rules
    without either are structural and found by the scanner's own code (an assignment, a class)."""

    reason: str
    names: tuple[str, ...] = ()
    attributes: tuple[str, ...] = ()


# The rule table: what is flagged and what a reviewer reads about it, in one place. Kept out on
# purpose, because honest notebooks use them and none reaches the grader: `os._exit`, `sys.exit`
# (they only end the student's own run, recorded as their error); `importlib.reload` (reloading
# one's own helper module while developing; reloading the grader is caught as reaching the grader);
# `gc.collect` (freeing memory); `torch.compile`, `re.compile`, `model.eval()` (not the builtins);
# `getattr` with a computed name (configurable models use it; `forbidden.py` flags it inside an op).
RULES: dict[str, Rule] = {
    "grader": Rule(
        "reaches into the grader's own code", names=("grader", "grader.*")),
    "grader-files": Rule(
        "names a file the grader reads or writes (observations, results, journal)"),
    "interpreter": Rule(
        "inspects the interpreter's modules, frames or objects, which reaches the probes' code and data",
        names=("sys.modules", "sys._getframe", "sys._current_frames", "sys.settrace", "sys.setprofile",
               "sys.addaudithook", "threading.settrace", "threading.setprofile", "inspect.currentframe",
               "inspect.stack", "inspect.trace", "inspect.getouterframes", "gc.get_objects", "gc.get_referrers",
               "gc.get_referents"),
        attributes=("f_back", "f_globals", "f_locals", "f_builtins", "gi_frame", "cr_frame", "ag_frame", "tb_frame",
                    "__globals__", "__code__", "__subclasses__")),
    "dispatcher": Rule(
        "hooks torch's dispatcher (torch._C, operator registry, dispatch or function modes, overrides)",
        names=("torch._C", "torch._C.*", "torch.ops", "torch.ops.*", "torch._ops", "torch._ops.*", "torch.library",
               "torch.library.*", "torch.overrides", "torch.overrides.*", "torch.utils._python_dispatch",
               "torch.utils._python_dispatch.*", "torch._subclasses", "torch._subclasses.*", "*.TorchDispatchMode",
               "*.TorchFunctionMode", "*._make_subclass"),
        attributes=("__torch_function__", "__torch_dispatch__", "_make_subclass")),
    "tensor-subclass": Rule(
        "defines a torch.Tensor subclass: its methods run inside torch's own calls on its tensors"),
    "autograd-function": Rule(
        "defines a custom torch.autograd.Function, which this assignment forbids"),
    "native-code": Rule(
        "loads native code (ctypes, cffi, C++ extensions), which can change any memory of the process",
        names=("ctypes", "ctypes.*", "_ctypes", "_ctypes.*", "cffi", "cffi.*", "torch.utils.cpp_extension",
               "torch.utils.cpp_extension.*")),
    "dynamic-code": Rule(
        "runs code built at run time (exec, eval, compile, __import__, importlib), which no scan can read",
        names=("builtins.exec", "builtins.eval", "builtins.compile", "builtins.__import__", "importlib.import_module",
               "importlib.__import__", "importlib.util", "importlib.util.*", "importlib.machinery",
               "importlib.machinery.*", "runpy", "runpy.*", "marshal", "marshal.*", "types.CodeType"),
        attributes=("run_cell", "run_cell_magic", "run_code", "safe_execfile")),
    "builtins": Rule(
        "changes Python's builtins, which every module of the process (the probes too) looks names up in",
        attributes=("__builtins__",)),
    "monkeypatch": Rule(
        "replaces an attribute of a library module or class (monkeypatching), which the probes' code uses too"),
    "exit-hooks": Rule(
        "installs exit or signal handlers, which run around the probes or after them",
        names=("atexit", "atexit.*", "signal.signal", "signal.setitimer", "signal.alarm", "signal.pthread_sigmask",
               "signal.siginterrupt", "signal.set_wakeup_fd")),
    "unparsed": Rule(
        "could not be parsed, so it was not scanned"),
    "scan-error": Rule(
        "the scan itself failed on this submission (a grader bug: please report it), so it was not scanned"),
}

# Files of the grader's own (observations, execution and run records, the batch's journal and
# gradebook): a submission has no reason to name them. `summary.json` and `index.html` are left out:
# honest code writes files of those names for itself.
GRADER_FILES = ("observations.json", "arrays.npz", "execution.json", "supervisor.json", "journal.sqlite",
                "gradebook.csv")

# Settings honest notebooks assign on library modules, none of which the probes depend on: cuDNN
# and TF32 switches, pandas display options, argparse's argv in a notebook, stdout redirected to a
# log, warning filters, PIL's size limits, certificate checks turned off to download a data set,
# the data sets' download mirrors, tqdm's monitor, and NumPy's removed aliases (`np.float = float`)
# restored for an old library.
HONEST_SETTINGS = ("torch.backends.*", "pandas.options.*", "sys.argv", "sys.path", "sys.stdout", "sys.stderr",
                   "warnings.*", "PIL.*", "ssl._create_default_https_context", "torchvision.datasets.*.resources",
                   "torchvision.datasets.*.mirrors", "torchvision.datasets.*.url", "torchvision.datasets.*.urls",
                   "tqdm.*", "numpy.float", "numpy.int", "numpy.bool", "numpy.object", "numpy.complex", "numpy.str",
                   "numpy.long", "numpy.unicode")

TENSOR_CLASSES = ("torch.Tensor", "torch._tensor.Tensor", "torch.nn.Parameter", "torch.nn.parameter.Parameter")
AUTOGRAD_FUNCTIONS = ("torch.autograd.Function", "torch.autograd.function.Function")

# The kernel runs a cell after IPython rewrote its magics (`%`, `%%`, `!`, `x = !cmd`, `obj?`),
# which are not Python. Cell magics whose body is another language are not scanned; those whose
# body is Python (timed, captured, written to a module the notebook then imports) are; line magics
# that run a Python statement keep it.
OTHER_LANGUAGE_CELLS = {"bash", "sh", "script", "html", "javascript", "js", "latex", "markdown", "svg", "perl",
                        "ruby", "system", "sx", "file"}
CODE_LINE_MAGIC = re.compile(r"^%(?:time|timeit|prun)\b(?:\s+-[a-zA-Z]+(?:\s+\d+)?)*\s+(?=\S)")
IPYTHON_LINE = re.compile(r"^(?:[%!?]|[\w.\[\], ]+=\s*[%!]|.*\?$)")

BUILTIN_NAMES = frozenset(dir(builtins))
MAX_LINE_SHOWN = 200


def rubric_forbids_autograd_function(rubric: Rubric) -> bool:
    """Whether a custom ``torch.autograd.Function`` is forbidden: where an ``op_equivalence`` check's
    forbidden names list it (``Function``, ``autograd.Function``...). By default none does: writing
    one is the point of a custom-ops assignment."""
    for check in rubric.checks:
        if getattr(check, "kind", None) == "op_equivalence":
            if any(fnmatch.fnmatchcase(candidate, pattern) for pattern in check.names()
                   for candidate in ("Function", "autograd.Function", "torch.autograd.Function")):
                return True
    return False


def own_module_names(rubric: Rubric, labels: Iterable[str]) -> set[str]:
    """Top-level names of modules that are not libraries: the submission's own files and the
    course's provided ones (and the names these answer to). Changing their attributes is no
    monkeypatching of anything the probes use."""
    names = {label.split("/")[0].removesuffix(".py") for label in labels if label.endswith(".py")}
    names |= {path.strip("/").split("/")[0].removesuffix(".py") for path in rubric.submission.provided}
    for alias in rubric.submission.provided_aliases:
        names |= {alias.module.split(".")[0]}
        names |= {name.split(".")[0] for name in alias.imports if not name.startswith("*.")}
    return names


def scan_submission(submitted: list[tuple[str, str]], rubric: Rubric) -> list[SourceFlag]:
    """``scan`` with what the rubric says: the course's provided files are not the student's and
    are not scanned, and whether custom autograd Functions are forbidden."""
    provided = [path.strip("/").removesuffix(".py") for path in rubric.submission.provided]
    students = [(label, text) for label, text in submitted
                if not any(label.removesuffix(".py") == p or label.startswith(p + "/") for p in provided)]
    try:
        return scan(students, own_modules=own_module_names(rubric, [label for label, _ in submitted]),
                    forbid_autograd_function=rubric_forbids_autograd_function(rubric))
    except Exception as exc:  # noqa: BLE001 - a bug here must cost a review, not the submission's grade
        return [SourceFlag(rule="scan-error", where="the whole submission",
                           what=f"{RULES['scan-error'].reason}: {type(exc).__name__}: {exc}")]


def scan(texts: list[tuple[str, str]], *, own_modules: Iterable[str] = (),
         forbid_autograd_function: bool = False) -> list[SourceFlag]:
    """Every finding in ``texts`` (``(label, text)`` pairs: ``cell 3`` or ``model.py``), in order,
    one per rule and line. Notebook cells (labels ``cell N``) share one namespace, as in the kernel;
    each module file has its own. Never raises on what a student wrote."""
    pieces = [(label, text, *_parse(label, text)) for label, text in texts]
    cells = [tree for label, _, tree, _ in pieces if tree is not None and label.startswith("cell ")]
    notebook_scope = _Namespace.of(cells)
    own = set(own_modules) | {label.split("/")[0].removesuffix(".py") for label, _ in texts if label.endswith(".py")}
    flags: list[SourceFlag] = []
    for label, text, tree, stopped in pieces:
        if tree is None:
            flags.append(_flag("unparsed", label, stopped, text))
            continue
        namespace = notebook_scope if label.startswith("cell ") else _Namespace.of([tree])
        scanner = _Scanner(label, text, namespace, own, forbid_autograd_function)
        try:
            scanner.visit(tree)
        except RecursionError:  # nested deeper than Python's own parser allows twice over
            flags.append(_flag("unparsed", label, None, text))
            continue
        flags += scanner.flags
    return flags


def _flag(rule: str, label: str, line: int | None, text: str, detail: str = "") -> SourceFlag:
    lines = text.splitlines()
    shown = lines[line - 1].strip() if line is not None and 0 < line <= len(lines) else ""
    what = RULES[rule].reason + (f": {detail}" if detail else "")
    return SourceFlag(rule=rule, where=label if line is None else f"{label}, line {line}", what=what,
                      line=shown[:MAX_LINE_SHOWN])


# ---------------------------------------------------------------- parsing notebook cells


def _parse(label: str, text: str) -> tuple[ast.Module | None, int | None]:
    """The cell's or module's syntax tree, and when there is none the line Python stopped at.
    A cell is tried as written, then with IPython's own syntax made Python (line numbers kept)."""
    tree, stopped = _try_parse(text)
    if tree is not None or not label.startswith("cell "):
        return tree, stopped
    first = text.lstrip().split("\n", 1)[0].strip()
    if first.startswith("%%"):
        magic, _, argument = first[2:].partition(" ")
        if magic in OTHER_LANGUAGE_CELLS or (magic == "writefile" and not argument.strip().endswith(".py")):
            return ast.Module(body=[], type_ignores=[]), None  # not Python, or not run by this kernel
        text = text.replace(first, "", 1)
    for keep_code in (True, False):  # a timing magic's "code" may be no statement: then scan the rest
        tree, _ = _try_parse(_ipython_lines_as_python(text, keep_code))
        if tree is not None:
            return tree, None
    return None, stopped


def _try_parse(text: str) -> tuple[ast.Module | None, int | None]:
    try:
        tree = pysource.parse(text, flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    except SyntaxError as exc:
        return None, exc.lineno
    except (ValueError, RecursionError, MemoryError):  # a null byte; nesting deeper than the parser allows
        return None, None
    return (tree, None) if isinstance(tree, ast.Module) else (None, None)


def _ipython_lines_as_python(text: str, keep_code: bool) -> str:
    """Each IPython-only line becomes ``pass`` at its indentation (so the block around it still
    parses), or the statement a timing magic runs (``%time x = f()`` -> ``x = f()``)."""
    out = []
    for line in text.split("\n"):
        stripped = line.lstrip()
        indent = line[:len(line) - len(stripped)]
        code = CODE_LINE_MAGIC.match(stripped)
        if keep_code and code:
            out.append(indent + stripped[code.end():])
        elif IPYTHON_LINE.match(stripped) and _try_parse(stripped)[0] is None:
            out.append(indent + "pass")
        else:
            out.append(line)
    return "\n".join(out)


# ---------------------------------------------------------------- names and what they stand for


@dataclass
class _Namespace:
    """What a module's (or the notebook's) global names stand for: the modules and objects imports
    bound them to (``F`` -> ``torch.nn.functional``), and every name the code binds itself."""

    imported: dict[str, set[str]]
    bound: set[str]

    @classmethod
    def of(cls, trees: list[ast.Module]) -> "_Namespace":
        imported: dict[str, set[str]] = {}
        bound: set[str] = set()
        for tree in trees:
            for node in ast.walk(tree):  # imports anywhere (in a function too): a name, whatever its scope
                for name, qualified in _import_bindings(node):
                    imported.setdefault(name, set()).add(qualified)
            bound |= _bound_in(tree.body)
        return cls(imported, bound)


def _import_bindings(node: ast.AST) -> Iterator[tuple[str, str]]:
    """``import a.b`` binds ``a`` to ``a``; ``import a.b as x`` binds ``x`` to ``a.b``; ``from a
    import b as y`` binds ``y`` to ``a.b``. A relative import is the student's own package: ``.b``."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.asname:
                yield alias.asname, alias.name
            else:
                root = alias.name.split(".")[0]
                yield root, root
    elif isinstance(node, ast.ImportFrom):
        module = "." * node.level + (node.module or "")
        for alias in node.names:
            if alias.name != "*":
                separator = "." if module.strip(".") else ""  # `from . import b` is `.b`, not `..b`
                yield alias.asname or alias.name, f"{module}{separator}{alias.name}"


def _bound_in(body: list[ast.stmt]) -> set[str]:
    """Names a block binds in its own scope: assignments, definitions, loop and ``with`` targets
    (the bodies of its functions are theirs, not descended into). Imports are left out: a name an
    import binds stands for what it imported wherever it is bound (``_Namespace.imported``), so
    ``import torch as t`` inside a function does not hide ``t.allclose = ...``."""
    bound: set[str] = set()
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
            stack.extend(node.decorator_list)
            continue
        if isinstance(node, ast.Lambda):
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            bound.add(node.name)
        stack.extend(ast.iter_child_nodes(node))
    return bound


def _arguments(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> set[str]:
    a = node.args
    names = [*a.posonlyargs, *a.args, *a.kwonlyargs, *([a.vararg] if a.vararg else []),
             *([a.kwarg] if a.kwarg else [])]
    return {arg.arg for arg in names}


def _dotted(node: ast.AST) -> tuple[str, list[str]] | None:
    """``torch.ops.aten`` -> (``torch``, [``ops``, ``aten``]); ``getattr(sys, "modules")`` counts as
    ``sys.modules``. None when the chain starts with anything but a name."""
    parts: list[str] = []
    while True:
        if isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        elif _constant_getattr(node):
            parts.append(node.args[1].value)  # type: ignore[attr-defined]
            node = node.args[0]  # type: ignore[attr-defined]
        else:
            break
    if not isinstance(node, ast.Name):
        return None
    return node.id, list(reversed(parts))


def _constant_getattr(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
            and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str))


def _matches(qualified: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(qualified, p) for p in patterns)


# ---------------------------------------------------------------- the scanner


class _Scanner(ast.NodeVisitor):
    """Walks one cell or module (top level, functions, classes, nested code) and collects findings."""

    def __init__(self, label: str, text: str, namespace: _Namespace, own_modules: set[str],
                 forbid_autograd_function: bool):
        self.label, self.text, self.namespace = label, text, namespace
        self.own_modules, self.forbid_autograd_function = own_modules, forbid_autograd_function
        self.local_scopes: list[set[str]] = []  # the enclosing functions' own names, innermost last
        self.flags: list[SourceFlag] = []
        self.seen: set[tuple[str, int]] = set()

    def flag(self, rule: str, node: ast.AST, detail: str = "") -> None:
        line = getattr(node, "lineno", 1)
        if (rule, line) not in self.seen:
            self.seen.add((rule, line))
            self.flags.append(_flag(rule, self.label, line, self.text, detail))

    # -- what a name stands for

    def qualified(self, name: str, attributes: list[str]) -> list[str]:
        """What ``name.attr1.attr2`` may stand for, qualified: through the imports that bound the
        name, or the builtin of that name when nothing binds it. A local variable: nothing."""
        if any(name in scope for scope in self.local_scopes):
            return []
        if name in self.namespace.imported:
            roots = sorted(self.namespace.imported[name])
        elif name == "__builtins__":
            roots = ["builtins"]
        elif name in BUILTIN_NAMES and name not in self.namespace.bound:
            roots = [f"builtins.{name}"]
        else:
            return []
        return [".".join([root, *attributes]) for root in roots]

    def check_names(self, candidates: list[str], node: ast.AST) -> None:
        """Each rule whose names match any prefix of any candidate (``torch._C._foo`` is ``torch._C``)."""
        prefixes = {".".join(c.split(".")[:n]) for c in candidates for n in range(1, c.count(".") + 2)}
        for rule, spec in RULES.items():
            hit = next((p for p in sorted(prefixes, key=len) if _matches(p, spec.names)), None)
            if hit is not None:
                self.flag(rule, node, hit)

    def check_attributes(self, attributes: list[str], node: ast.AST) -> None:
        for rule, spec in RULES.items():
            hit = next((a for a in attributes if a in spec.attributes), None)
            if hit is not None:
                self.flag(rule, node, hit)

    # -- scopes

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        # What runs where the function is defined, in the enclosing scope: decorators, defaults,
        # annotations; then the body, in the function's own scope.
        a = node.args
        annotations = [arg.annotation for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]
                       if arg is not None]
        for expression in [*node.decorator_list, *a.defaults, *a.kw_defaults, *annotations]:
            if expression is not None:
                self.visit(expression)
        if node.name in RULES["dispatcher"].attributes:
            self.flag("dispatcher", node, node.name)
        if node.returns is not None:
            self.visit(node.returns)
        self.local_scopes.append(_arguments(node) | _bound_in(node.body))
        for statement in node.body:
            self.visit(statement)
        self.local_scopes.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        for expression in [*node.args.defaults, *node.args.kw_defaults]:
            if expression is not None:
                self.visit(expression)
        self.local_scopes.append(_arguments(node))
        self.visit(node.body)
        self.local_scopes.pop()

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for base in node.bases:
            chain = _dotted(base)
            kinds = self.qualified(*chain) if chain else []
            if _matches_any(kinds, TENSOR_CLASSES):
                self.flag("tensor-subclass", node, f"class {node.name}({ast.unparse(base)})")
            if self.forbid_autograd_function and _matches_any(kinds, AUTOGRAD_FUNCTIONS):
                self.flag("autograd-function", node, f"class {node.name}({ast.unparse(base)})")
        self.generic_visit(node)

    # -- uses

    def visit_Name(self, node: ast.Name) -> None:
        self.name_used(node.id, node)

    def name_used(self, name: str, node: ast.AST) -> None:
        if name == "__builtins__":
            self.flag("builtins", node, "__builtins__")
        self.check_names(self.qualified(name, []), node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.visit_chain(node)

    def visit_chain(self, node: ast.AST) -> None:
        """A whole chain at once (``torch._C._set_grad_enabled``), so it is judged by its full
        meaning; then whatever it starts from when that is not a name (``f().x``)."""
        chain = _dotted(node)
        attributes = chain[1] if chain else _attribute_names(node)
        self.check_attributes(attributes, node)
        if chain is not None:
            self.name_used(chain[0], node)
            self.check_names(self.qualified(*chain), node)
            for inner in _chain_arguments(node):
                self.visit(inner)
        else:
            self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if _constant_getattr(node):  # getattr(sys, "modules") is sys.modules
            self.visit_chain(node)
            return
        if isinstance(node.func, ast.Name) and node.func.id in ("setattr", "delattr") and node.args \
                and self.qualified(node.func.id, []):  # the builtin, not the student's own setattr
            name = node.args[1] if len(node.args) > 1 else None
            self.check_assigned(node.args[0], node, f"{node.func.id}({ast.unparse(node.args[0])}, ...)",
                                name.value if isinstance(name, ast.Constant) and isinstance(name.value, str) else None)
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        for name, qualified in _import_bindings(node):
            self.check_names([qualified], node)
        if isinstance(node, ast.Import):
            self.check_names([alias.name for alias in node.names], node)  # `import torch.utils.cpp_extension`
        elif node.module and not node.level:
            self.check_names([node.module], node)  # `from ctypes import *` names no member

    visit_ImportFrom = visit_Import

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str):
            named = next((f for f in GRADER_FILES if f in node.value), None)
            if named:
                self.flag("grader-files", node, named)

    # -- assignments

    def visit_Assign(self, node: ast.Assign | ast.AugAssign | ast.AnnAssign | ast.Delete) -> None:
        targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
        for target in targets:
            for element in _unpacked(target):
                if isinstance(element, ast.Attribute):
                    self.check_assigned(element, node, ast.unparse(element))
                elif isinstance(element, ast.Subscript):  # torch.__dict__["x"] = ..., vars(torch)["x"] = ...
                    namespace = _namespace_dict_of(element.value)
                    key = element.slice.value if isinstance(element.slice, ast.Constant) else None
                    if namespace is not None:
                        self.check_assigned(namespace, node, ast.unparse(element),
                                            key if isinstance(key, str) else None)
        self.generic_visit(node)

    visit_AugAssign = visit_AnnAssign = visit_Delete = visit_Assign

    def check_assigned(self, changed: ast.AST, node: ast.AST, shown: str, attribute: str | None = None) -> None:
        """``changed`` (an attribute assigned or deleted, or an object given to ``setattr``, with the
        ``attribute`` named there) is builtins, or a library module or class: a finding."""
        chain = _dotted(changed)
        if chain is None:
            return
        root, attributes = chain[0], [a for a in [*chain[1], *([attribute] if attribute else [])] if a != "__dict__"]
        for qualified in self.qualified(root, attributes):
            if qualified == "builtins" or qualified.startswith("builtins."):
                self.flag("builtins", node, shown)
            elif root in self.namespace.imported and not qualified.startswith(".") \
                    and qualified.split(".")[0] not in self.own_modules and not _matches(qualified, HONEST_SETTINGS):
                self.flag("monkeypatch", node, shown)


def _matches_any(candidates: list[str], patterns: Iterable[str]) -> bool:
    return any(_matches(c, patterns) for c in candidates)


def _attribute_names(node: ast.AST) -> list[str]:
    """The attribute names along a chain that does not start with a name (``f().a.b`` -> a, b)."""
    names = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    return names


def _chain_arguments(node: ast.AST) -> Iterator[ast.AST]:
    """What a chain holds besides names: the extra arguments of any ``getattr`` in it."""
    while True:
        if isinstance(node, ast.Attribute):
            node = node.value
        elif _constant_getattr(node):
            yield from node.args[2:]  # type: ignore[attr-defined]
            yield from (k.value for k in node.keywords)  # type: ignore[attr-defined]
            node = node.args[0]  # type: ignore[attr-defined]
        else:
            return


def _unpacked(target: ast.AST) -> Iterator[ast.AST]:
    if isinstance(target, (ast.Tuple, ast.List)):
        for element in target.elts:
            yield from _unpacked(element)
    elif isinstance(target, ast.Starred):
        yield from _unpacked(target.value)
    else:
        yield target


def _namespace_dict_of(node: ast.AST) -> ast.AST | None:
    """``x`` of ``x.__dict__`` or ``vars(x)``: a namespace changed through its dictionary."""
    if isinstance(node, ast.Attribute) and node.attr == "__dict__":
        return node.value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "vars" and node.args:
        return node.args[0]
    return None
