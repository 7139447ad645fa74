"""Profiles: how much data and how many epochs the accuracy checks train with.

* ``full``: the handout's budget: all training and test images, each check's own ``epochs``.
* ``quick``: a fixed random subset of the images and fewer epochs, for students' CPU self-checks,
  tests and demos. By default 2,000 training images, 500 test images and at most 2 epochs.

A rubric may set either profile's budget under ``profiles:``; what it writes is the whole budget
(a field left out means all images / the check's epochs). A profile only ever lowers a check's
own ``train_subset``, ``test_subset`` and ``epochs``: it never touches what the student chose or
the handout fixed (learning rate, momentum, optimizer, batch size), since a rate tuned for a
shorter run made a correct student's SGD with momentum diverge. Each profile has its own
calibration, made on that same budget. ``changes`` says in words what the harness changed for a
check (its budget, the data handed in), and the check's message says it too.

``--profile auto`` (the default of every command) picks ``quick`` on synthetic data and ``full``
on real data: synthetic sets are small stand-ins where only a short, cheap run makes sense, and
grading the real thing should follow the handout unless someone asks for less.

``plan`` prepares one run: the checks as the sandbox receives them (profile applied, accuracy
checks told where the data is) and, for each accuracy check, what the host knows to judge it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from grader.errors import GraderError

if TYPE_CHECKING:
    from grader.checks.accuracy import AccuracySpec, AccuracyTruth
    from grader.checks.base import CheckSpec
    from grader.data import DataRoot
    from grader.rubric import LoadedRubric, Rubric

ProfileName = Literal["quick", "full"]
CHOICES = ("auto", "quick", "full")


class Profile(BaseModel):
    """A training budget for accuracy checks (and any check that reads the plan's ``profile``)."""

    model_config = ConfigDict(extra="forbid")
    train_subset: int | None = Field(None, ge=1, description="training images at most (default: all)")
    test_subset: int | None = Field(None, ge=1, description="test images at most (default: all)")
    epochs: int | None = Field(None, ge=1, description="epochs at most (default: each check's own)")
    check_epochs: dict[str, Annotated[int, Field(ge=1)]] = Field(
        {}, description="epochs of named accuracy checks on this profile, instead of `epochs`: over a small subset a "
                        "network at the handout's rate may need more passes than the handout's epochs to settle "
                        "(still far fewer images seen than the handout's whole run)")


DEFAULTS: dict[str, Profile] = {"full": Profile(), "quick": Profile(train_subset=2000, test_subset=500, epochs=2)}


def choose(requested: str, origin: str) -> str:
    """The profile to use: ``requested``, or for ``auto`` quick on synthetic data, full on real data."""
    if requested not in CHOICES:
        raise GraderError(f"unknown profile {requested!r}", where="--profile", hint=f"one of {', '.join(CHOICES)}")
    if requested != "auto":
        return requested
    return "quick" if origin == "synthetic" else "full"


def budget(rubric: "Rubric", name: str) -> Profile:
    """Profile ``name`` as the rubric sets it, else the default."""
    return rubric.profiles.get(name, DEFAULTS[name])  # type: ignore[call-overload]


def _lowest(own: int | None, cap: int | None) -> int | None:
    return cap if own is None else own if cap is None else min(own, cap)


def planned_spec(rubric: "LoadedRubric", spec: "AccuracySpec", name: str, data: "DataRoot",
                 device: str | None = None) -> "AccuracySpec":
    """``spec`` with the profile's budget applied and the data it reads (inside the sandbox too);
    ``device`` pins where it trains (default: CUDA when visible, else the CPU)."""
    from grader.checks.accuracy import PlannedData

    if data.path is None:
        raise GraderError(f"accuracy check {spec.id!r} needs a data set, and the rubric names none",
                          where=f"{rubric.path.name}: data.dataset", hint="set data.dataset (mnist, fashion-mnist, cifar10)")
    profile = budget(rubric.model, name)
    return spec.model_copy(update={
        "train_subset": _lowest(spec.train_subset, profile.train_subset),
        "test_subset": _lowest(spec.test_subset, profile.test_subset),
        "epochs": profile.check_epochs.get(spec.id) or _lowest(spec.epochs, profile.epochs),
        "run": PlannedData(profile=name, dataset=rubric.model.data.dataset, root=str(data.path.resolve()),
                           subset_seed=rubric.model.seed, train_seed=rubric.model.seed, device=device,
                           # the student's run trains the first of several alone: the host then scores it
                           # and runs the others only where it falls short (grader.pipeline, _every_draw)
                           trained_draws=1 if spec.trainer == "student" and spec.draws > 1 else None)})


def changes(original: "AccuracySpec", planned: "AccuracySpec") -> str:
    """What the harness changed in what the student's code gets for one accuracy check, in words."""
    said = [f"profile {planned.run.profile if planned.run else '?'}"]
    if planned.epochs != original.epochs:
        said.append(f"{planned.epochs} epoch(s) instead of the handout's {original.epochs}")
    if planned.train_subset != original.train_subset:
        said.append(f"at most {planned.train_subset:,} training images")
    if planned.test_subset != original.test_subset:
        said.append(f"scored on at most {planned.test_subset:,} images")
    if planned.trainer == "student":
        replaced = ", ".join(planned.data_globals) or "the data arguments"
        said.append(f"the harness's loaders (batch size {planned.batch_size}) in place of {replaced}")
    return "; ".join(said)


def on_device(expected: dict[str, Any], device: str) -> dict[str, Any]:
    """The batch's expectations for a run given ``device`` (``grader.executors.slots.device_kind``):
    each accuracy check's truth then picks that device's calibration."""
    from grader.checks.accuracy import AccuracyTruth

    return {check: dataclasses.replace(truth, device=device) if isinstance(truth, AccuracyTruth) else truth
            for check, truth in expected.items()}


def truth_for(rubric: "LoadedRubric", planned: "AccuracySpec", name: str, data: "DataRoot") -> "AccuracyTruth":
    """The images the check is scored on, their labels, and the calibrations that apply to them."""
    from grader import calibration
    from grader.checks.accuracy import AccuracyTruth
    from grader.data import evaluation

    scored = evaluation.scored_images(rubric.model.data.dataset, data.path, data.origin,  # type: ignore[arg-type]
                                      planned.test_subset, rubric.model.seed)
    labels = scored.labels
    current, stale = {}, {}
    if planned.threshold == "calibrated":
        for run in calibration.read(rubric).runs:
            stats = run.checks.get(planned.id)
            if run.profile != name or run.data != data.origin or stats is None:
                continue
            why = why_stale(rubric, planned, run, len(labels))
            if why:
                stale[run.device] = why
            else:
                current[run.device] = stats
    original = next((c for c in rubric.model.checks if c.id == planned.id), planned)
    return AccuracyTruth(labels=labels, classes=scored.classes, images=scored.images, scored_on=scored.description,
                         profile=name, data=data.origin, calibrations=current,
                         stale=stale, calibrate_hint=calibration.hint(rubric, name),
                         changes=changes(original, planned))  # type: ignore[arg-type]


def why_stale(rubric: "LoadedRubric", planned: "AccuracySpec", run: Any, scored_images: int | None = None) -> str:
    """Why ``run``'s calibration of the planned check no longer applies here, or "": the check, its
    targets, the data set, the reference or the scored images changed since (``scored_images``
    when known), or it was made under another numeric configuration."""
    from grader import calibration, numerics

    stats = run.checks[planned.id]
    named = f"the calibration of profile {run.profile} on {run.device} ({run.date[:10]})"
    # A student kit has no reference to fingerprint: its calibrations were current when it was released.
    wanted = stats.fingerprint if rubric.kit_dir else calibration.fingerprint(rubric, planned, reference_hash(rubric))
    if stats.fingerprint != wanted or scored_images not in (None, stats.test_images):
        return f"{named} is out of date: the check, its targets, the data set or the reference changed since"
    if differing := numerics.differences(run.numerics, numerics.describe(run.device)):
        return (f"{named} was made under another numeric configuration ({'; '.join(differing)}), so its accuracies "
                "do not apply here")
    return ""


def why_stale_on_file(rubric: "LoadedRubric", check_id: str, run: Any) -> str:
    """``why_stale`` for a check of a calibration run on file, as ``grader validate`` lists them: a
    check no longer in the rubric, or no longer calibrated, makes it stale too."""
    from pathlib import Path

    from grader.checks.accuracy import AccuracySpec
    from grader.data import DataRoot

    spec = next((c for c in rubric.model.checks if c.id == check_id), None)
    if not isinstance(spec, AccuracySpec) or spec.threshold != "calibrated":
        return "the rubric has no calibrated accuracy check of that id any more"
    # the root only fills the planned spec's `run`, which no fingerprint reads
    planned = planned_spec(rubric, spec, run.profile, DataRoot(Path("."), run.data, rubric.model.data.dataset))
    return why_stale(rubric, planned, run)


@lru_cache(maxsize=16)
def _hash_of_folder(folder: str) -> str:
    from pathlib import Path

    from grader.submission import content_hash

    return content_hash(Path(folder))[:16]


def reference_hash(rubric: "LoadedRubric") -> str:
    """The reference's content hash (computed once per process)."""
    return _hash_of_folder(str(rubric.reference_dir))


@dataclass
class Plan:
    """One run's plan: the profile, the checks as the sandbox gets them, the host's truths by check id."""

    profile: dict[str, Any]
    specs: list["CheckSpec"]  # every check, an accuracy check with the profile's budget and data applied
    expected: dict[str, Any]  # by check id: an AccuracyTruth, a notebook check's StandIns, a HarnessSeed, a host_truth

    @cached_property
    def checks(self) -> list[dict[str, Any]]:
        """The checks as a job file carries them (``CheckSpec.as_job``), dumped once per batch."""
        return [spec.as_job() for spec in self.specs]

    @property
    def trains(self) -> bool:
        """Whether any check trains (an accuracy check): then the profile and numerics apply."""
        from grader.checks.accuracy import AccuracyTruth

        return any(isinstance(truth, AccuracyTruth) for truth in self.expected.values())


def plan(rubric: "LoadedRubric", data: "DataRoot", requested: str = "auto") -> Plan:
    """Apply the chosen profile: accuracy checks get its budget and the data; the rest go as they are.
    The host's truths (``Plan.expected``) come with it: an accuracy check's labels and calibrations,
    a notebook check's stand-in sizes, the seed a check's harness data is made from, what a kind
    reads of the data files itself (``CheckKind.host_truth``)."""
    from grader import checks
    from grader.checks.accuracy import AccuracySpec
    from grader.checks.base import HarnessSeed
    from grader.checks.notebook import NotebookSpec, StandIns
    from grader.data import synthetic

    name = choose(requested, data.origin)
    specs, expected = [], {}
    for spec in rubric.model.checks:
        if isinstance(spec, NotebookSpec) and data.origin == "synthetic":
            # a failing line that needs the real size is the stand-in's doing (checks.notebook)
            expected[spec.id] = StandIns(stand_ins=synthetic.stand_ins(data.dataset))
        if checks.get(spec.kind).made_from_seed(spec):  # the probe made its data from the rubric's seed
            expected[spec.id] = HarnessSeed(seed=rubric.model.seed)
        if (truth := checks.get(spec.kind).host_truth(spec, data)) is not None:  # what the data files say
            expected[spec.id] = truth
        if isinstance(spec, AccuracySpec):
            planned = planned_spec(rubric, spec, name, data)
            expected[spec.id] = truth_for(rubric, planned, name, data)
            spec = planned
        specs.append(spec)
    return Plan(profile={"name": name, **budget(rubric.model, name).model_dump()}, specs=specs, expected=expected)
