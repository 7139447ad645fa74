"""Submissions: find each student's entry, name it, hash its content, unpack archives safely.

A batch is a folder with one entry per student: ``alice.ipynb``, ``bob.py``, ``carol/`` (a
folder of modules, or holding one notebook) or ``dave.zip`` (an archive of any of these).
Files given directly on the command line are single submissions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import stat
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

IGNORED = {"__pycache__", ".ipynb_checkpoints", "__MACOSX", ".git", ".DS_Store"}
MANIFEST_NAMES = {"expected.yaml", "README.md", "readme.md"}
SUFFIXES = {".ipynb", ".py", ".zip"}
MAX_ZIP_MEMBERS = 2000
MAX_ZIP_BYTES = 200 * 2**20
MAX_ZIP_RATIO = 200


@dataclass(frozen=True)
class Submission:
    """One student's work, as found on disk.

    Attributes:
        student: id derived from the file or folder name.
        source: what was given (file, folder or archive).
        content_hash: sha256 over the content (names and bytes), stable across copies.
        problem: why it cannot be graded (a ``rejected`` status), or None.
    """

    student: str
    source: Path
    content_hash: str
    problem: str | None = None

    @property
    def name(self) -> str:
        return self.source.name


@dataclass(frozen=True)
class Entry:
    """What the runner executes: a notebook, or module files on a search path; or, for the
    measure stage (``grader.measuring``), a folder of what the host wrote, with no student code."""

    form: Literal["notebook", "module", "measure"]
    root: Path                    # folder placed on sys.path / working directory contents
    notebook: Path | None = None  # the notebook, for the notebook form
    modules: tuple[str, ...] = ()  # module names to import, for the module form
    notes: tuple[str, ...] = ()   # what the layout made the grader decide (a module missing, a notebook left out)


class Rejected(Exception):
    """The submission cannot be graded as given; the message says why, for the student."""


def student_id(path: Path) -> str:
    """``José García_1234_attempt.ipynb`` -> ``José_García_1234_attempt``: the name, made safe as a
    file name. Letters and digits of any script stay (in Unicode's composed form, NFC, so the same
    name typed on two systems is one id); anything else but ``.``, ``-`` and ``_`` becomes ``_``."""
    strip = path.suffix and (path.suffix in SUFFIXES or path.is_file())  # a folder "erin.v2" keeps its dot
    return _safe(path.name[: -len(path.suffix)] if strip else path.name)


def distinct_ids(ids: list[str], file_names: list[str]) -> list[str]:
    """``ids`` made distinct: two submissions never share an id (a row of the gradebook, a report
    file). Where ids collide (``alice.ipynb`` and ``alice.py``, ``a b.py`` and ``a_b.py``, or ids
    that differ only in case, which one file system cannot hold apart) each colliding one becomes
    its whole file name made safe, and where that still collides, a short hash of the name is
    added. It depends only on the names: the same batch gives the same ids every time."""
    def colliding(names: list[str]) -> set[str]:
        counts: dict[str, int] = {}
        for name in names:
            counts[name.casefold()] = counts.get(name.casefold(), 0) + 1
        return {name for name in names if counts[name.casefold()] > 1}

    clash = colliding(ids)
    ids = [_safe(file_name) if i in clash else i for i, file_name in zip(ids, file_names)]
    clash = colliding(ids)
    return [f"{i}-{hashlib.sha256(os.fsencode(file_name)).hexdigest()[:6]}" if i in clash else i
            for i, file_name in zip(ids, file_names)]


def _safe(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", unicodedata.normalize("NFC", name)).strip("._") or "unnamed"


def _distinct_ids(found: list[Submission]) -> list[Submission]:
    ids = distinct_ids([sub.student for sub in found], [sub.source.name for sub in found])
    return [sub if sub.student == new else dataclasses.replace(sub, student=new) for sub, new in zip(found, ids)]


def discover(paths: list[Path], module_names: frozenset[str] = frozenset()) -> list[Submission]:
    """Submissions in the given paths: a folder is a batch (one entry per student), a file is one.

    A folder that holds one of ``module_names`` itself (``trainer.py``, ``task2.py``: the
    assignment's modules) is one student's module folder, not a batch of one-file submissions:
    it is graded as one (``is_one_submission`` tells the caller, to say so)."""
    found: list[Submission] = []
    for path in paths:
        if path.is_dir() and not is_one_submission(path, module_names):
            for child in sorted(path.iterdir()):
                if child.name in IGNORED or child.name in MANIFEST_NAMES or child.name.startswith("."):
                    continue
                found.append(single(child))  # unsupported files become `rejected` rows, not silence
        else:
            found.append(single(path))
    return _distinct_ids(found)


def is_one_submission(folder: Path, module_names: frozenset[str]) -> bool:
    """Whether ``folder`` is a module folder of the assignment rather than a batch."""
    return folder.is_dir() and any((folder / f"{name}.py").is_file() for name in module_names)


def single(path: Path) -> Submission:
    """One submission from a file or folder; unreadable or unsupported ones carry a ``problem``."""
    problem = None
    if path.is_symlink():
        problem = "the submission is a symbolic link; submit the file itself"
    elif not path.exists():
        problem = "the submission does not exist"
    elif path.is_file() and path.suffix not in SUFFIXES:
        problem = f"unsupported file type {path.suffix or '(none)'}; submit a .ipynb, .py, .zip or a folder"
    readable = path.exists() and not path.is_symlink()
    digest = content_hash(path) if readable else hashlib.sha256(str(path).encode()).hexdigest()
    return Submission(student=student_id(path), source=path, content_hash=digest, problem=problem)


def content_hash(path: Path) -> str:
    """sha256 over relative names and bytes, so renaming or moving the batch folder changes
    nothing; each name and file is length-prefixed, so file boundaries cannot be shifted."""
    h = hashlib.sha256()
    if path.is_file():
        h.update(path.read_bytes())
        return h.hexdigest()
    files = sorted(p for p in path.rglob("*")
                   if (p.is_file() or p.is_symlink()) and not set(p.relative_to(path).parts) & IGNORED)
    for file in files:
        name = str(file.relative_to(path)).encode()
        data = b"<symlink>" + str(file.readlink()).encode() if file.is_symlink() else file.read_bytes()
        h.update(len(name).to_bytes(8, "big") + name + len(data).to_bytes(8, "big") + data)
    return h.hexdigest()


def module_name(stem: str) -> str:
    """An importable module name for a file such as ``Alice Smith_1234_hw6.py``."""
    name = re.sub(r"\W", "_", stem)
    return name if name.isidentifier() and not name[0].isdigit() else f"submission_{name}"


def stage(submission: Submission, workdir: Path, module_order: list[str],
          forms: tuple[str, ...] = ("notebook", "module")) -> Entry:
    """Copy the submission into ``workdir`` (unpacking archives) and find its entry point."""
    src = submission.source
    workdir.mkdir(parents=True, exist_ok=True)
    if src.is_file() and src.suffix == ".zip":
        extract_zip(src, workdir)
    elif src.suffix == ".py":  # a single module: give it an importable name
        shutil.copy2(src, workdir / f"{module_name(src.stem)}.py")
    elif src.is_file():
        shutil.copy2(src, workdir / src.name)
    else:
        shutil.copytree(src, workdir, dirs_exist_ok=True, symlinks=True,
                        ignore=shutil.ignore_patterns(*IGNORED))
        for link in [p for p in workdir.rglob("*") if p.is_symlink()]:
            raise Rejected(f"the folder contains a symbolic link ({link.relative_to(workdir)}); submit real files")
    return find_entry(_unwrap(workdir), module_order, forms)


def _unwrap(folder: Path) -> Path:
    """An archive or folder holding a single folder (``alice/hw6/...``) is graded from inside."""
    items = [p for p in folder.iterdir() if p.name not in IGNORED]
    if len(items) == 1 and items[0].is_dir():
        return _unwrap(items[0])
    return folder


# Imported by the grader inside the student's process: a file of that name next to the student's
# code would replace the real package (for the checks as well as for the student).
PROTECTED_MODULES = frozenset({"grader", "torch", "torchvision", "numpy", "IPython", "ipykernel", "jupyter_client",
                               "zmq", "traitlets", "tornado", "nbformat", "nbclient", "pydantic", "matplotlib",
                               "matplotlib_inline"})


def find_entry(folder: Path, module_order: list[str], forms: tuple[str, ...] = ("notebook", "module")) -> Entry:
    """The entry point of a staged submission, as a teaching assistant would read the folder.

    * A notebook (with helper modules beside it) is the notebook form, unless the assignment is
      graded from modules and the folder has them: the notebook a course's zip script adds to
      every hand-in is then left out, and the result says so.
    * A module folder imports the rubric's ``module_order`` that is there, in that order; a listed
      module that is missing costs only the checks that need it. A module named like a missing
      one (``task3_1.py``, ``Task3.py`` for ``task3.py``) is imported in its place, and the
      result says so. A listed module done in a notebook of its name instead (``task3.ipynb``) is
      exported beside the others (into ``folder``, which is the staged copy) and imported in its
      place. Without a module order every module is imported, in name order.
    """
    shadowing = sorted(p.name for p in folder.iterdir()
                       if (p.suffix == ".py" and p.stem in PROTECTED_MODULES)
                       or (p.is_dir() and p.name in PROTECTED_MODULES and (p / "__init__.py").exists()))
    if shadowing:
        raise Rejected(f"the submission ships {', '.join(shadowing)}, which would hide the real "
                       f"{', '.join(sorted({Path(n).stem for n in shadowing}))} that the grader and your code need; "
                       "rename it and submit again")
    notebooks = sorted(p for p in folder.glob("*.ipynb"))
    modules = sorted(p.stem for p in folder.glob("*.py") if p.stem.isidentifier())
    graded_from_modules = "module" in forms and modules and (
        "notebook" not in forms or (module_order and set(module_order) & set(modules)))
    if notebooks and not graded_from_modules:
        if len(notebooks) > 1:
            raise Rejected(f"several notebooks ({', '.join(p.name for p in notebooks)}); submit exactly one")
        return Entry(form="notebook", root=folder, notebook=notebooks[0])
    if not modules:
        odd = sorted(p.name for p in folder.glob("*.py"))
        if odd:
            raise Rejected(f"no importable module: {', '.join(odd)} cannot be imported by that name; "
                           "use letters, digits and underscores")
        raise Rejected("no notebook (.ipynb) and no Python module (.py) found")
    notes = []
    if module_order:
        modules, said, notebooks = _in_module_order(modules, module_order, folder, notebooks)
        notes += said
    if notebooks:
        notes.insert(0, f"{', '.join(p.name for p in notebooks)} left out: this assignment is graded from its modules")
    return Entry(form="module", root=folder, modules=tuple(modules), notes=tuple(notes))


def _in_module_order(present: list[str], module_order: list[str], folder: Path,
                     notebooks: list[Path]) -> tuple[list[str], list[str], list[Path]]:
    """The modules to import for ``module_order``, what was decided, in words, and the notebooks
    still left out. A listed module that is missing, with a notebook of its name beside the others
    (``task3.ipynb``, ``Task3_models.ipynb`` for ``task3.py``), is that notebook's code cells,
    exported as a module (``export_notebook``)."""
    chosen, notes, unused = [], [], list(notebooks)
    for wanted in module_order:
        if wanted in present:
            chosen.append(wanted)
            continue
        stand_ins = [m for m in present if m not in module_order and m not in chosen and _renamed(m, wanted)]
        done_in = [nb for nb in unused if (nb.stem == wanted or _renamed(nb.stem, wanted))
                   and not (folder / f"{wanted}.py").exists()]
        if stand_ins:
            chosen += stand_ins
            notes.append(f"no {wanted}.py: graded {', '.join(m + '.py' for m in stand_ins)} in its place")
        elif len(done_in) == 1 and export_notebook(done_in[0], folder / f"{wanted}.py"):
            chosen.append(wanted)
            unused.remove(done_in[0])
            notes.append(f"no {wanted}.py: graded the code cells of {done_in[0].name} in its place, as one module "
                         f"(lines are counted in that module; each cell starts at its `# cell N` line)")
        else:
            notes.append(f"no {wanted}.py (found {', '.join(m + '.py' for m in present)}): only the checks that "
                         "need it lose points")
    if not chosen:  # nothing the rubric names: every module, as without an order
        return present, notes, unused
    return chosen, notes, unused


# A notebook line that only a notebook runs: a magic (``%matplotlib inline``) or a shell escape.
_NOTEBOOK_ONLY_LINE = re.compile(r"^\s*[%!]")


def export_notebook(notebook: Path, target: Path) -> bool:
    """Write ``notebook``'s code cells to ``target`` as one module, the way ``jupyter nbconvert
    --to script`` lays them out (a ``# cell N`` line before each, N counted with markdown cells as
    in every message), with magics and shell escapes commented out (``pass`` keeps a block valid).
    False when the notebook cannot be read."""
    try:
        cells = json.loads(notebook.read_text(encoding="utf-8", errors="replace")).get("cells", [])
    except (OSError, ValueError, AttributeError):
        return False
    parts = []
    for number, cell in enumerate(cells if isinstance(cells, list) else [], start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        lines = ("".join(source) if isinstance(source, list) else str(source)).splitlines()
        if lines and lines[0].lstrip().startswith("%%"):
            lines = [f"# [grader: not run] {line}" for line in lines]
        lines = [f"{line[: len(line) - len(line.lstrip())]}pass  # [grader: not run] {line.strip()}"
                 if _NOTEBOOK_ONLY_LINE.match(line) else line for line in lines]
        parts.append("\n".join([f"# cell {number}", *lines, "", ""]))
    target.write_text("\n".join(parts), encoding="utf-8")
    return True


def _renamed(module: str, wanted: str) -> bool:
    """``task3_1``, ``Task3``, ``task_3b`` for ``task3``: the same name, decorated."""
    def plain(name: str) -> str:
        return re.sub(r"[^a-z0-9]", "", name.lower())

    return plain(module).startswith(plain(wanted)) and plain(module) != plain(wanted) or \
        (plain(module) == plain(wanted) and module != wanted)


# The host reads at most this much of a submission's code for its own scans.
MAX_CODE_FILES = 200
MAX_CODE_CHARS = 2_000_000


def code_texts(entry: Entry) -> list[tuple[str, str]]:
    """The code as submitted, read on the host before anything runs: ``(label, text)`` pairs,
    one per notebook code cell (``cell 3``) or module file (``task2.py``). Checks that scan
    source (``op_equivalence``) trust this copy, not what the student's process reports.
    Unreadable files and cells are left out: a scan then finds the class missing and says so."""
    if entry.form == "notebook" and entry.notebook is not None:
        try:
            cells = json.loads(entry.notebook.read_text(encoding="utf-8", errors="replace")).get("cells", [])
        except (OSError, ValueError, AttributeError):
            return []
        texts = []
        for number, cell in enumerate(cells if isinstance(cells, list) else [], start=1):
            if isinstance(cell, dict) and cell.get("cell_type") == "code":
                source = cell.get("source", "")
                texts.append((f"cell {number}", "".join(source) if isinstance(source, list) else str(source)))
        return _capped(texts)
    files = sorted(p for p in entry.root.rglob("*.py") if p.is_file() and not p.is_symlink())[:MAX_CODE_FILES]
    texts = []
    for path in files:
        try:
            texts.append((str(path.relative_to(entry.root)), path.read_text(encoding="utf-8", errors="replace")))
        except OSError:
            continue
    return _capped(texts)


def _capped(texts: list[tuple[str, str]]) -> list[tuple[str, str]]:
    kept, total = [], 0
    for label, text in texts:
        if total + len(text) > MAX_CODE_CHARS:
            break
        kept.append((label, text))
        total += len(text)
    return kept


def extract_zip(archive: Path, dest: Path) -> None:
    """Unpack safely: no absolute or ``..`` paths, no links, bounded size and ratio."""
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_ZIP_MEMBERS:
                raise Rejected(f"the archive has {len(infos)} entries, more than {MAX_ZIP_MEMBERS}")
            total = sum(i.file_size for i in infos)
            packed = max(1, sum(i.compress_size for i in infos))
            if total > MAX_ZIP_BYTES or total / packed > MAX_ZIP_RATIO:
                raise Rejected(f"the archive unpacks to {total:,} bytes ({total // packed}x its size): too large")
            for info in infos:
                name = info.filename
                parts = Path(name).parts
                if name.startswith(("/", "\\")) or ".." in parts or ":" in name:
                    raise Rejected(f"the archive entry {name!r} points outside the archive")
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise Rejected(f"the archive entry {name!r} is a symbolic link")
                if set(parts) & IGNORED:
                    continue
                target = dest / name
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                if target.exists():
                    raise Rejected(f"the archive holds {name!r} twice, or as both a file and a folder")
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as fin, open(target, "wb") as fout:
                    shutil.copyfileobj(fin, fout, 1 << 20)
    except zipfile.BadZipFile:
        raise Rejected("the file is not a readable zip archive") from None
    except (OSError, RuntimeError, ValueError) as exc:  # conflicting entries, encrypted members, bad data
        raise Rejected(f"the archive cannot be unpacked: {exc}") from None
