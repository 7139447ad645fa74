"""The index over several batch folders: one row and one link per batch, built from their files."""

from __future__ import annotations


from grader import report
from grader.report import batches
from tests.conftest import run_cli
from tests.report.test_html import result_with


def write_two_batches(root, tiny_rubric):
    report.write_batch([result_with(), result_with(student="bob", score=3, profile="quick", data="synthetic")],
                       tiny_rubric, root / "tiny")
    report.write_batch([result_with(student="eve", status="timeout-wall", assignment="other")],
                       tiny_rubric, root / "other")
    (root / "not-a-batch").mkdir()


def test_every_batch_folder_gets_a_row_and_a_link(tmp_path, tiny_rubric):
    write_two_batches(tmp_path, tiny_rubric)
    found = {b.folder: b for b in batches.find(tmp_path)}
    assert list(found) == ["other", "tiny"]
    tiny = found["tiny"]
    assert (tiny.submissions, tiny.full_marks, tiny.statuses) == (2, 1, [("ok", 2)])
    assert round(tiny.mean_percent, 6) == round((100 / 3 + 100) / 2, 6) and tiny.profiles == ["quick"]
    page = batches.write_index(tmp_path).read_text()
    assert '<a href="tiny/index.html">tiny</a>' in page and '<a href="other/index.html">other</a>' in page
    assert "timeout-wall: 1" in page and "synthetic data" in page


def test_an_unreadable_result_file_is_shown_not_fatal(tmp_path, tiny_rubric):
    write_two_batches(tmp_path, tiny_rubric)
    (tmp_path / "tiny" / "submissions" / "broken.json").write_text("{")
    [_, tiny] = batches.find(tmp_path)
    assert tiny.unreadable == ["broken.json"] and tiny.submissions == 2
    assert "unreadable: 1" in batches.write_index(tmp_path).read_text()


def test_cli_index_prints_each_batch_and_the_page(tmp_path, tiny_rubric):
    write_two_batches(tmp_path, tiny_rubric)
    done = run_cli("index", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "2 batch(es); open " in done.stdout and str(tmp_path / "index.html") in done.stdout
    missing = run_cli("index", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "is not a folder" in missing.stderr and "Traceback" not in missing.stderr
