"""``grade --executor slurm|ray``'s options: a config file and flags merge (flags win), and every
wrong value is an error that names the option or file, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.cli import build_parser
from grader.errors import GraderError
from grader.executors import cluster
from tests.conftest import run_cli


def args_of(*extra: str):
    return build_parser().parse_args(["grade", "tiny", "batch", "--out", "out", *extra])


def test_flags_override_the_config_file_and_the_share_size_has_a_default(tmp_path):
    config = tmp_path / "cluster.yaml"
    config.write_text("partition: gpu\naccount: course\ntime: 30\nsetup: ['module load cuda']\n")
    found = cluster.settings(args_of("--executor", "slurm", "--cluster-config", str(config), "--time", "90"))
    assert found == {"partition": "gpu", "account": "course", "time": 90, "setup": ["module load cuda"],
                     "per_task": cluster.DEFAULT_PER_TASK["slurm"]}
    assert cluster.settings(args_of("--executor", "ray"))["per_task"] == cluster.DEFAULT_PER_TASK["ray"]


@pytest.mark.parametrize("text, said", [
    ("partition: gpu\nqueue: long\n", "unknown key(s) queue"),
    ("- a list\n", "not a mapping of settings"),
    ("time: soon\n", "time must be a whole number"),
    ("per_task: 0\n", "per_task must be a whole number of at least 1"),
    ("partition: [unclosed\n", "cannot read the cluster config"),
])
def test_a_wrong_config_file_is_named_with_what_is_wrong(tmp_path, text, said):
    config = tmp_path / "cluster.yaml"
    config.write_text(text)
    with pytest.raises(GraderError) as raised:
        cluster.settings(args_of("--executor", "slurm", "--cluster-config", str(config)))
    assert said in str(raised.value)


def test_the_share_command_line_carries_the_batchs_options_with_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("maps.yaml").write_text("{}\n")
    argv = cluster.share_argv(args_of("--executor", "slurm", "--profile", "quick", "--wall-seconds", "30",
                                      "--mappings", "maps.yaml", "--no-synthetic", "--workers", "3"),
                              ["/b/s0.py"], tmp_path / "shard")
    assert argv[:5] == ["grade", "tiny", "/b/s0.py", "--out", str(tmp_path / "shard")]
    assert argv[argv.index("--mappings") + 1] == str(tmp_path / "maps.yaml")
    for option in (["--profile", "quick"], ["--wall-seconds", "30.0"], ["--workers", "3"], ["--no-synthetic"]):
        assert " ".join(option) in " ".join(argv), (option, argv)


def test_gpus_of_this_machine_cannot_be_given_to_a_cluster(tmp_path):
    batch = tmp_path / "batch"
    batch.mkdir()
    (batch / "s0.py").write_text("answer = 42\n")
    done = run_cli("grade", "tests/fixtures/tiny/rubric.yaml", str(batch), "--out", str(tmp_path / "out"),
                   "--executor", "ray", "--gpus", "0")
    assert done.returncode != 0 and "--gpus-per-task" in done.stderr and "Traceback" not in done.stderr
