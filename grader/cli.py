"""The ``grader`` command: argument parsing and output only; the work happens in the pipeline.

Exit codes: 0 graded (or all visible checks passed, for ``check``), 1 grader error,
2 usage or rubric error, 3 a visible check did not pass (``check`` only).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_GRADER_ERROR, EXIT_USAGE, EXIT_CHECK_FAILED = 0, 1, 2, 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grader", description="Grade PyTorch deep-learning assignments.",
                                     epilog="exit codes: 0 graded, 1 grader error, 2 usage or rubric error, "
                                            "3 (check) a visible check did not pass")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    grade = sub.add_parser("grade", help="grade a batch of submissions and write reports")
    grade.add_argument("rubric", help="rubric file, or a bundled assignment id (see `grader list`)")
    grade.add_argument("submissions", nargs="+", type=Path,
                       help="batch folders (one entry per student) or single .ipynb/.py/.zip files")
    grade.add_argument("--out", type=Path, required=True, help="folder for the reports")
    _run_options(grade)
    grade.add_argument("--quiet", action="store_true", help="print only the summary line")

    check = sub.add_parser("check", help="self-check one submission: visible checks only")
    check.add_argument("submission", type=Path, help="your notebook, module or folder")
    which = check.add_mutually_exclusive_group(required=True)
    which.add_argument("--assignment", help="assignment id (see `grader list`)")
    which.add_argument("--rubric", help="rubric file")
    _run_options(check)

    validate = sub.add_parser("validate", help="check rubrics and compute their expectations from the reference")
    validate.add_argument("rubrics", nargs="+", help="rubric files or assignment ids")

    sub.add_parser("schema", help="print the rubric JSON Schema")
    sub.add_parser("list", help="list the assignments with their rubrics")
    return parser


def _run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", type=Path, help="data sets in torchvision layout (default: $GRADER_DATA)")
    p.add_argument("--no-synthetic", action="store_true", help="fail instead of grading on synthetic data")
    p.add_argument("--wall-seconds", type=float, help="override the rubric's limit for a whole run")
    p.add_argument("--cell-seconds", type=float, help="override the rubric's limit for one cell")
    p.add_argument("--keep-work", action="store_true", help="keep each run's working folder (debugging)")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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


def _load_rubric(ref: str) -> Any:
    from grader import rubric

    path = Path(ref)
    return rubric.load(path if path.suffix in (".yaml", ".yml") or path.exists() else rubric.find(ref))


def _settings(args: argparse.Namespace) -> Any:
    from grader.pipeline import Settings

    overrides = {k: v for k, v in (("wall_seconds", args.wall_seconds), ("cell_seconds", args.cell_seconds)) if v}
    return Settings(data_root=args.data_root, allow_synthetic=not args.no_synthetic,
                    limit_overrides=overrides, keep_work=args.keep_work)


def cmd_grade(args: argparse.Namespace) -> int:
    from grader import pipeline, report, submission
    from grader.errors import GraderError
    from grader.report.html import format_points

    rubric = _load_rubric(args.rubric)
    for path in args.submissions:
        if not path.exists():
            raise GraderError("no such file or folder", where=str(path), hint="pass a batch folder or submission files")
    subs = submission.discover(args.submissions)
    if not subs:
        raise GraderError("no submissions found", where=", ".join(map(str, args.submissions)),
                          hint="a batch folder holds one .ipynb, .py, .zip or folder per student")
    prep = pipeline.prepare(rubric, _settings(args))
    if prep.data.origin == "synthetic" and not args.quiet:
        print(f"data: synthetic {rubric.model.data.dataset} in {prep.data.path} (no real data in the data root)")

    def show(result: Any) -> None:
        if not args.quiet:
            score = f"{format_points(result.score)}/{format_points(result.max_score)}"
            print(f"  {result.student:<32} {result.status:<14} {score:>11}  ({result.seconds:.1f}s)")

    if not args.quiet:
        print(f"grading {len(subs)} submission(s) against {rubric.model.assignment}")
    results = pipeline.grade_batch(subs, prep, on_result=show)
    index = report.write_batch(results, rubric, args.out)
    broken = [r for r in results if r.status == "sandbox-error" or any(c.outcome == "grader-error" for c in r.checks)]
    print(f"graded {len(results)}: summary page {index.resolve()}")
    if broken:
        print(f"grader errors in {len(broken)} submission(s): {', '.join(r.student for r in broken)}", file=sys.stderr)
        return EXIT_GRADER_ERROR
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from grader import pipeline, submission
    from grader.errors import GraderError
    from grader.report.terminal import self_check_table

    rubric = _load_rubric(args.rubric or args.assignment)
    if not args.submission.exists():
        raise GraderError("no such file or folder", where=str(args.submission))
    result = pipeline.grade_one(submission.single(args.submission), pipeline.prepare(rubric, _settings(args)))
    print(self_check_table(result))
    visible = [c for c in result.checks if c.visibility == "visible"]
    if any(c.outcome == "grader-error" for c in visible) or result.status == "sandbox-error":
        return EXIT_GRADER_ERROR
    return EXIT_OK if all(c.outcome == "passed" for c in visible) else EXIT_CHECK_FAILED


def cmd_validate(args: argparse.Namespace) -> int:
    from grader import references

    for ref in args.rubrics:
        rubric = _load_rubric(ref)
        expected = references.expectations(rubric)
        print(f"{rubric.path}: ok ({len(rubric.model.checks)} checks, {rubric.model.max_points:g} points, "
              f"{len(expected)} expectation(s) from {rubric.reference_dir.name})")
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

    paths = sorted({p for d in rubric_dirs() if d.is_dir() for p in d.glob("*.yaml")})
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


COMMANDS = {"grade": cmd_grade, "check": cmd_check, "validate": cmd_validate, "schema": cmd_schema, "list": cmd_list}
