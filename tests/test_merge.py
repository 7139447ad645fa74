"""`grader merge`: shards graded apart (on two machines, or two nights) become one folder whose
reports hold every file's latest result; a file name graded with two contents is pointed out."""

from __future__ import annotations

import csv

from grader import cli
from tests.conftest import FIXTURES

TINY = str(FIXTURES / "tiny" / "rubric.yaml")
RIGHT = "answer = 42\n"  # the answer check tells them apart; no network to build keeps the shards fast
WRONG = "answer = 41\n"


def shard(tmp_path, name: str, files: dict[str, str]):
    batch = tmp_path / f"{name}-in"
    batch.mkdir()
    for file, code in files.items():
        (batch / file).write_text(code)
    out = tmp_path / name
    assert cli.main(["grade", TINY, str(batch), "--out", str(out), "--isolation", "process", "--workers", "2",
                     "--quiet"]) == 0
    return out


def gradebook(folder) -> dict[str, str]:
    with open(folder / "gradebook.csv", newline="") as f:
        return {row["student"]: row["score"] for row in csv.DictReader(f)}


def test_shards_merge_into_one_gradebook_and_a_doubled_name_is_pointed_out(tmp_path, capsys):
    first = shard(tmp_path, "night1", {"alice.py": RIGHT, "bob.py": WRONG})
    second = shard(tmp_path, "night2", {"carol.py": RIGHT, "bob.py": RIGHT})  # bob resubmitted
    capsys.readouterr()
    merged = tmp_path / "all"
    assert cli.main(["merge", TINY, str(first), str(second), "--out", str(merged)]) == 0
    out, err = capsys.readouterr()
    assert "3 submission(s) from 2 folder(s)" in out
    assert "bob.py was graded with different content in" in err and "the latest result is kept" in err
    scores = gradebook(merged)
    assert set(scores) == {"alice", "bob", "carol"}
    assert scores["bob"] == scores["alice"]  # the later, right file
    assert (merged / "submissions" / "carol.html").is_file() and (merged / "index.html").is_file()
    # merging again, or into one of the shards, changes nothing
    assert cli.main(["merge", TINY, str(first), str(second), "--out", str(merged)]) == 0
    assert gradebook(merged) == scores
    assert cli.main(["merge", TINY, str(first), str(second), "--out", str(second)]) == 0
    assert gradebook(second) == scores


def test_a_folder_that_is_not_a_batch_output_is_refused(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert cli.main(["merge", TINY, str(tmp_path / "empty"), "--out", str(tmp_path / "all")]) == 2
    err = capsys.readouterr().err
    assert "not a batch output folder (no journal.sqlite in it)" in err and "Traceback" not in err
