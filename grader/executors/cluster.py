"""``grade --executor slurm|ray``: the command-line side of grading on a cluster.

The options (flags, or a ``--cluster-config`` YAML file whose keys are the flags' names without
the dashes; a flag given on the command line wins), the backend they make, and the ``grade``
command line each task runs for its share: the batch's own options, with every path made absolute
because a task starts elsewhere.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grader.errors import GraderError

if TYPE_CHECKING:  # the parser is built with nothing heavy imported
    from grader.executors.shards import Backend

EXECUTORS = ("local", "slurm", "ray")
DEFAULT_PER_TASK = {"slurm": 8, "ray": 1}  # submissions per task: Slurm jobs cost seconds to start, Ray tasks do not
CONFIG_KEYS = {"partition", "account", "time", "gpus_per_task", "cpus_per_task", "per_task", "parallelism", "setup",
               "address"}


def add_options(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("on a cluster (docs/cluster.md)")
    group.add_argument("--executor", choices=EXECUTORS, default="local",
                       help="where the submissions are graded: this machine (default), a Slurm array job, Ray tasks")
    group.add_argument("--cluster-config", type=Path, metavar="FILE",
                       help="YAML with any of: " + ", ".join(sorted(CONFIG_KEYS)) + " (flags override it)")
    group.add_argument("--per-task", type=int, metavar="N", help="submissions graded by one task "
                       f"(default: slurm {DEFAULT_PER_TASK['slurm']}, ray {DEFAULT_PER_TASK['ray']})")
    group.add_argument("--partition", help="slurm: the partition to queue in")
    group.add_argument("--account", help="slurm: the account to charge")
    group.add_argument("--time", type=int, metavar="MINUTES", help="slurm: each task's time limit (default 60)")
    group.add_argument("--gpus-per-task", type=int, metavar="N", help="slurm: GPUs each task asks for (default 0); "
                       "a task shares them between --per-gpu submissions at once")
    group.add_argument("--cpus-per-task", type=int, metavar="N", help="slurm: cores each task asks for (default 2)")
    group.add_argument("--parallelism", type=int, metavar="N", help="slurm: tasks running at once (default 64)")
    group.add_argument("--address", help="ray: the cluster to join, e.g. ray://head:10001 or auto (default: start "
                       "a local one)")


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """The cluster settings: the config file's, overridden by the flags given."""
    import yaml

    found: dict[str, Any] = {}
    if args.cluster_config is not None:
        try:
            found = yaml.safe_load(args.cluster_config.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise GraderError(f"cannot read the cluster config: {exc}", where=str(args.cluster_config),
                              hint="a YAML mapping such as `partition: gpu`") from None
        if not isinstance(found, dict):
            raise GraderError("the cluster config is not a mapping of settings", where=str(args.cluster_config),
                              hint="write one `key: value` per line, e.g. `partition: gpu`")
        if unknown := sorted(set(found) - CONFIG_KEYS):
            raise GraderError(f"unknown key(s) {', '.join(unknown)} in the cluster config", where=str(args.cluster_config),
                              hint="known keys: " + ", ".join(sorted(CONFIG_KEYS)))
    for key in CONFIG_KEYS - {"setup"}:
        if getattr(args, key, None) is not None:
            found[key] = getattr(args, key)
    for key in ("per_task", "time", "gpus_per_task", "cpus_per_task", "parallelism"):
        if key in found and (not isinstance(found[key], int) or found[key] < (0 if key == "gpus_per_task" else 1)):
            raise GraderError(f"{key} must be a whole number{' of at least 1' if key != 'gpus_per_task' else ''}, "
                              f"not {found[key]!r}", where=f"--{key.replace('_', '-')}", hint="fix the value")
    found.setdefault("per_task", DEFAULT_PER_TASK[args.executor])
    return found


def backend(args: argparse.Namespace, found: dict[str, Any]) -> Backend:
    if args.gpus:
        raise GraderError("--gpus names this machine's devices; a task uses the GPUs its cluster gives it",
                          where="--gpus", hint="ask for GPUs with --gpus-per-task (slurm) or drop --gpus (ray: "
                                               "--per-gpu K asks for 1/K of a GPU per task)")
    if args.executor == "slurm":
        from grader.executors.slurm import SlurmBackend, SlurmOptions

        options = SlurmOptions(partition=found.get("partition"), account=found.get("account"),
                               time_minutes=found.get("time", 60), gpus_per_task=found.get("gpus_per_task", 0),
                               cpus_per_task=found.get("cpus_per_task", 2), parallelism=found.get("parallelism", 64),
                               setup=list(found.get("setup") or []), per_gpu=args.per_gpu)
        return SlurmBackend(options, args.out / "slurm")
    from grader.executors.ray_cluster import RayBackend

    return RayBackend(address=found.get("address"), per_gpu=args.per_gpu)


def share_argv(args: argparse.Namespace, files: list[str], shard: Path) -> list[str]:
    """The ``grade`` command line of one share (without ``grader``), for ``task.py`` to parse; the
    backend adds what its tasks need to use their GPUs (``Backend.device_flags``)."""
    from grader.cli import LIMIT_OPTIONS  # the command line's own list; cli imports this module
    rubric = str(Path(args.rubric).resolve()) if Path(args.rubric).is_file() else args.rubric
    argv = ["grade", rubric, *files, "--out", str(shard), "--quiet", "--isolation", args.isolation,
            "--profile", args.profile]
    for name in ("data_root", "mappings"):
        if getattr(args, name):
            argv += [f"--{name.replace('_', '-')}", str(Path(getattr(args, name)).resolve())]
    for name in (*LIMIT_OPTIONS, "workers"):
        if getattr(args, name):
            argv += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    for name in ("no_synthetic", "download", "keep_work"):
        if getattr(args, name):
            argv.append(f"--{name.replace('_', '-')}")
    return argv
