"""The ``grader`` command: argument parsing and output only; the work happens in the pipeline.

Exit codes: 0 graded (or all visible checks passed, for ``check``), 1 grader error,
2 usage or rubric error, 3 a visible check did not pass (``check`` only).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Any

from grader.executors import cluster

EXIT_OK, EXIT_GRADER_ERROR, EXIT_USAGE, EXIT_CHECK_FAILED = 0, 1, 2, 3
PROFILES = ("auto", "quick", "full")  # grader.profiles.CHOICES, kept here so --help imports nothing
PROFILE_HELP = ("training budget of accuracy checks: full (the handout's), quick (a subset, fewer epochs) or auto "
                "(default: quick on synthetic data, full on real data)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grader", description="Grade PyTorch deep-learning assignments.",
                                     epilog="exit codes: 0 graded, 1 grader error, 2 usage or rubric error, "
                                            "3 (check) a visible check did not pass, (grade --fail-under) a "
                                            "submission scored below the bar")
    parser.add_argument("--version", action=_PrintVersion)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    grade = sub.add_parser("grade", help="grade a batch of submissions and write reports")
    grade.add_argument("rubric", help="rubric file, or a bundled assignment id (see `grader list`)")
    grade.add_argument("submissions", nargs="+", type=Path,
                       help="batch folders (one entry per student) or single .ipynb/.py/.zip files")
    grade.add_argument("--out", type=Path, required=True,
                       help="folder for the reports and the journal; run again with the same --out to resume, "
                            "or to add files graded later (the reports show every file's latest result)")
    grade.add_argument("--fail-under", type=_percent, metavar="PERCENT",
                       help="exit 3 when a submission scores below PERCENT of the points (for CI), e.g. 80")
    grade.add_argument("--similarity", action="store_true", help="also compare the submissions' code with each "
                       "other (see `grader similarity`)")
    _similarity_options(grade, with_rubric=False)
    _run_options(grade)
    _batch_options(grade)
    cluster.add_options(grade)

    check = sub.add_parser("check", help="self-check one submission: visible checks only")
    check.add_argument("submission", type=Path, help="your notebook, module or folder")
    which = check.add_mutually_exclusive_group(required=True)
    which.add_argument("--assignment", help="assignment id (see `grader list`)")
    which.add_argument("--rubric", help="rubric file")
    which.add_argument("--kit", type=Path, help="the student kit your course handed out (its folder or .zip)")
    _run_options(check)

    release = sub.add_parser("release", help="write the student kit: visible checks, their expectations, the "
                             "provided files; no solutions")
    release.add_argument("rubric", help="rubric file, or a bundled assignment id")
    where = release.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", type=Path, help="the kit's folder (DIR.zip is written beside it)")
    where.add_argument("--verify", type=Path, metavar="KIT",
                       help="check that a kit (folder or .zip) matches the rubric")

    gradescope = sub.add_parser("gradescope", help="grade as a Gradescope autograder: the upload in "
                                "/autograder/submission, the results in /autograder/results/results.json")
    gradescope.add_argument("rubric", help="rubric file, or a bundled assignment id")
    gradescope.add_argument("--submission", type=Path, default=None, metavar="FOLDER",
                            help="the student's upload (default: /autograder/submission)")
    gradescope.add_argument("--results", type=Path, default=None, metavar="FILE",
                            help="where to write results.json (default: /autograder/results/results.json)")
    _run_options(gradescope)

    validate = sub.add_parser("validate", help="check rubrics and compute their expectations from the reference")
    validate.add_argument("rubrics", nargs="*", help="rubric files or assignment ids")
    validate.add_argument("--all", action="store_true",
                          help="every bundled rubric, with its examples graded and compared (implies --examples)")
    validate.add_argument("--examples", action="store_true",
                          help="also grade submissions/<id>/ and compare with its expected.yaml")
    validate.add_argument("--workers", type=_positive_int, default=os.cpu_count() or 1, metavar="N",
                          help="examples graded at once (default: one per CPU core)")
    validate.add_argument("--profile", choices=PROFILES, default="auto",
                          help="also list the accuracy calibrations on file for this profile (default: every profile)")

    calibrate = sub.add_parser("calibrate", help="train the reference over several seeds to calibrate accuracy checks")
    calibrate.add_argument("rubric", help="rubric file, or a bundled assignment id")
    calibrate.add_argument("--seeds", type=_positive_int, default=30, metavar="N",
                           help="training runs of the reference (default: 30; fewer than 20 cannot show the lower "
                                "tail of its accuracy)")
    calibrate.add_argument("--jobs", type=_positive_int, default=os.cpu_count() or 1, metavar="N",
                           help="seeds trained at once, each in its own process on one math thread (default: one "
                                "per core); the accuracies do not depend on it")
    calibrate.add_argument("--profile", choices=PROFILES, default="auto", help=PROFILE_HELP)
    calibrate.add_argument("--data-root", type=Path, help="data sets in torchvision layout (default: $GRADER_DATA)")
    calibrate.add_argument("--no-synthetic", action="store_true", help="fail instead of calibrating on synthetic data")
    calibrate.add_argument("--download", action="store_true",
                           help="download a missing data set into the data root first (needs the network)")
    calibrate.add_argument("--cpu", action="store_true",
                           help="train on the CPU even where a GPU is visible (for grading without --gpus)")
    calibrate.add_argument("--check", action="append", metavar="ID",
                           help="calibrate only this accuracy check (repeatable), keeping the others on file")

    sub.add_parser("schema", help="print the rubric JSON Schema")
    sub.add_parser("list", help="list the assignments with their rubrics")
    index = sub.add_parser("index", help="write OUT/index.html linking every batch folder graded into OUT/<name>")
    index.add_argument("out", type=Path, help="the folder holding the batch folders")

    similar = sub.add_parser("similarity", help="find submissions of a batch that share their code (starter and "
                             "provided code left out); the pairs go on the batch page, never into a grade")
    similar.add_argument("out", type=Path, help="a batch's output folder (what `grade --out` wrote)")
    _similarity_options(similar)

    merge = sub.add_parser("merge", help="combine the output folders of shards (graded apart) into one")
    merge.add_argument("rubric", help="the rubric the shards were graded against")
    merge.add_argument("shards", nargs="+", type=Path, help="output folders written by `grade --out`")
    merge.add_argument("--out", type=Path, required=True, help="the combined folder (may be one of the shards "
                       "or an earlier merge: what it holds is kept)")

    export = sub.add_parser("export", help="write a batch's results in another format (for CI or a spreadsheet)")
    export.add_argument("out", type=Path, help="a batch's output folder (what `grade --out` wrote)")
    export.add_argument("--to", required=True, choices=sorted(EXPORTS), help="canvas: Canvas's gradebook import "
                        "CSV; moodle: Moodle's gradebook CSV import; gradescope: a results.json per submission; "
                        "junit: JUnit XML, one test suite per submission and one test case per check; csv: one row "
                        "per submission")
    export.add_argument("--output", type=Path, metavar="PATH",
                        help="where to write (default: OUT/export/<format file>; for gradescope, a folder)")
    export.add_argument("--roster", type=Path, metavar="CSV", help="the class list from the LMS (needed for canvas and "
                        "moodle): matches each submission to a student by its file name; what does not match is listed")
    export.add_argument("--column", metavar="NAME", help="canvas, moodle: the grade column's header, as the LMS "
                        "names the assignment (default: the assignment id)")
    export.add_argument("--out-of", type=float, metavar="POINTS", help="canvas, moodle: rescale scores to this many "
                        "points (default: the rubric's points)")
    return parser


# format -> default file (or folder) name under OUT/export/
EXPORTS = {"junit": "junit.xml", "csv": "grades.csv", "canvas": "canvas.csv", "moodle": "moodle.csv",
           "gradescope": "gradescope"}
NEEDS_ROSTER = {"canvas", "moodle"}


def _run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", type=Path, help="data sets in torchvision layout (default: $GRADER_DATA)")
    p.add_argument("--no-synthetic", action="store_true", help="fail instead of grading on synthetic data")
    p.add_argument("--download", action="store_true",
                   help="download a missing data set into the data root first (needs the network; never from a sandbox)")
    p.add_argument("--wall-seconds", type=float, help="override the rubric's limit for a whole run")
    p.add_argument("--cell-seconds", type=float, help="override the rubric's limit for one cell")
    p.add_argument("--cpu-seconds", type=float, help="override the rubric's CPU-time limit of any one process")
    p.add_argument("--memory-mb", type=_positive_int, help="override the rubric's memory limit of any one process")
    p.add_argument("--disk-mb", type=_positive_int, help="override how much the run may write")
    p.add_argument("--isolation", choices=["auto", "namespace", "process", "none"], default="auto",
                   help="sandbox level (default auto: namespace where available, else process; none: debugging)")
    p.add_argument("--keep-work", action="store_true", help="keep each run's working folder (debugging)")
    p.add_argument("--profile", choices=PROFILES, default="auto", help=PROFILE_HELP)
    p.add_argument("--mappings", type=Path, metavar="FILE",
                   help="an instructor's names for targets the grader could not find, per student "
                        "(YAML: student: {target: name}); only the mapped submissions are graded again")


def _similarity_options(p: argparse.ArgumentParser, with_rubric: bool = True) -> None:
    if with_rubric:
        p.add_argument("--rubric", help="the rubric the batch was graded against (default: the bundled one its "
                       "results name)")
    p.add_argument("--starter", type=Path, action="append", default=[], metavar="FILE",
                   help="the handout's starter notebook or module, left out of every comparison (repeatable; the "
                        "rubric's provided files are left out anyway)")
    p.add_argument("--against", type=Path, action="append", default=[], metavar="OLD_OUT",
                   help="also compare with the submissions of an earlier batch folder (repeatable)")
    p.add_argument("--threshold", type=_share, default=None, metavar="SHARE",
                   help="list pairs sharing at least this share of one side's code (default: 0.6)")


def _share(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a share between 0 and 1, got {text!r}")
    return value


def _batch_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=_positive_int, metavar="N",
                   help="submissions graded at once (default: one per CPU core; with --gpus, GPUs x --per-gpu)")
    p.add_argument("--gpus", metavar="LIST", help="CUDA devices to share out, e.g. 0,1, or `all` (default: CPU only)")
    p.add_argument("--per-gpu", type=_positive_int, default=1, metavar="K",
                   help="submissions sharing one GPU (default: 1)")
    p.add_argument("--force", action="store_true", help="regrade everything, even results kept from an earlier run: "
                                                        "probe the reference again for the expectations and "
                                                        "measure (train) every network again")
    p.add_argument("--quiet", action="store_true", help="no progress, only the summary line (for CI)")


class _PrintVersion(argparse.Action):
    """``--version``: the release and the hash of the grader's source (what caches and journals are
    keyed on), computed only when asked."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the grader's version and source hash, and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        from grader.source_hash import exact_version

        print(f"grader {exact_version()}")
        parser.exit()


def _percent(text: str) -> float:
    try:
        value = float(text.strip().removesuffix("%"))
    except ValueError:
        value = -1.0
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"expected a percentage from 0 to 100, got {text!r}")
    return value


def below_the_bar(results: list[Any], percent: float) -> list[str]:
    """``student (score%)`` for every result under ``percent`` of its points; a submission that was
    rejected or did not run scores what it scored (usually 0)."""
    low = []
    for result in results:
        if 100 * result.share < percent:
            low.append(f"{result.student} ({100 * result.share:.1f}%)")
    return low


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # CI cancelling a job sends SIGTERM: stop as cleanly as on Ctrl-C


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    from grader.errors import GraderError

    try:
        return COMMANDS[args.command](args)
    except GraderError as exc:
        print(f"error: {exc.render()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `grader schema | head`: the reader left, nothing is wrong
        sys.stderr.close()
        return EXIT_OK
    except Exception:  # noqa: BLE001 - a bug: say so, keep the traceback for the report
        import tempfile
        import traceback

        with tempfile.NamedTemporaryFile("w", prefix="grader-crash-", suffix=".txt", delete=False) as f:
            traceback.print_exc(file=f)
        print(f"grader: internal error ({sys.exc_info()[1]!r}); this is a bug in grader. "
              f"Traceback saved to {f.name}", file=sys.stderr)
        return EXIT_GRADER_ERROR


def load_rubric(ref: str) -> Any:
    from grader import rubric

    path = Path(ref)
    # A batch folder named like the assignment (`grader grade fc-vs-cnn fc-vs-cnn/`) is not a rubric.
    return rubric.load(path if path.suffix in (".yaml", ".yml") or path.is_file() else rubric.find(ref))


def own_modules(rubric: Any) -> frozenset[str]:
    """The assignment's own module names: a folder holding them is one submission, not a batch."""
    return frozenset([*rubric.model.submission.modules,
                      *(Path(p).stem for p in rubric.model.submission.provided if p.endswith(".py"))])


# The limits `grade` takes on its command line (`--wall-seconds` ...), over the rubric's own.
LIMIT_OPTIONS = ("wall_seconds", "cell_seconds", "cpu_seconds", "memory_mb", "disk_mb")


def settings_from(args: argparse.Namespace, rubric: Any) -> Any:
    from grader.pipeline import Settings

    overrides = {name: getattr(args, name) for name in LIMIT_OPTIONS if getattr(args, name)}
    return Settings(data_root=args.data_root, allow_synthetic=not args.no_synthetic, download=args.download,
                    limit_overrides=overrides, keep_work=args.keep_work, isolation=args.isolation,
                    profile=args.profile, mappings=_mappings(args, rubric),
                    remeasure=getattr(args, "force", False))


def _mappings(args: argparse.Namespace, rubric: Any) -> dict[str, dict[str, str]]:
    from grader import mappings

    return mappings.load(args.mappings, list(rubric.model.targets)) if args.mappings else {}


def cmd_grade(args: argparse.Namespace) -> int:
    from grader import pipeline, references, report, submission
    from grader.errors import GraderError
    from grader.executors.slots import parse_gpus, plan_slots
    from grader.journal import JOURNAL_NAME, Journal
    from grader.progress import Progress, choose_mode

    rubric = load_rubric(args.rubric)
    for path in args.submissions:
        if not path.exists():
            raise GraderError("no such file or folder", where=str(path), hint="pass a batch folder or submission files")
    subs = submission.discover(args.submissions, own_modules(rubric))
    for path in args.submissions:
        if submission.is_one_submission(path, own_modules(rubric)):
            print(f"note: {path} holds the assignment's own modules, so it is graded as one submission "
                  "(to grade a batch, pass the folder that holds one entry per student)", file=sys.stderr)
    if not subs:
        raise GraderError("no submissions found", where=", ".join(map(str, args.submissions)),
                          hint="a batch folder holds one .ipynb, .py, .zip or folder per student")
    remote = cluster.settings(args) if args.executor != "local" else None
    if args.per_gpu != 1 and not args.gpus and remote is None:
        raise GraderError("--per-gpu needs --gpus", where="--per-gpu", hint="add --gpus all, or drop --per-gpu")
    backend = cluster.backend(args, remote) if remote is not None else None
    slots = plan_slots(args.workers, parse_gpus(args.gpus) if args.gpus else [], args.per_gpu) if not remote else []
    # Open the journal before the slow preparation: a locked or unreadable one is reported at once.
    settings = settings_from(args, rubric)
    strangers = sorted(set(settings.mappings) - {s.student for s in subs})
    if strangers:
        print(f"warning: {args.mappings} maps student(s) not in this batch: {', '.join(strangers)} (ids as the "
              "gradebook names them)", file=sys.stderr)
    with Journal.open(args.out / JOURNAL_NAME) as journal:
        if args.force:  # regrade from scratch: the reference is probed again too
            references.forget(rubric)
        prep = pipeline.prepare(rubric, settings)
        if prep.isolation != "namespace":
            print(f"warning: isolation {prep.isolation}: student code runs as your user and can read and change "
                  "your files; grade other people's code with --isolation namespace (see docs/security.md)",
                  file=sys.stderr)
        if not args.quiet:
            if prep.data.origin == "synthetic":
                print(f"data: synthetic {rubric.model.data.dataset} in {prep.data.path} (no real data in the data root)")
            gpus = sorted({s.gpu for s in slots if s.gpu})
            print(f"grading {len(subs)} submission(s) against {rubric.model.assignment}, "
                  + (f"{min(len(slots), len(subs))} at once" + (f" on GPU {','.join(gpus)}" if gpus else "")
                     if remote is None else f"in tasks of {remote['per_task']} on {args.executor}"))
        progress = Progress(len(subs), mode=choose_mode(sys.stderr, args.quiet))
        ungraded = 0
        try:
            if backend is None:
                results = pipeline.grade_batch(subs, prep, progress, journal=journal, force=args.force, slots=slots)
            else:
                results = _grade_on_cluster(args, remote, backend, subs, prep, progress, journal)
                ungraded = len(subs) - len(results)
        except KeyboardInterrupt:
            progress.close()
            print(f"interrupted: {progress.done} of {len(subs)} result(s) are kept in {journal.path}; run the same "
                  f"command again{' without --force' if args.force else ''} to grade the rest", file=sys.stderr)
            return 130  # 128 + SIGINT, as a shell reports it
        progress.close()
        reported, left_out = _every_result(journal, results, rubric)
    if args.similarity:
        _similarity(args, rubric, args.out, reported)
    index = report.write_batch(reported, rubric, args.out)
    if len(reported) > len(results):
        print(f"reports: {len(reported)} submission(s), {len(reported) - len(results)} of them graded earlier into "
              f"{args.out}")
    if left_out:
        print(f"note: {left_out} file(s) in {args.out} were graded by another rubric or grader version and are left "
              "out of the reports; grade them again to include them", file=sys.stderr)
    broken = [r for r in results if r.status == "sandbox-error" or any(c.outcome == "grader-error" for c in r.checks)]
    print(f"{progress.summary()}; summary page {index.resolve()}")
    undecided = [r.student for r in results if any(c.outcome == "needs-review" for c in r.checks)]
    if undecided:
        print(f"{len(undecided)} submission(s) need a person (under 'needs attention' on the summary page): "
              f"{', '.join(undecided[:10])}{' ...' if len(undecided) > 10 else ''}; map their targets with --mappings")
    if broken:
        print(f"grader errors in {len(broken)} submission(s): {', '.join(r.student for r in broken)}", file=sys.stderr)
        return EXIT_GRADER_ERROR
    if ungraded:  # named above, by _grade_on_cluster
        return EXIT_GRADER_ERROR
    if args.fail_under is not None and (low := below_the_bar(results, args.fail_under)):
        print(f"{len(low)} submission(s) below --fail-under {args.fail_under:g}%: {', '.join(low[:20])}"
              f"{' ...' if len(low) > 20 else ''}", file=sys.stderr)
        return EXIT_CHECK_FAILED
    return EXIT_OK


def _grade_on_cluster(args: argparse.Namespace, remote: dict[str, Any], backend: Any, subs: list[Any], prep: Any,
                      progress: Any, journal: Any) -> list[Any]:
    """The batch in tasks on Slurm or Ray (``executors/shards.py``); what could not be graded is said."""
    from grader.executors import shards

    outcome = shards.grade_in_shares(
        subs, prep, backend, grade_argv=lambda files, shard: cluster.share_argv(args, files, shard),
        out=args.out, per_task=remote["per_task"], journal=journal, events=progress, force=args.force)
    for line in outcome.died:
        print(f"warning: {line}", file=sys.stderr)
    if outcome.missing:
        print(f"warning: {len(outcome.missing)} submission(s) were not graded after {shards.ATTEMPTS} tasks tried: "
              f"{', '.join(outcome.missing[:10])}{' ...' if len(outcome.missing) > 10 else ''}; the tasks' folders are "
              f"in {outcome.shards}; run the same command again to retry them", file=sys.stderr)
    return [r for r in outcome.results if r is not None]


def _every_result(journal: Any, results: list[Any], rubric: Any) -> tuple[list[Any], int]:
    """What the output folder's reports show: this run's results and every earlier one in the
    folder's journal (same rubric and grader version) for a file this run did not grade, so a late
    file graded into the folder adds a row instead of replacing the gradebook; ids kept distinct
    across both (``submission.distinct_ids``). Also how many files were left out for another version."""
    from grader import submission
    from grader.source_hash import exact_version

    earlier, left_out = journal.results_of(rubric.text_hash, exact_version())
    now = {Path(r.source).name for r in results}
    merged = [r for name, r in sorted(earlier.items()) if name not in now] + list(results)
    ids = submission.distinct_ids([r.student for r in merged], [Path(r.source).name for r in merged])
    return [r if r.student == i else r.model_copy(update={"student": i}) for r, i in zip(merged, ids)], left_out


def cmd_check(args: argparse.Namespace) -> int:
    from grader import kit, pipeline, submission
    from grader.errors import GraderError
    from grader.report.terminal import self_check_table

    rubric = kit.load(args.kit) if args.kit else load_rubric(args.rubric or args.assignment)
    if not args.submission.exists():
        raise GraderError("no such file or folder", where=str(args.submission))
    # through the batch path, alone: a failure of the machine (sandbox-error) is retried there too
    (result,) = pipeline.grade_batch([submission.single(args.submission)],
                                     pipeline.prepare(rubric, settings_from(args, rubric)))
    print(self_check_table(result, kit.hidden_checks(rubric) if rubric.kit_dir else None))
    visible = [c for c in result.checks if c.visibility == "visible"]
    if any(c.outcome == "grader-error" for c in visible) or result.status == "sandbox-error":
        return EXIT_GRADER_ERROR
    # a check this machine cannot run (no pretrained weights here) says so in the table; it is no failure
    return EXIT_OK if all(c.outcome == "passed" for c in visible if c.counted) else EXIT_CHECK_FAILED


def cmd_release(args: argparse.Namespace) -> int:
    from grader import kit

    rubric = load_rubric(args.rubric)
    if args.verify:
        problems = kit.verify(rubric, args.verify)
        for line in problems:
            print(f"kit does not match: {line}", file=sys.stderr)
        if problems:
            print(f"  hint: release it again: grader release {args.rubric} --out {args.verify}", file=sys.stderr)
            return EXIT_USAGE
        print(f"{args.verify}: the kit matches {rubric.path}")
        return EXIT_OK
    notes = kit.release(rubric, args.out)
    visible = sum(c.visibility == "visible" for c in rubric.model.checks)
    print(f"kit of {rubric.model.assignment} in {args.out.resolve()}: {visible} visible check(s) of "
          f"{len(rubric.model.checks)}")
    for note in notes:
        print(f"  {note}")
    return EXIT_OK


def cmd_gradescope(args: argparse.Namespace) -> int:
    from grader import gradescope

    rubric = load_rubric(args.rubric)
    result = gradescope.grade_upload(rubric, settings_from(args, rubric), args.submission or gradescope.SUBMISSION,
                                     args.results or gradescope.RESULTS)
    print(f"{result.status}: {result.score:g} / {result.max_score:g}; written to "
          f"{(args.results or gradescope.RESULTS).resolve()}")
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    from grader import references
    from grader.errors import GraderError

    if not args.rubrics and not args.all:
        raise GraderError("nothing to validate", where="grader validate", hint="name rubrics or pass --all")
    refs = [str(p) for p in _bundled_rubrics()] if args.all else args.rubrics
    failed = False
    for ref in refs:
        rubric = load_rubric(ref)
        expected = references.expectations(rubric)
        print(f"{rubric.path}: ok ({len(rubric.model.checks)} checks, {rubric.model.max_points:g} points, "
              f"{len(expected)} expectation(s) from {rubric.reference_dir.name})")
        for line in _calibration_lines(rubric, args.profile):
            print(f"  {line}")
        failed |= not _validate_reference(rubric, args.profile)
        if args.all or args.examples:
            failed |= not _validate_examples(rubric, args.workers)
    return EXIT_GRADER_ERROR if failed else EXIT_OK


def _validate_reference(rubric: Any, profile: str) -> bool:
    """Grade the reference folder as a submission; print why it misses full marks, if it does."""
    from grader import pipeline, submission, validation

    prep = pipeline.prepare(rubric, pipeline.Settings(profile=profile))
    result = pipeline.grade_one(submission.single(rubric.reference_dir), prep)
    problems = validation.reference_problems(result)
    print(f"  reference graded as a submission: {result.score:g} / {result.max_score:g}"
          + ("" if not problems else f"; {len(problems)} problem(s): the rubric or the reference is wrong"))
    for line in problems:
        print(f"    {line}")
    for check in result.checks:
        if not check.counted:
            print(f"    not counted: {check.id}: {check.message}")
    return not problems


def _validate_examples(rubric: Any, workers: int) -> bool:
    """Grade the rubric's example folder and print every difference from its manifest."""
    from grader import pipeline, submission, validation
    from grader.executors.slots import plan_slots

    folder = validation.examples_folder(rubric)
    if not (folder / validation.MANIFEST).is_file():
        print(f"  examples: none ({folder / validation.MANIFEST} does not exist)")
        return True
    manifest = validation.load_manifest(folder)  # a broken manifest fails before anything is graded
    subs = submission.discover([folder])
    prep = pipeline.prepare(rubric, pipeline.Settings())
    results = pipeline.grade_batch(subs, prep, slots=plan_slots(workers, [], 1))
    problems = validation.example_problems(manifest, {Path(r.source).name: r for r in results})
    print(f"  examples: {len(results)} graded, " + ("all as expected" if not problems else f"{len(problems)} difference(s)"))
    for line in problems:
        print(f"    {line}")
    return not problems


def _bundled_rubrics() -> list[Path]:
    from grader.paths import rubric_dirs

    return sorted({p for d in rubric_dirs() if d.is_dir() for p in d.glob("*.yaml") if p.name.count(".") == 1})


def _calibration_lines(rubric: Any, profile: str) -> list[str]:
    """What calibrations are on file for the rubric's calibrated accuracy checks."""
    from grader import calibration, profiles
    from grader.checks.accuracy import AccuracySpec

    wanted = [c.id for c in rubric.model.checks if isinstance(c, AccuracySpec) and c.threshold == "calibrated"]
    if not wanted:
        return []
    runs = [r for r in calibration.read(rubric).runs if profile in ("auto", r.profile)]
    lines = []
    for r in runs:
        lines.append(f"calibrated: {r.profile} on {r.device} ({r.data} data, {len(r.seeds)} seeds, {r.date[:10]}): "
                     + ", ".join(f"{cid} {s.mean:.3f} ± {s.std:.3f}" for cid, s in r.checks.items()))
        for check_id in r.checks:
            why = profiles.why_stale_on_file(rubric, check_id, r)
            if why:
                lines.append(f"  STALE {check_id}: {why}; run `{calibration.command(rubric, r.profile)}`")
    return lines or [f"no calibration{'' if profile == 'auto' else f' for profile {profile}'} of "
                     f"{', '.join(wanted)}: run `{calibration.command(rubric, 'quick' if profile == 'auto' else profile)}`"]


def cmd_calibrate(args: argparse.Namespace) -> int:
    from grader import calibration

    rubric = load_rubric(args.rubric)
    path = calibration.calibrate(rubric, args.seeds, args.profile, args.data_root, not args.no_synthetic,
                                 progress=lambda line: print(line, flush=True), device="cpu" if args.cpu else None,
                                 download=args.download, jobs=args.jobs, only=set(args.check or ()))
    written = calibration.read(rubric).runs[-1]
    print(f"wrote {path}: profile {written.profile} on {written.device} ({written.data} data, "
          f"{len(written.seeds)} seeds)")
    draws = {check.id: getattr(check, "draws", 1) for check in rubric.model.checks}
    for check_id, stats in written.checks.items():
        single = stats.false_fail_estimate or 0.0
        judged = calibration.judged_rate(single, draws.get(check_id, 1))
        print(f"  {check_id}: mean {stats.mean:.4f}, std {stats.std:.4f}, lowest {min(stats.accuracies):.4f} on "
              f"{stats.test_images} scored images; threshold {stats.threshold:.4f}; the reference would fail it on "
              f"about {single:.2g} of fresh seeds (normal fit)"
              + (f", and the check, judged on up to {draws[check_id]} trainings, about {judged:.2g}"
                 if draws.get(check_id, 1) > 1 else ""))
        if judged > calibration.FALSE_FAIL_GOAL:
            print(f"  warning: {check_id}: that is above the goal of {calibration.FALSE_FAIL_GOAL:g}; more seeds, "
                  "a longer budget for this profile or a larger floor would lower it")
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    import json

    from grader.rubric import json_schema

    print(json.dumps(json_schema(), indent=2))
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    from grader import rubric as rubric_mod
    from grader.errors import GraderError
    from grader.paths import rubric_dirs

    paths = _bundled_rubrics()
    if not paths:
        print("no rubrics found (looked in: " + ", ".join(map(str, rubric_dirs())) + ")")
        return EXIT_OK
    for path in paths:
        try:
            r = rubric_mod.load(path).model
            print(f"{r.assignment:<20} {len(r.checks):>3} checks {r.max_points:>6g} points  {r.title}  ({path})")
        except GraderError as exc:
            print(f"{path.stem:<20} INVALID: {exc.what.splitlines()[0]}  ({path})")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    import json

    from grader import roster
    from grader.errors import GraderError
    from grader.fsutil import atomic_write
    from grader.report import batches, lms
    from grader.report.exporters import gradebook_csv
    from grader.report.junit import junit_xml

    if not (args.out / "submissions").is_dir():
        raise GraderError("not a batch output folder (no submissions/ in it)", where=str(args.out),
                          hint="pass the folder `grader grade ... --out` wrote")
    if args.to in NEEDS_ROSTER and args.roster is None:
        raise GraderError(f"--to {args.to} needs --roster: the LMS matches grade rows on its own ids", where="export",
                          hint="download the class list (Canvas: Grades > Export; Moodle: the grading worksheet or "
                               "participants) as CSV and pass it with --roster FILE")
    if args.out_of is not None and args.out_of <= 0:
        raise GraderError(f"--out-of must be a positive number of points, not {args.out_of:g}", where="export",
                          hint="give the assignment's points in the LMS, e.g. --out-of 100")
    results, unreadable = batches.read_results(args.out)
    if unreadable:
        print(f"warning: {len(unreadable)} result file(s) in {args.out / 'submissions'} cannot be read and are left "
              f"out: {', '.join(unreadable[:10])}", file=sys.stderr)
    target = args.output or args.out / "export" / EXPORTS[args.to]
    if args.to == "gradescope":
        for result in results:
            atomic_write(target / result.student / "results.json", json.dumps(lms.gradescope_results(result), indent=2))
        print(f"{len(results)} submission(s) written as gradescope results.json under {target.resolve()}")
        return EXIT_OK
    if args.to in NEEDS_ROSTER:
        course = roster.load(args.roster)
        matching = course.match({r.student: Path(r.source).name for r in results})
        column = args.column or ", ".join(sorted({r.assignment for r in results})) or "grader"
        write = lms.canvas_csv if args.to == "canvas" else lms.moodle_csv
        text = write(results, course, matching, column, args.out_of)
        problems = matching.problems()
        for line in problems:
            print(f"note: {line}", file=sys.stderr)
        summary = (f"{len(matching.matched)} of {len(course.students)} student(s) of the roster have a grade "
                   f"({len(problems)} note(s) above for a person),")
    else:
        text = junit_xml(results) if args.to == "junit" else gradebook_csv(results)
        summary = f"{len(results)} submission(s)"
    atomic_write(target, text)
    print(f"{summary} written as {args.to} to {target.resolve()}")
    return EXIT_OK


def cmd_similarity(args: argparse.Namespace) -> int:
    from grader import report
    from grader.errors import GraderError
    from grader.report import batches

    results, _ = batches.read_results(args.out)
    if not results:
        raise GraderError("no results in this folder", where=str(args.out),
                          hint="pass the folder `grader grade ... --out` wrote")
    assignments = sorted({r.assignment for r in results})
    if args.rubric is None and len(assignments) != 1:
        raise GraderError(f"the folder holds results of {len(assignments)} assignments ({', '.join(assignments)})",
                          where=str(args.out), hint="pass --rubric to say which one to compare")
    rubric = load_rubric(args.rubric or assignments[0])
    _similarity(args, rubric, args.out, results)
    report.write_batch(results, rubric, args.out)
    return EXIT_OK


def _similarity(args: argparse.Namespace, rubric: Any, out: Path, results: list[Any]) -> Any:
    """Run the comparison for ``grade --similarity`` or ``similarity``; print what it found."""
    from grader import similarity

    found = similarity.run(out, rubric, results, args.starter, args.against, args.threshold or similarity.THRESHOLD)
    print(f"similarity: {found.compared} pair(s) compared, {len(found.pairs)} at or above {found.threshold:.0%}"
          + (f"; not compared (code unreadable or moved): {', '.join(found.unreadable)}" if found.unreadable else ""))
    for pair in found.pairs[:10]:
        print(f"  {pair.score:4.0%}  {pair.first} & {pair.second}{f' ({pair.second_term})' if pair.second_term else ''}"
              f"  {(out / pair.page).resolve()}")
    return found


def cmd_merge(args: argparse.Namespace) -> int:
    from grader import report
    from grader.errors import GraderError
    from grader.journal import JOURNAL_NAME, Journal

    rubric = load_rubric(args.rubric)
    shards = [shard for shard in args.shards if shard.resolve() != args.out.resolve()]
    for shard in shards:
        if not (shard / JOURNAL_NAME).is_file():
            raise GraderError(f"not a batch output folder (no {JOURNAL_NAME} in it)", where=str(shard),
                              hint="pass the folders `grader grade ... --out` wrote")
    contents: dict[str, dict[str, list[str]]] = {}  # file name -> content hash -> the shards holding it
    with Journal.open(args.out / JOURNAL_NAME) as combined:
        for shard in shards:
            with Journal.open(shard / JOURNAL_NAME) as journal:
                for name, content in combined.take_finished(journal):
                    contents.setdefault(name, {}).setdefault(content, []).append(str(shard))
        reported, left_out = _every_result(combined, [], rubric)
    index = report.write_batch(reported, rubric, args.out)
    for name, versions in sorted(contents.items()):
        if len(versions) > 1:
            print(f"note: {name} was graded with different content in {'; '.join(', '.join(s) for s in versions.values())}"
                  ": the latest result is kept (check it is one student's file, not two students' with one name)",
                  file=sys.stderr)
    if left_out:
        print(f"note: {left_out} file(s) were graded by another rubric or grader version and are left out; grade "
              "them again to include them", file=sys.stderr)
    print(f"{len(reported)} submission(s) from {len(shards)} folder(s) in {args.out}; summary page {index.resolve()}")
    return EXIT_OK


def cmd_index(args: argparse.Namespace) -> int:
    from grader.report import batches

    if not args.out.is_dir():
        print(f"error: {args.out} is not a folder\n  hint: grade batches with `grader grade ID FOLDER --out "
              f"{args.out}/ID` first", file=sys.stderr)
        return EXIT_USAGE
    page = batches.write_index(args.out)
    found = batches.find(args.out)
    for b in found:
        print(f"{b.folder:<20} {b.submissions:>4} submissions  mean {b.mean_percent:5.1f}%  "
              + ", ".join(f"{s}: {n}" for s, n in b.statuses))
    print(f"{len(found)} batch(es); open {page.resolve()}")
    return EXIT_OK


COMMANDS = {"grade": cmd_grade, "check": cmd_check, "release": cmd_release, "gradescope": cmd_gradescope, "validate": cmd_validate,
            "calibrate": cmd_calibrate, "schema": cmd_schema, "list": cmd_list, "index": cmd_index, "merge": cmd_merge, "similarity": cmd_similarity,
            "export": cmd_export}
