"""grader.submission: discovering a batch, naming and hashing submissions, staging them safely."""

from __future__ import annotations

import io
import json
import shutil
import stat
import zipfile
from pathlib import Path

import pytest

from grader import submission
from grader.submission import Rejected, content_hash, discover, find_entry, single, stage, student_id

NOTEBOOK = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def make_zip(path: Path, members: dict[str, bytes | str], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


@pytest.fixture
def batch(tmp_path: Path) -> Path:
    """A batch folder with one submission of every form, plus files a batch must ignore."""
    root = tmp_path / "batch"
    root.mkdir()
    (root / "Alice Smith_1234_attempt_2023-10-01-12-00-00_hw6.ipynb").write_text(NOTEBOOK)
    (root / "bob.py").write_text("def fc(D, K, O):\n    return None\n")
    carol = root / "carol"
    carol.mkdir()
    (carol / "task1.py").write_text("A = 1\n")
    (carol / "task2.py").write_text("B = 2\n")
    (carol / "__pycache__").mkdir()
    (carol / "__pycache__" / "task1.cpython-311.pyc").write_bytes(b"\0junk")
    make_zip(root / "Dave O'Neil.zip", {"hw6/solution.ipynb": NOTEBOOK})
    (root / "expected.yaml").write_text("alice: 10\n")
    (root / "README.md").write_text("batch notes\n")
    (root / "notes.txt").write_text("not a submission\n")
    (root / ".ipynb_checkpoints").mkdir()
    (root / ".ipynb_checkpoints" / "x-checkpoint.ipynb").write_text(NOTEBOOK)
    (root / "__pycache__").mkdir()
    (root / ".DS_Store").write_bytes(b"\0")
    return root


# ---------------------------------------------------------------- discover, student ids


def test_discover_finds_one_submission_per_form_and_ignores_the_rest(batch):
    found = [s for s in discover([batch]) if s.problem is None]
    assert [s.source.name for s in found] == [
        "Alice Smith_1234_attempt_2023-10-01-12-00-00_hw6.ipynb", "Dave O'Neil.zip", "bob.py", "carol"]
    assert [s.student for s in found] == [
        "Alice_Smith_1234_attempt_2023-10-01-12-00-00_hw6", "Dave_O_Neil", "bob", "carol"]


def test_discover_keeps_unsupported_files_as_rejected_rows(batch):
    """A student who uploaded the wrong file type must appear in the gradebook, not vanish."""
    odd = [s for s in discover([batch]) if s.problem is not None]
    assert [(s.student, s.problem) for s in odd] == [
        ("notes", "unsupported file type .txt; submit a .ipynb, .py, .zip or a folder")]


def test_discover_a_file_given_directly(batch):
    (sub,) = discover([batch / "bob.py"])
    assert sub.student == "bob" and sub.problem is None


@pytest.mark.parametrize("name, expected", [
    ("Alice Smith_1234_attempt_2023-10-01-12-00-00_hw6.ipynb", "Alice_Smith_1234_attempt_2023-10-01-12-00-00_hw6"),
    ("bob.py", "bob"),
    ("Dave O'Neil.zip", "Dave_O_Neil"),
    ("carol smith", "carol_smith"),
    ("erin.v2", "erin.v2"),          # a folder: its suffix is part of the name
    ("  frank  .py", "frank"),
    ("###.ipynb", "unnamed"),
    ("..hidden..py", "hidden"),
])
def test_student_id_is_the_name_made_safe(name, expected):
    assert student_id(Path(name)) == expected


@pytest.mark.parametrize("name, expected", [
    ("José García_1234_attempt.ipynb", "José_García_1234_attempt"),
    ("Jose\u0301 Garci\u0301a.ipynb", "José_García"),  # typed decomposed (macOS): the same id as composed
    ("李雷.py", "李雷"),
    ("Zoë O'Brien-Łukasz.zip", "Zoë_O_Brien-Łukasz"),
])
def test_student_ids_keep_every_script(name, expected):
    assert student_id(Path(name)) == expected


def test_two_students_never_share_an_id(tmp_path):
    """Names that would make one id (accents aside, case aside, punctuation aside, or the same name
    in two forms) each keep a row of their own, and the same batch gives the same ids again."""
    batch = tmp_path / "batch"
    batch.mkdir()
    for name in ("alice.ipynb", "alice.py", "a b.py", "a_b.py", "Bob.py", "bob.ipynb", "carol.py", "José García.py",
                 "José Garcia.py"):
        (batch / name).write_text("x = 1\n")
    ids = [sub.student for sub in discover([batch])]
    assert len(set(ids)) == len(ids) == 9 and len({i.casefold() for i in ids}) == 9
    assert {"carol", "José_García", "José_Garcia", "alice.ipynb", "alice.py", "Bob.py", "bob.ipynb"} <= set(ids)
    hashed = [i for i in ids if i.startswith("a_b.py-")]  # the whole names collide too: a hash of each name added
    assert len(hashed) == 2 and len(set(hashed)) == 2
    assert ids == [sub.student for sub in discover([batch])]


def test_symlinked_submission_has_a_problem(tmp_path):
    real = tmp_path / "real.py"
    real.write_text("x = 1\n")
    batch = tmp_path / "batch"
    batch.mkdir()
    (batch / "mallory.py").symlink_to(real)
    (sub,) = discover([batch])
    assert sub.problem == "the submission is a symbolic link; submit the file itself"


def test_unsupported_file_given_directly_has_a_problem(tmp_path):
    doc = tmp_path / "essay.docx"
    doc.write_bytes(b"PK")
    sub = single(doc)
    assert sub.problem == "unsupported file type .docx; submit a .ipynb, .py, .zip or a folder"


def test_missing_submission_has_a_problem(tmp_path):
    assert single(tmp_path / "ghost.ipynb").problem == "the submission does not exist"


# ---------------------------------------------------------------- content hash


def test_content_hash_is_stable_across_copies_and_renames_of_the_batch(batch, tmp_path):
    before = {s.student: s.content_hash for s in discover([batch])}
    copy = shutil.copytree(batch, tmp_path / "copied" / "renamed batch")
    after = {s.student: s.content_hash for s in discover([copy])}
    assert before == after
    moved = batch.rename(tmp_path / "moved")
    assert {s.student: s.content_hash for s in discover([moved])} == before


def test_content_hash_is_sensitive_to_content(batch):
    before = content_hash(batch / "bob.py")
    (batch / "bob.py").write_text("def fc(D, K, O):\n    return 1\n")
    assert content_hash(batch / "bob.py") != before


def test_folder_hash_is_sensitive_to_content_and_names(batch):
    carol = batch / "carol"
    before = content_hash(carol)
    (carol / "task2.py").write_text("B = 3\n")
    edited = content_hash(carol)
    assert edited != before
    (carol / "task2.py").rename(carol / "task3.py")
    assert content_hash(carol) != edited


def test_folder_hash_ignores_caches_and_checkpoints(batch):
    carol = batch / "carol"
    before = content_hash(carol)
    (carol / ".ipynb_checkpoints").mkdir()
    (carol / ".ipynb_checkpoints" / "task1-checkpoint.py").write_text("A = 0\n")
    (carol / "__pycache__" / "task2.cpython-311.pyc").write_bytes(b"more junk")
    assert content_hash(carol) == before


def test_folder_hash_does_not_depend_on_the_folders_above_it(batch, tmp_path):
    before = content_hash(batch / "carol")
    # IGNORED names filter the submission's own files, not the folders the batch happens to sit in
    moved = shutil.copytree(batch, tmp_path / "backup" / ".git" / "batch")
    assert content_hash(moved / "carol") == before


def test_folder_hash_keeps_file_boundaries_apart(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    (one / "a").write_bytes(b"X" + b"b\0" + b"Y")   # one file whose bytes look like a boundary
    (two / "a").write_bytes(b"X")
    (two / "b").write_bytes(b"Y")
    assert content_hash(one) != content_hash(two)


# ---------------------------------------------------------------- stage: each form


def test_stage_notebook(batch, tmp_path):
    sub = single(batch / "Alice Smith_1234_attempt_2023-10-01-12-00-00_hw6.ipynb")
    entry = stage(sub, tmp_path / "work", [])
    assert entry.form == "notebook"
    assert entry.root == tmp_path / "work"
    assert entry.notebook == tmp_path / "work" / sub.source.name
    assert entry.notebook.read_text() == NOTEBOOK


def test_stage_single_module(batch, tmp_path):
    entry = stage(single(batch / "bob.py"), tmp_path / "work", [])
    assert (entry.form, entry.modules) == ("module", ("bob",))
    assert (entry.root / "bob.py").is_file()


def test_stage_single_module_with_lms_style_name(tmp_path):
    src = tmp_path / "Alice Smith_1234_attempt_2023-10-01-12-00-00_hw6.py"
    src.write_text("def fc(D, K, O):\n    return None\n")
    entry = stage(single(src), tmp_path / "work", [])
    assert entry.form == "module"
    assert len(entry.modules) == 1
    assert (entry.root / f"{entry.modules[0]}.py").is_file()


def test_stage_folder_of_modules(batch, tmp_path):
    (batch / "carol" / "not-a-module.py").write_text("")
    entry = stage(single(batch / "carol"), tmp_path / "work", [])
    assert (entry.form, entry.modules) == ("module", ("task1", "task2"))
    assert not (entry.root / "__pycache__").exists()


def test_stage_folder_of_modules_in_rubric_order(batch, tmp_path):
    entry = stage(single(batch / "carol"), tmp_path / "work", ["task2", "task1"])
    assert entry.modules == ("task2", "task1")


def test_a_module_the_rubric_names_that_is_missing_costs_only_its_checks(batch, tmp_path):
    entry = stage(single(batch / "carol"), tmp_path / "work", ["task1", "task3"])
    assert (entry.form, entry.modules) == ("module", ("task1",))
    assert entry.notes == ("no task3.py (found task1.py, task2.py): only the checks that need it lose points",)


def test_a_module_named_like_a_missing_one_is_graded_in_its_place(tmp_path):
    folder = tmp_path / "frank"
    folder.mkdir()
    for name in ("trainer", "task2", "task3_1", "Task3b", "task4b", "create_submission_zip"):
        (folder / f"{name}.py").write_text("")
    entry = find_entry(folder, ["trainer", "task2", "task3", "task4a"], ("module",))
    assert entry.modules == ("trainer", "task2", "Task3b", "task3_1")
    assert entry.notes == ("no task3.py: graded Task3b.py, task3_1.py in its place",
                           "no task4a.py (found Task3b.py, create_submission_zip.py, task2.py, task3_1.py, task4b.py, "
                           "trainer.py): only the checks that need it lose points")


def test_the_notebook_a_zip_script_adds_is_left_out_of_a_module_assignment(tmp_path):
    folder = tmp_path / "grace"
    folder.mkdir()
    (folder / "task2.py").write_text("")
    (folder / "plotting.ipynb").write_text(NOTEBOOK)
    (folder / "report.ipynb").write_text(NOTEBOOK)
    for forms in (("module",), ("notebook", "module")):
        entry = find_entry(folder, ["task2"], forms)
        assert (entry.form, entry.modules) == ("module", ("task2",))
        assert entry.notes == ("plotting.ipynb, report.ipynb left out: this assignment is graded from its modules",)


def test_a_task_done_in_a_notebook_of_its_name_is_graded_as_that_module(tmp_path):
    folder = tmp_path / "heidi"
    folder.mkdir()
    (folder / "task2.py").write_text("")
    cells = [{"cell_type": "markdown", "source": "# Task 3"},
             {"cell_type": "code", "source": ["%matplotlib inline\n", "import torch\n"]},
             {"cell_type": "code", "source": "class Model1:\n    pass\n!pip install tqdm\n"},
             {"cell_type": "code", "source": "%%bash\nls\n"}]
    (folder / "Task3.ipynb").write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    (folder / "plots.ipynb").write_text(NOTEBOOK)
    entry = find_entry(folder, ["task2", "task3"], ("module",))
    assert entry.modules == ("task2", "task3")
    assert entry.notes == ("plots.ipynb left out: this assignment is graded from its modules",
                           "no task3.py: graded the code cells of Task3.ipynb in its place, as one module (lines are "
                           "counted in that module; each cell starts at its `# cell N` line)")
    exported = (folder / "task3.py").read_text()
    assert exported.splitlines()[:7] == ["# cell 2", "pass  # [grader: not run] %matplotlib inline", "import torch", "",
                                         "", "# cell 3", "class Model1:"]
    assert "pass  # [grader: not run] !pip install tqdm" in exported
    assert "# [grader: not run] %%bash" in exported
    compile(exported, "task3.py", "exec")


def test_a_folder_that_is_one_module_submission_is_not_read_as_a_batch(tmp_path):
    folder = tmp_path / "cifar10-cnn"
    folder.mkdir()
    (folder / "trainer.py").write_text("")
    (folder / "task2.py").write_text("")
    (found,) = discover([folder], frozenset({"trainer", "task2"}))
    assert found.source == folder and found.student == "cifar10-cnn"
    assert len(discover([folder])) == 2  # without the assignment's module names: a batch of two files


def test_stage_folder_holding_a_notebook_and_helpers(tmp_path):
    folder = tmp_path / "erin"
    folder.mkdir()
    (folder / "hw6.ipynb").write_text(NOTEBOOK)
    (folder / "helpers.py").write_text("")
    (folder / ".ipynb_checkpoints").mkdir()
    (folder / ".ipynb_checkpoints" / "hw6-checkpoint.ipynb").write_text(NOTEBOOK)
    entry = stage(single(folder), tmp_path / "work", [])
    assert entry.form == "notebook" and entry.notebook == tmp_path / "work" / "hw6.ipynb"


def test_stage_zip_with_one_top_folder_is_unwrapped(batch, tmp_path):
    entry = stage(single(batch / "Dave O'Neil.zip"), tmp_path / "work", [])
    assert entry.form == "notebook"
    assert entry.root == tmp_path / "work" / "hw6"
    assert entry.notebook == tmp_path / "work" / "hw6" / "solution.ipynb"


def test_stage_zip_ignores_macos_metadata_when_unwrapping(tmp_path):
    archive = make_zip(tmp_path / "frank.zip", {"__MACOSX/hw6/._task1.py": b"\0\0", "hw6/task1.py": "A = 1\n",
                                                "hw6/__pycache__/task1.pyc": b"\0"})
    entry = stage(single(archive), tmp_path / "work", [])
    assert entry.root == tmp_path / "work" / "hw6"
    assert entry.modules == ("task1",)
    assert not (tmp_path / "work" / "__MACOSX").exists()


def test_stage_zip_of_modules_at_top_level(tmp_path):
    archive = make_zip(tmp_path / "gina.zip", {"task1.py": "A = 1\n", "task2.py": "B = 2\n"})
    entry = stage(single(archive), tmp_path / "work", [])
    assert (entry.root, entry.modules) == (tmp_path / "work", ("task1", "task2"))


# ---------------------------------------------------------------- stage: rejections


def test_several_notebooks_are_rejected(tmp_path):
    folder = tmp_path / "henry"
    folder.mkdir()
    (folder / "b.ipynb").write_text(NOTEBOOK)
    (folder / "a.ipynb").write_text(NOTEBOOK)
    with pytest.raises(Rejected) as info:
        find_entry(folder, [])
    assert str(info.value) == "several notebooks (a.ipynb, b.ipynb); submit exactly one"


def test_empty_folder_is_rejected(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    with pytest.raises(Rejected, match=r"no notebook \(\.ipynb\) and no Python module \(\.py\) found"):
        stage(single(folder), tmp_path / "work", [])


def test_folder_with_a_symlink_is_rejected(tmp_path):
    folder = tmp_path / "ivan"
    folder.mkdir()
    (folder / "task1.py").write_text("")
    (folder / "secret.py").symlink_to("/etc/passwd")
    with pytest.raises(Rejected, match=r"symbolic link \(secret.py\)"):
        stage(single(folder), tmp_path / "work", [])


@pytest.mark.parametrize("evil", ["../evil.py", "hw6/../../evil.py", "/tmp/evil.py", "C:/evil.py"])
def test_zip_with_path_outside_the_archive_is_rejected(tmp_path, evil):
    archive = make_zip(tmp_path / "zip_slip.zip", {"task1.py": "", evil: "print('pwned')\n"})
    work = tmp_path / "deep" / "work"
    with pytest.raises(Rejected) as info:
        stage(single(archive), work, [])
    assert str(info.value) == f"the archive entry {evil!r} points outside the archive"
    assert not (tmp_path / "deep" / "evil.py").exists() and not (tmp_path / "evil.py").exists()


def test_zip_with_symlink_entry_is_rejected(tmp_path):
    archive = tmp_path / "symlink_entry.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("task1.py", "")
        link = zipfile.ZipInfo("data")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc")
    with pytest.raises(Rejected) as info:
        stage(single(archive), tmp_path / "work", [])
    assert str(info.value) == "the archive entry 'data' is a symbolic link"
    assert not (tmp_path / "work" / "data").exists()


def test_zip_bomb_is_rejected(tmp_path):
    size = 20 * 2**20  # 20 MiB of zeros packs to ~20 KiB, a ratio far over the cap
    archive = make_zip(tmp_path / "zip_bomb.zip", {"task1.py": b"\0" * size})
    with pytest.raises(Rejected) as info:
        stage(single(archive), tmp_path / "work", [])
    assert str(info.value).startswith(f"the archive unpacks to {size:,} bytes (")
    assert str(info.value).endswith("x its size): too large")
    assert not (tmp_path / "work" / "task1.py").exists()


def test_zip_over_the_size_cap_is_rejected_even_at_a_low_ratio(tmp_path, monkeypatch):
    monkeypatch.setattr(submission, "MAX_ZIP_BYTES", 1000)
    archive = make_zip(tmp_path / "big.zip", {"task1.py": b"x" * 2000}, compression=zipfile.ZIP_STORED)
    with pytest.raises(Rejected, match="too large"):
        stage(single(archive), tmp_path / "work", [])


def test_zip_with_too_many_members_is_rejected(tmp_path):
    archive = make_zip(tmp_path / "many.zip", {f"f{i}.py": "" for i in range(submission.MAX_ZIP_MEMBERS + 1)},
                       compression=zipfile.ZIP_STORED)
    with pytest.raises(Rejected, match=f"has {submission.MAX_ZIP_MEMBERS + 1} entries"):
        stage(single(archive), tmp_path / "work", [])


def test_not_a_zip_is_rejected(tmp_path):
    fake = tmp_path / "not_a_zip.zip"
    fake.write_text("this is not an archive")
    with pytest.raises(Rejected) as info:
        stage(single(fake), tmp_path / "work", [])
    assert str(info.value) == "the file is not a readable zip archive"


def test_zip_with_a_file_and_a_folder_of_the_same_name_is_rejected(tmp_path):
    archive = make_zip(tmp_path / "file_then_folder.zip", {"task1.py": "", "task1.py/inner.py": ""})
    with pytest.raises(Rejected):
        stage(single(archive), tmp_path / "work", [])


def test_zip_entry_written_over_a_folder_is_rejected(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("hw6/task1.py", "")
        zf.writestr("hw6", "a file where a folder already is")
    archive = tmp_path / "folder_then_file.zip"
    archive.write_bytes(buf.getvalue())
    with pytest.raises(Rejected):
        stage(single(archive), tmp_path / "work", [])


# ---------------------------------------------------------------- the host's copy of the code


def test_code_texts_of_a_notebook_are_its_code_cells_numbered_as_shown(tmp_path):
    nb = {"cells": [{"cell_type": "markdown", "source": ["# Title"]},
                    {"cell_type": "code", "source": ["import torch\n", "x = 1\n"]},
                    {"cell_type": "code", "source": "class Conv2d: pass\n"}],
          "nbformat": 4, "nbformat_minor": 5, "metadata": {}}
    (tmp_path / "hw.ipynb").write_text(json.dumps(nb))
    entry = find_entry(tmp_path, [])
    assert submission.code_texts(entry) == [("cell 2", "import torch\nx = 1\n"), ("cell 3", "class Conv2d: pass\n")]


def test_code_texts_of_a_module_folder_are_its_files_including_packages(tmp_path):
    (tmp_path / "task2.py").write_text("A = 1\n")
    (tmp_path / "utils").mkdir()
    (tmp_path / "utils" / "reader.py").write_text("B = 2\n")
    entry = find_entry(tmp_path, [])
    assert submission.code_texts(entry) == [("task2.py", "A = 1\n"), ("utils/reader.py", "B = 2\n")]


def test_code_texts_of_an_unreadable_notebook_is_empty_not_an_error(tmp_path):
    (tmp_path / "hw.ipynb").write_text("{ not json")
    assert submission.code_texts(find_entry(tmp_path, [])) == []
