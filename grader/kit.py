"""The student kit: what a course hands students so they can self-check without the solutions.

``grader release RUBRIC --out DIR`` writes::

    DIR/kit.json            format, assignment, the full rubric's hash, the grader release, date
    DIR/rubric.yaml         the rubric with its visible checks only (and the targets they use)
    DIR/expected/<check>/   each visible check's expectation, computed from the reference here
                            (JSON and .npz arrays, as the cache holds them; never a pickle)
    DIR/calibration/rubric.yaml   the current calibrations of visible accuracy checks
    DIR/provided/           the files the handout provides (``submission.provided``)

and ``DIR.zip``, the same as one archive to upload to the LMS. Nothing of the reference's code,
no hidden check and no value only a hidden check needs is in it (``tests/test_kit.py`` greps).

``grader check my.ipynb --kit DIR`` (or ``--kit DIR.zip``) loads the kit as a rubric whose
expectations are the kit's own (``LoadedRubric.kit_dir``): the reference is never looked for, and
the calibrations are taken as they were current at release. ``grader release RUBRIC --verify DIR``
tells the instructor whether a kit still matches the rubric.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

import grader
from grader import calibration, checks, references, rubric as rubric_mod, submission
from grader.errors import GraderError
from grader.rubric import LoadedRubric

KIT_FORMAT = 1
MANIFEST = "kit.json"
RUBRIC = "rubric.yaml"
EXPECTED = "expected"
PROVIDED = "provided"


def release(rubric: LoadedRubric, out: Path) -> list[str]:
    """Write the kit of ``rubric`` into ``out`` (replacing what a previous release left there) and
    ``out.zip``. Returns notes for the instructor (a visible accuracy check without a current
    calibration, which students will see skipped)."""
    if out.exists() and not (out / MANIFEST).is_file() and any(out.iterdir()):
        raise GraderError("the folder exists and is not a kit", where=str(out),
                          hint="pass a new or empty folder, or the folder of an earlier release")
    visible = [c for c in rubric.model.checks if c.visibility == "visible"]
    if not visible:
        raise GraderError("the rubric has no visible check: a kit would have nothing to check", where=str(rubric.path),
                          hint="make the checks students may run `visibility: visible`")
    expected = references.expectations(rubric)
    staging = Path(tempfile.mkdtemp(prefix=".kit-", dir=out.parent if out.parent.exists() else None))
    try:
        (staging / RUBRIC).write_text(_visible_rubric(rubric, visible), encoding="utf-8")
        for spec in visible:
            if spec.id in expected:
                references.save_expectation(staging / EXPECTED / spec.id, expected[spec.id])
        _copy_provided(rubric, staging / PROVIDED)
        notes = _copy_calibrations(rubric, visible, staging)
        manifest = {"kit_format": KIT_FORMAT, "assignment": rubric.model.assignment, "title": rubric.model.title,
                    "rubric_hash": rubric.text_hash, "grader": grader.__version__,
                    "hidden_checks": len(rubric.model.checks) - len(visible),
                    "released": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    archive = shutil.make_archive(str(out), "zip", root_dir=out)
    return notes + [f"archive {archive}"]


def load(path: Path) -> LoadedRubric:
    """The kit at ``path`` (its folder or its ``.zip``) as a rubric ``grader check`` can use."""
    folder = _unpacked(path)
    manifest = _manifest(folder)
    if manifest.get("grader") != grader.__version__:
        raise GraderError(f"this kit was released for grader {manifest.get('grader')}; this is grader "
                          f"{grader.__version__}", where=str(path),
                          hint=f"install the release the kit names (pip install grader=={manifest.get('grader')}), "
                               "or ask course staff for a kit of this one")
    loaded = rubric_mod.load(folder / RUBRIC)
    loaded.kit_dir = folder
    return loaded


def hidden_checks(rubric: LoadedRubric) -> int:
    """How many checks the kit leaves out (graded after submission), as its manifest says."""
    assert rubric.kit_dir is not None
    return int(_manifest(rubric.kit_dir).get("hidden_checks", 0))


def expectations(rubric: LoadedRubric) -> dict[str, Any]:
    """The kit's expectations by check id (``references.expectations`` for a kit)."""
    assert rubric.kit_dir is not None
    found = {}
    for spec in rubric.model.checks:
        if not checks.get(spec.kind).needs_reference(spec):
            continue
        obs = references.load_expectation(rubric.kit_dir / EXPECTED / spec.id, spec.kind)
        if obs is None:
            raise GraderError(f"the kit has no expectation for check {spec.id!r}", where=str(rubric.kit_dir),
                              hint="the kit is damaged: download it again, or ask course staff for a new one")
        found[spec.id] = obs
    return found


def verify(rubric: LoadedRubric, path: Path) -> list[str]:
    """Why the kit at ``path`` does not match ``rubric`` (empty when it does)."""
    manifest = _manifest(_unpacked(path))
    problems = []
    if manifest.get("assignment") != rubric.model.assignment:
        problems.append(f"the kit is for assignment {manifest.get('assignment')!r}, not {rubric.model.assignment!r}")
    elif manifest.get("rubric_hash") != rubric.text_hash:
        problems.append(f"the rubric changed since the kit was released ({manifest.get('released')}): students "
                        "would check against old expectations")
    if manifest.get("grader") != grader.__version__:
        problems.append(f"the kit was released by grader {manifest.get('grader')}, this is {grader.__version__}")
    return problems


def _visible_rubric(rubric: LoadedRubric, visible: list[Any]) -> str:
    """The rubric as YAML with the visible checks only: the targets they use, requirements on
    hidden checks dropped (a student cannot run those), the reference replaced by the provided files."""
    hidden = {c.id for c in rubric.model.checks if c.visibility == "hidden"}
    used = {key for spec in visible for key in spec.target_refs()}
    document = rubric.model.model_dump(mode="json", exclude={"feedback"})
    document["reference"] = PROVIDED
    document["targets"] = {k: v for k, v in document["targets"].items() if k in used}
    for budget in document["profiles"].values():  # a hidden accuracy check's own epochs go too
        budget["check_epochs"] = {k: v for k, v in budget["check_epochs"].items() if k not in hidden}
    document["checks"] = [spec.model_dump(mode="json") | {"requires": [r for r in spec.requires if r not in hidden]}
                          for spec in visible]
    header = (f"# The student kit of {rubric.model.assignment}: its visible checks, written by `grader release`.\n"
              "# Run `grader check YOUR_NOTEBOOK --kit THIS_FOLDER`; editing this file changes nothing you are\n"
              "# graded on.\n")
    return header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def _copy_provided(rubric: LoadedRubric, dest: Path) -> None:
    dest.mkdir(parents=True)
    for name in rubric.model.submission.provided:
        source = rubric.reference_dir / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns(*submission.IGNORED))
        else:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def _copy_calibrations(rubric: LoadedRubric, visible: list[Any], staging: Path) -> list[str]:
    """The calibration runs of visible accuracy checks that are current now, without the others'."""
    from grader import profiles

    wanted = {c.id for c in visible if c.kind == "accuracy" and getattr(c, "threshold", None) == "calibrated"}
    if not wanted:
        return []
    runs, current = [], set()
    for run in calibration.read(rubric).runs:
        kept = {i: s for i, s in run.checks.items() if i in wanted and not profiles.why_stale_on_file(rubric, i, run)}
        if kept:
            runs.append(run.model_copy(update={"checks": kept}))
            current |= set(kept)
    path = staging / calibration.FOLDER / RUBRIC
    path.parent.mkdir(parents=True)
    document = calibration.CalibrationFile(assignment=rubric.model.assignment, runs=runs)
    path.write_text(calibration.HEADER + yaml.safe_dump(document.model_dump(), sort_keys=False), encoding="utf-8")
    return [f"visible accuracy check {i!r} has no current calibration: students will see it skipped "
            f"(run `{calibration.command(rubric, 'quick')}`, then release again)" for i in sorted(wanted - current)]


def _unpacked(path: Path) -> Path:
    """The kit's folder: ``path`` itself, or a private copy of an archive's content."""
    if path.is_dir():
        return path
    if path.is_file() and path.suffix == ".zip":
        folder = Path(tempfile.mkdtemp(prefix="grader-kit-"))
        try:
            submission.extract_zip(path, folder)
        except submission.Rejected as exc:
            raise GraderError(f"the kit archive cannot be unpacked: {exc}", where=str(path),
                              hint="download the kit again") from None
        return folder
    raise GraderError("no kit here (a kit is a folder or a .zip written by `grader release`)", where=str(path),
                      hint="pass the kit your course handed out")


def _manifest(folder: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GraderError(f"not a kit: no {MANIFEST} in it", where=str(folder),
                          hint="pass the folder or archive `grader release` wrote") from None
    except (OSError, ValueError) as exc:
        raise GraderError(f"the kit's {MANIFEST} cannot be read ({exc})", where=str(folder),
                          hint="download the kit again") from None
    if not isinstance(manifest, dict) or manifest.get("kit_format") != KIT_FORMAT:
        found = manifest.get("kit_format") if isinstance(manifest, dict) else "?"
        raise GraderError(f"this kit has another format ({found}; this grader reads format {KIT_FORMAT})",
                          where=str(folder),
                          hint="ask course staff for a kit of this grader release")
    return manifest
