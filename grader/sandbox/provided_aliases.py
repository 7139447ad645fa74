"""The course's provided files answer to the names and paths students reach them by.

A handout says "use the provided ``utils.mnist_reader``", and real students import it from where
it lives on their machine: their clone of the course's repository (``from
fashion_mnist_master.utils.mnist_reader import load_mnist``), or a copy of the file next to the
notebook (``import mnist_reader``); and they pass it the clone's data folder
(``load_mnist('fashion_mnist_master/data/fashion')``, ``'/home/me/fashion-mnist/data/fashion'``).
In the sandbox there is no clone, only the harness's provided copy and the data it serves at the
rubric's ``data.dirname``. A rubric declares what its provided module also answers to
(``submission.provided_aliases``):

* ``imports``: module names (``mnist_reader``; ``*.utils.mnist_reader`` for that name under any
  package). Each such name the submission imports is the provided module itself, and the
  packages above it (``fashion_mnist_master``, ``fashion_mnist_master.utils``) are empty
  packages unless they exist. As with every provided file, a copy the student handed in under
  that name is replaced by the course's.
* ``data_paths``: path suffixes (``data/fashion``). A path given to one of the provided module's
  functions that does not exist and ends in one of them (whole folder names) is replaced by the
  served data folder, as ``data_paths`` does for torchvision's roots.

This changes which file is imported and where it reads from, never what the student's code does
with the result. The host decides from the submitted code which names to serve (``plan``) and
says so in the result's notes (``notes_for``): a scan of what was handed in, never the student's
process's word. The sandbox side (``install``) only serves what the plan names.
"""

from __future__ import annotations

import functools
import importlib
import importlib.abc
import importlib.machinery
import inspect
import json
import os
import re
import sys
from typing import Any, Sequence

ENV = "GRADER_PROVIDED_ALIASES"  # JSON: {"modules": {alias: module}, "packages": [...], "paths": [...]}

_IMPORT = re.compile(r"^\s*import\s+(.+)$")
_FROM = re.compile(r"^\s*from\s+([A-Za-z_][\w.]*)\s+import\s+\(?([^#)]+)")
_NAME = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_STRING = re.compile(r"""(?P<q>['"])(?P<s>[^'"\n]{1,300})(?P=q)""")

served: list[str] = []  # each path that was replaced, as the student's code gave it


# ---------------------------------------------------------------- host side: what to serve


def imported_names(texts: Sequence[str]) -> list[str]:
    """Every absolute module name the code imports, or may import with ``from X import y``
    (``X`` and ``X.y``), in order of appearance."""
    names: dict[str, None] = {}
    for text in texts:
        for line in text.splitlines():
            if (found := _FROM.match(line)) is not None:
                package = found.group(1)
                names[package] = None
                for part in found.group(2).split(","):
                    leaf = part.strip().split(" as ")[0].strip()
                    if leaf.isidentifier():
                        names[f"{package}.{leaf}"] = None
            elif (found := _IMPORT.match(line)) is not None:
                for part in found.group(1).split("#")[0].split(","):
                    name = part.strip().split(" as ")[0].strip()
                    if _NAME.match(name):
                        names[name] = None
    return list(names)


def answers_to(pattern: str, name: str) -> bool:
    """Whether module ``name`` is what ``pattern`` names: the name itself, or with ``*.`` in
    front, the name under any package."""
    if pattern.startswith("*."):
        return name.endswith("." + pattern[2:])
    return name == pattern


def plan(aliases: Sequence[Any], dirname: str, texts: Sequence[str]) -> dict[str, Any]:
    """What the sandbox serves for this submission: the alias modules its code imports, the
    packages above them, and the provided modules whose path arguments are served. ``aliases``
    are the rubric's ``ProvidedAlias`` entries (or dicts of the same fields)."""
    modules: dict[str, str] = {}
    packages: dict[str, None] = {}
    paths = []
    imported = imported_names(texts)
    for alias in aliases:
        entry = alias if isinstance(alias, dict) else alias.model_dump()
        for name in imported:
            if name != entry["module"] and any(answers_to(p, name) for p in entry["imports"]):
                modules[name] = entry["module"]
                parts = name.split(".")
                packages.update((".".join(parts[:i]), None) for i in range(1, len(parts)))
        if entry["data_paths"]:
            paths.append({"module": entry["module"], "suffixes": list(entry["data_paths"]), "served": dirname})
    packages = {p: None for p in packages if p not in modules}
    return {"modules": modules, "packages": list(packages), "paths": paths}


def env_for(aliases: Sequence[Any], dirname: str, texts: Sequence[str]) -> dict[str, str]:
    """The sandbox environment that switches serving on (nothing when the rubric declares none)."""
    if not aliases:
        return {}
    return {ENV: json.dumps(plan(aliases, dirname, texts))}


def notes_for(aliases: Sequence[Any], dirname: str, submitted: Sequence[tuple[str, str]]) -> list[str]:
    """What the result says the harness served, from the submitted code: each alias imported
    (and where), and each literal path that the provided reader would be given instead."""
    notes = []
    texts = [text for _, text in submitted]
    made = plan(aliases, dirname, texts)
    for name, module in made["modules"].items():
        where = [label for label, text in submitted if name in imported_names([text])]
        notes.append(f"`{name}` ({', '.join(where[:3])}) is the course's {module} as the grader provides it: the "
                     f"grader imports its own copy under that name (a copy of the course's repository is not part "
                     f"of the grading environment)")
    used = set(made["modules"].values()) | set(imported_names(texts))
    for entry in made["paths"]:
        if entry["module"] not in used:
            continue
        literals = sorted({m.group("s") for t in texts for m in _STRING.finditer(t)
                           if _ends_in(m.group("s"), entry["suffixes"]) and _normal(m.group("s")) != _normal(dirname)})
        if literals:
            shown = ", ".join(repr(s) for s in literals[:3])
            notes.append(f"a folder given to the course's {entry['module']} that is not there and ends in "
                         f"{' or '.join(entry['suffixes'])} ({shown}) is read from the data the grader serves at "
                         f"{dirname}")
    return notes


def _normal(path: str) -> list[str]:
    return [p for p in re.split(r"[\\/]+", os.path.normpath(os.path.expanduser(path))) if p not in ("", ".")]


def _ends_in(path: str, suffixes: Sequence[str]) -> bool:
    parts = _normal(path)
    return any(len(parts) >= len(s) and parts[len(parts) - len(s):] == s for s in map(_normal, suffixes) if s)


# ---------------------------------------------------------------- sandbox side: serving


class _AliasFinder(importlib.abc.MetaPathFinder):
    """Serves the plan's alias names (first in ``sys.meta_path``) with the provided module."""

    def __init__(self, modules: dict[str, str]) -> None:
        self.modules = modules

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in self.modules:
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(self.modules[fullname]))


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, module: str) -> None:
        self.module = module

    def create_module(self, spec: Any) -> Any:
        return importlib.import_module(self.module)

    def exec_module(self, module: Any) -> None:
        pass


class _PackageFinder(importlib.abc.MetaPathFinder):
    """The packages above an alias (last in ``sys.meta_path``: a real package of that name wins)."""

    def __init__(self, packages: list[str]) -> None:
        self.packages = set(packages)

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in self.packages:
            return None
        return importlib.machinery.ModuleSpec(fullname, _EmptyPackage(), is_package=True)


class _EmptyPackage(importlib.abc.Loader):
    def create_module(self, spec: Any) -> Any:
        return None

    def exec_module(self, module: Any) -> None:
        module.__doc__ = "An empty package made by the grader: it holds the course's provided module."
        module.__path__ = []


def _served_path(value: Any, suffixes: list[str], folder: str) -> Any:
    if not isinstance(value, (str, os.PathLike)):
        return value
    text = os.fspath(value)
    if not isinstance(text, str) or os.path.exists(os.path.expanduser(text)) or not _ends_in(text, suffixes):
        return value
    served.append(text)
    return folder


def _serving(function: Any, suffixes: list[str], folder: str) -> Any:
    @functools.wraps(function)
    def serving(*args: Any, **kwargs: Any) -> Any:
        args = tuple(_served_path(a, suffixes, folder) for a in args)
        kwargs = {k: _served_path(v, suffixes, folder) for k, v in kwargs.items()}
        return function(*args, **kwargs)

    serving._grader_serves = True  # type: ignore[attr-defined]
    return serving


def _serve_paths(entry: dict[str, Any]) -> None:
    folder = os.path.abspath(entry["served"])
    if not os.path.isdir(folder):
        return
    try:
        module = importlib.import_module(entry["module"])
    except Exception:  # noqa: BLE001 - the provided module cannot be imported: the student's import says why
        return
    for name, value in list(vars(module).items()):
        if (inspect.isfunction(value) and not name.startswith("_") and value.__module__ == module.__name__
                and not getattr(value, "_grader_serves", False)):
            setattr(module, name, _serving(value, list(entry["suffixes"]), folder))


def install() -> bool:
    """Serve what ``ENV`` plans; True when something is served. Run from the submission's folder
    (the working directory), before the student's code."""
    try:
        made = json.loads(os.environ.get(ENV, ""))
    except ValueError:
        return False
    if not isinstance(made, dict):
        return False
    modules = {str(k): str(v) for k, v in (made.get("modules") or {}).items()}
    packages = [str(p) for p in made.get("packages") or []]
    if modules and not any(isinstance(f, _AliasFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _AliasFinder(modules))
        sys.meta_path.append(_PackageFinder(packages))
    for entry in made.get("paths") or []:
        _serve_paths(entry)
    return bool(modules or made.get("paths"))

