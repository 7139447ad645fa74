"""``training``: the contract of a student's training function, on a tiny budget.

The probe builds a small network itself (so a broken student model does not fail this check
too), calls the function with the rubric's arguments and records what comes back: the return
structure, the per-epoch values and whether the weights changed at all.

With ``data``, the harness also makes the data (``contracts_training_data``): a few dozen samples
passed as ``$train_data`` / ``$validation_data`` or put in place of the student's globals of the
names the rubric lists, while the function runs. A forward hook on the network then sees every
training step and validation pass, which makes the loop's behaviour checkable in seconds:

* ``best-model`` in ``returns``: the returned model, state dict or parameter list holds the
  parameters of the epoch with the lowest validation loss. The data makes the validation loss
  rise in the last epochs, so a live ``state_dict()`` reference (which ends up holding the final
  weights) fails.
* ``train_eval_modes``: training steps run in train mode, validation in eval mode.
* ``validation_without_grad``: validation runs with gradients off (``torch.no_grad()``).
* ``validation_loss_matches``: the returned validation losses are the cross-entropy the harness
  recomputes, on the host, on the validation data for the parameters each pass evaluated (the
  record carries those parameters, never a number to compare with: a ``HarnessSeed``), in one of the
  ``validation_loss_readings``. mlp-checkpoint's handout asks for the "loss averaged/accumulated
  over all minibatches", so by default four readings pass and the message names the one found:
  the mean per sample, the mean of the batch losses, and the two sums ("accumulated": of the
  batch losses, or of every sample's loss when the criterion sums). A rubric can list fewer. The
  readings are different numbers when the validation data ends in a smaller batch
  (``data.validation_samples`` not a multiple of ``data.batch_size``, as by default).
  ``validation_loss_is_sample_mean: true``, the older spelling, means ``validation_loss_matches``
  with the one reading ``sample-mean``.

The rubric maps the call with ``args`` / ``kwargs`` and says what each returned value means.

A handout that leaves the training function's interface open gets loops of every shape, and the
check reads them as a careful TA does:

* **Arguments by role.** ``args`` follow the target's ``signature`` (the rubric's roles, in its
  order). A function that cannot take them that way gets each by the role its parameter's name
  plays (``train_modelcv(dataloader_cvtrain, dataloader_cvtest, model, criterion, optimizer,
  scheduler, num_epochs, device)``, ``train_ch6(net, train_iter, test_iter, num_epochs, lr,
  device)``; ``grader.targets.role_plan``), plus what the harness can give honestly: a scheduler
  over the given optimizer that keeps its rate, the device the check runs on. A loop that reads
  its loaders from a global dict (``dataloaders['train']``) gets the harness data under the same
  keys (``contracts_training_data.role_globals``).
* **Returned values by what they are.** When the number returned differs from ``returns`` (six
  values, or ``(model, history)`` with the losses in a dict), each role is found among the values:
  the best model is the one value that reads as a model, state dict or parameter list; training
  losses, validation losses and validation accuracies are the per-epoch series that equal the
  harness's recomputation in one of their readings; a role none matches is the one per-epoch series
  left, and with several left a person decides (``needs-review``). Per-epoch series may be lists,
  tuples, numpy arrays or 1-d tensors.
* Only checks that need returned values have return rows: a modes check (``returns`` all ``any``)
  does not fail on how many values come back. With ``returns_optional`` (the handout asks for no
  returns), a function returning ``None`` is graded on what it does.
"""

from __future__ import annotations

import math
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from grader.checks import register
from grader.checks.base import CheckKind, CheckSpec, HarnessSeed, Observation, ProbeContext, Verdict
from grader.checks.capture import JUDGE_ONLY
from grader.checks.common import is_plain_tensor, type_name
from grader.checks.contracts_training_data import (Recomputed, flat_returned, in_globals, role_globals,
                                                   training_loss_readings)
from grader.checks.contracts_training_loop import (LOSS_ATOL, LOSS_READINGS, LOSS_RTOL, PLACEHOLDERS, LoopRecord,
                                                   LossReading, call_session, loop_requirements, recomputed,
                                                   recomputed_by_reading)
from grader.errors import GraderError
from grader.targets import HARNESS_ROLES, by_role, call_by_role, can_build, role_plan

Role = Literal["per-epoch", "training-losses", "validation-losses", "validation-accuracies", "best-model", "model",
               "any"]
PER_EPOCH = ("per-epoch", "training-losses", "validation-losses", "validation-accuracies")
RECOMPUTED = ("validation-losses", "training-losses", "validation-accuracies")  # recognisable by their values


class NetworkFixture(BaseModel):
    """A network the harness builds for the call: ``linear-classifier`` is Flatten → Linear."""

    model_config = ConfigDict(extra="forbid")
    fixture: Literal["linear-classifier"] = "linear-classifier"
    input: list[int] = Field(description="shape of one input sample, e.g. [1, 28, 28]")
    classes: int


class HarnessData(BaseModel):
    """Tiny data the harness makes for the call instead of the student's own."""

    model_config = ConfigDict(extra="forbid")
    labels: Literal["index", "one-hot"] = Field("index", description="how targets are written")
    batch_size: int = Field(8, ge=1)
    train_samples: int = Field(64, ge=2)
    validation_samples: int = Field(20, ge=2, description="best not a multiple of batch_size: a smaller last "
                                                          "batch shows a loss averaged per batch")
    train_globals: list[str] = Field([], description="the student's globals (loaders, data sets) the training "
                                                     "data replaces while the function runs")
    validation_globals: list[str] = Field([], description="the globals the validation data replaces")


class TrainingSpec(CheckSpec):
    kind: Literal["training"]
    target: str
    network: NetworkFixture
    epochs: int = Field(1, ge=1, le=50, description="the tiny budget; `$epochs` in args stands for it")
    args: list[Any] = Field(description="positional arguments; `$network`, `$epochs`, `$train_data`, "
                                        "`$validation_data`, `$optimizer`, `$loss`, `$device` are replaced")
    kwargs: dict[str, Any] = Field({}, description="keyword arguments, with the same placeholders")
    returns: list[Role] = Field(
        description="the returned tuple, element by element: per-epoch numbers (training-losses, "
                    "validation-losses and validation-accuracies are per-epoch too), the best model, a model, "
                    "anything; a function returning another number of values has them read by what they are")
    returns_optional: bool = Field(False, description="the handout asks the function to return nothing: one "
                                                      "returning None is graded on what it does")
    data: HarnessData | None = Field(None, description="harness-made tiny data instead of the student's")
    lr: float = Field(0.05, gt=0, description="learning rate of the `$optimizer` the harness passes (SGD)")
    train_eval_modes: bool = Field(False, description="training steps in train mode, validation in eval mode",
                                   json_schema_extra=JUDGE_ONLY)
    validation_without_grad: bool = Field(False, description="validation forwards run with gradients off",
                                          json_schema_extra=JUDGE_ONLY)
    validation_loss_matches: bool = Field(
        False, description="returned validation losses are the harness's recomputed validation loss, in one of "
                           "validation_loss_readings", json_schema_extra=JUDGE_ONLY)
    validation_loss_readings: list[LossReading] = Field(
        default_factory=lambda: list(LOSS_READINGS), min_length=1,
        description="accepted readings of the validation loss: the mean per sample (sample-mean), the mean of the "
                    "batch losses (batch-mean), the sum of the batch losses (batch-sum), the sum over the samples "
                    "(sample-sum)", json_schema_extra=JUDGE_ONLY)

    @model_validator(mode="before")
    @classmethod
    def _older_spelling(cls, entry: Any) -> Any:
        """``validation_loss_is_sample_mean: true`` (rubrics written before the readings) keeps its
        meaning: the losses must be the mean per sample."""
        if not isinstance(entry, dict) or "validation_loss_is_sample_mean" not in entry:
            return entry
        entry = dict(entry)
        if {"validation_loss_matches", "validation_loss_readings"} & entry.keys():
            raise ValueError("validation_loss_is_sample_mean is the older spelling of validation_loss_matches with "
                             "validation_loss_readings: [sample-mean]; give one or the other")
        if entry.pop("validation_loss_is_sample_mean"):
            entry |= {"validation_loss_matches": True, "validation_loss_readings": ["sample-mean"]}
        return entry

    @model_validator(mode="after")
    def _contracts_need_harness_data(self) -> "TrainingSpec":
        unknown = sorted({a for a in [*self.args, *self.kwargs.values()]
                          if isinstance(a, str) and a.startswith("$")} - PLACEHOLDERS)
        if unknown:
            raise ValueError(f"unknown placeholder {', '.join(unknown)}; known: {', '.join(sorted(PLACEHOLDERS))}")
        wants_loop = ("best-model" in self.returns or self.train_eval_modes or self.validation_without_grad
                      or self.validation_loss_matches or self.uses("$train_data", "$validation_data"))
        if wants_loop and self.data is None:
            raise ValueError("best-model, the mode and gradient contracts and $train_data / $validation_data "
                             "need `data` (the harness must recognise the validation pass)")
        if self.data is not None:
            for split in ("train", "validation"):
                if not self.uses(f"${split}_data") and not getattr(self.data, f"{split}_globals"):
                    raise ValueError(f"`data` needs a way in for the {split} data: ${split}_data in args or "
                                     f"kwargs, or data.{split}_globals")
        if "best-model" in self.returns and self.epochs < 2:
            raise ValueError("best-model needs at least 2 epochs (the best must differ from the last)")
        if self.validation_loss_matches and "validation-losses" not in self.returns:
            raise ValueError("validation_loss_matches needs a `validation-losses` element in `returns`")
        # compared with the default, not with the fields set: the plan sends the spec to the sandbox
        # dumped whole, default readings included
        default = type(self).model_fields["validation_loss_readings"].get_default(call_default_factory=True)
        if self.validation_loss_readings != default and not self.validation_loss_matches:
            raise ValueError("validation_loss_readings has no effect without validation_loss_matches: true")
        return self

    def uses(self, *placeholders: str) -> bool:
        """Whether ``args`` or ``kwargs`` pass any of these placeholders."""
        return any(a in placeholders for a in [*self.args, *self.kwargs.values()] if isinstance(a, str))


class Element(BaseModel):
    """One returned value. ``values``: its first 50 numbers (all of a per-epoch list)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    type: str
    length: int | None
    numeric: bool
    finite: bool
    values: list[float]
    is_module: bool = False
    label: str = Field("", description="where it was returned, e.g. value 2['val'] (values read by what they are)")


class TrainingObservation(Observation):
    return_type: str
    elements: list[Element]
    weights_changed: bool
    seconds: float
    loop: LoopRecord | None = None
    read_by: Literal["position", "content", "none"] = "position"  # how `elements` line up with `returns`
    called: str = ""  # how the function was called when not with the rubric's arguments in order
    training_loss_readings: dict[str, list[float]] = {}  # the harness's training loss per epoch, by reading


def build_fixture(spec: NetworkFixture) -> Any:
    import torch

    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(math.prod(spec.input), spec.classes))


def _as_number(value: Any) -> float | None:
    if type(value) in (int, float):
        return float(value)
    if is_plain_tensor(value) and value.numel() == 1:
        return float(value.detach().reshape(()))
    try:
        import numpy as np

        if isinstance(value, np.number) or (type(value) is np.ndarray and value.size == 1 and value.dtype.kind in "fiu"):
            return float(value.reshape(()) if type(value) is np.ndarray else value)
    except ImportError:  # pragma: no cover
        pass
    return None


def _series(value: Any) -> list[Any] | None:
    """The items of a returned sequence of per-epoch numbers: a list or tuple, a 1-d numpy array
    or a 1-d tensor; None for anything else."""
    if type(value) in (list, tuple):
        return list(value)
    import numpy as np

    if type(value) is np.ndarray and value.ndim == 1:
        return list(value)
    if is_plain_tensor(value) and value.dim() == 1:
        return list(value.detach().cpu())
    return None


def _describe(value: Any, label: str = "") -> Element:
    items = _series(value)
    if items is not None:
        numbers = [_as_number(v) for v in items]
        numeric = all(n is not None for n in numbers)
        finite = numeric and all(math.isfinite(n) for n in numbers)  # type: ignore[arg-type]
        values = [n for n in numbers[:50] if n is not None] if numeric else []
        return Element(type=type_name(value), length=len(items), numeric=numeric, finite=finite, values=values,
                       label=label)
    import torch

    return Element(type=type_name(value), length=None, numeric=False, finite=False, values=[],
                   is_module=isinstance(value, torch.nn.Module), label=label)


def _split(result: Any, expected_parts: int) -> list[Any]:
    """The returned values: ``return a, b`` gives a tuple; a list of lists counts too, but a single
    list of numbers is one value even when its length happens to equal ``expected_parts``."""
    if expected_parts == 1:
        return [result]
    if type(result) is tuple:
        return list(result)
    if type(result) is list and not all(_as_number(v) is not None for v in result):
        return list(result)
    return [result]


def _candidates(result: Any) -> list[tuple[str, Any]]:
    """Every returned value with where it was returned, for reading them by what they are: the
    values of a tuple (or a list of non-numbers), and one level into a dict of sequences (a
    ``history = {'train': [...], 'val': [...]}``); a state dict stays one value."""
    parts = _split(result, 2)
    out = []
    for n, part in enumerate(parts, start=1):
        where = f"value {n}" if len(parts) > 1 else "the returned value"
        if type(part) is dict and part and all(_series(v) is not None for v in part.values()):
            out += [(f"{where}[{key!r}]", value) for key, value in part.items()]
        else:
            out.append((where, part))
    return out


def _best_candidate(values: list[tuple[str, Any]], like: Any) -> tuple[Any, str]:
    """The one returned value that reads as the network's parameters (a model, a state dict, a
    list of its tensors), and its label; (None, why) when none or several different ones do."""
    readable = []
    for label, value in values:
        flat, problem = flat_returned(value, like) if _series(value) is None or type(value) in (list, tuple) \
            else (None, "a series")
        if flat is not None and not problem:
            readable.append((label, value, flat))
    if not readable:
        return None, f"none of the {len(values)} returned values is a model, a state dict or a list of its tensors"
    if any(flat.shape != readable[0][2].shape or (flat != readable[0][2]).any() for _, _, flat in readable[1:]):
        return None, f"several returned values hold different parameters: {', '.join(r[0] for r in readable)}"
    return readable[0][1], readable[0][0]


def _call(fn: Any, signature: Any, args: list[Any], kwargs: dict[str, Any], session: Any) -> tuple[list[Any], dict[str, Any], str]:
    """The arguments the function is called with, and how (for messages): the rubric's, in their
    order or reordered by exact parameter names (``targets.by_role``); else by the role each
    parameter's name plays, with the harness roles it takes (``targets.call_by_role``)."""
    import torch

    if kwargs or not signature:
        return args, kwargs, ""
    reordered = by_role(fn, signature, args)
    if reordered is not None:
        return reordered, {}, "with the arguments in its own order"
    if can_build(fn, args):
        return args, {}, ""
    plan = role_plan(fn, signature) or {}
    extra: dict[str, Any] = {}
    if "scheduler" in plan.values():  # keeps the rate of the optimizer it was given
        optimizer = next((a for a in args if isinstance(a, torch.optim.Optimizer)), None) \
            or session.argument("$optimizer")
        extra["scheduler"] = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)
    if "device" in plan.values():
        extra["device"] = session.argument("$device")
    called = call_by_role(fn, signature, args, {k: v for k, v in extra.items() if k in HARNESS_ROLES})
    if called is None:
        return args, {}, ""
    positional, keywords = called
    taken = ", ".join([*(f"#{n}" for n in range(len(positional))), *keywords])
    return positional, keywords, f"by the roles its parameters name ({taken})"


@register("training")
class Training(CheckKind):
    Spec = TrainingSpec
    Observation = TrainingObservation

    @staticmethod
    def made_from_seed(spec: TrainingSpec) -> bool:
        return spec.data is not None  # the harness's data (contracts_training_data.make_split)

    @staticmethod
    def probe(spec: TrainingSpec, ctx: ProbeContext) -> TrainingObservation:
        import torch

        fn = ctx.resolve(spec.target)
        network = build_fixture(spec.network)
        fresh = build_fixture(spec.network)
        before = [p.detach().clone() for p in network.parameters()]
        name = ctx.found[spec.target].found_as
        start = time.monotonic()
        with call_session(spec, fn, network, fresh, ctx.seed) as session:
            args = [session.argument(a) for a in spec.args]
            kwargs = {key: session.argument(value) for key, value in spec.kwargs.items()}
            positional, keywords, called = _call(fn, ctx.targets[spec.target].signature, args, kwargs, session)
            given = [*positional, *keywords.values()]
            data_given = any(v is d for v in given for d in session.data.values())
            replacements = role_globals(fn, session.data) if session.data and not data_given else {}
            handle = network.register_forward_hook(session.recorder.after_forward)
            try:
                with in_globals(fn, replacements) as replaced:
                    session.data_in_globals = [*session.data_in_globals, *replaced]
                    with ctx.student_code(f"calling {name} with a small network for {spec.epochs} epoch(s)"):
                        result = fn(*positional, **keywords)
            finally:
                handle.remove()
        seconds = time.monotonic() - start
        changed = any(not torch.equal(b, p.detach().cpu()) for b, p in zip(before, network.parameters()))
        parts = _split(result, len(spec.returns))
        needed = [role for role in spec.returns if role != "any"]
        best, best_problem = None, ""
        if result is None and spec.returns_optional:
            read_by, elements = "none", []
        elif len(parts) == len(spec.returns) or not needed:
            read_by, elements = "position", [_describe(p) for p in parts]
            best = next((p for role, p in zip(spec.returns, parts) if role == "best-model"), None)
        else:
            values = _candidates(result)
            read_by, elements = "content", [_describe(v, label) for label, v in values]
            if "best-model" in spec.returns:
                best, best_problem = _best_candidate(values, fresh)
                best_problem = "" if best is not None else best_problem
        loop = None
        if spec.data is not None:
            loop = session.record(best)
            if best_problem:
                loop = loop.model_copy(update={"returned_parameters_problem": best_problem})
        return TrainingObservation(return_type=type_name(result), elements=elements, weights_changed=changed,
                                   seconds=round(seconds, 3), loop=loop, read_by=read_by, called=called,
                                   training_loss_readings=training_loss_readings(session.recorder.step_losses)
                                   if read_by == "content" else {})

    @staticmethod
    def judge(spec: TrainingSpec, obs: TrainingObservation, expected: HarnessSeed | None) -> Verdict:
        harness = None
        if spec.data is not None and obs.loop is not None:
            if expected is None:
                raise GraderError(f"no host data for training check {spec.id!r}", where="grader.pipeline",
                                  hint="the plan's host truths (grader.profiles.plan(...).expected) must reach judge_all")
            harness = recomputed(spec, obs.loop, expected.seed, build_fixture(spec.network))
        needed = [role for role in spec.returns if role != "any"]
        review = None
        if obs.read_by == "none":
            rows = [{"requirement": "returns its results, if it returns any (the handout asks for none)",
                     "got": "nothing: graded on what it does", "ok": True}] if needed else []
            rows += [_role_row(n, role, _NOTHING, spec, obs) for n, role in enumerate(spec.returns, start=1)
                     if role in ("best-model", "model")]
            aligned = [_NOTHING] * len(spec.returns)
        elif obs.read_by == "content":
            rows, aligned, review = _read_by_content(spec, obs, harness)
        else:
            rows = [{"requirement": f"returns {len(spec.returns)} value(s)",
                     "got": f"{len(obs.elements)} ({obs.return_type})",
                     "ok": len(obs.elements) == len(spec.returns)}] if needed else []
            rows += [row for n, (role, got) in enumerate(zip(spec.returns, obs.elements), start=1)
                     if (row := _role_row(n, role, got, spec, obs))]
            aligned = obs.elements
        rows.append({"requirement": "updates the network's weights",
                     "got": "weights changed" if obs.weights_changed else "weights unchanged",
                     "ok": obs.weights_changed})
        if spec.data is not None:
            rows += loop_requirements(spec, aligned, obs.loop, harness)
        if obs.read_by == "none":
            returned = "nothing (the handout asks for no returns)"
        elif all(role == "per-epoch" for role in spec.returns):
            returned = f"{len(spec.returns)} per-epoch value lists"
        else:
            returned = ", ".join(spec.returns)
        if obs.read_by == "content":
            returned += f" (read by what they are among the {len(obs.elements)} values returned)"
        # no wall time in the message: the same submission gets the same words every time (the run's
        # seconds are in the result's own timing)
        passed = f"returns {returned} and trains ({spec.epochs} epoch(s))"
        if obs.called:
            passed = f"called {obs.called}; {passed}"
        if spec.validation_loss_matches:  # the last row: which reading of the validation loss was found
            passed += f"; its validation losses are {rows[-1]['got']}"
        verdict = Verdict.from_requirements(rows, passed=passed)
        if review and verdict.fraction < 1:
            verdict.review = review
        return verdict


_NOTHING = Element(type="NoneType", length=None, numeric=False, finite=False, values=[])
_SAID = {"training-losses": "training losses", "validation-losses": "validation losses",
         "validation-accuracies": "validation accuracies", "per-epoch": "per-epoch values"}


def _role_row(n: int, role: str, got: Element, spec: TrainingSpec, obs: TrainingObservation) -> dict[str, Any] | None:
    """The row of returned value ``n`` in role ``role`` (None for ``any``)."""
    if role in PER_EPOCH:
        return _per_epoch_row(n, role, got, spec.epochs)
    if role == "model":
        return {"requirement": f"value {n}: a model (torch.nn.Module)", "got": got.type, "ok": got.is_module}
    if role == "best-model":
        problem = obs.loop.returned_parameters_problem if obs.loop else ""
        if got is _NOTHING and not problem:
            problem = "nothing returned"
        return {"requirement": f"value {n}: the best model (a model, a state dict or a parameter list)",
                "got": problem or got.label or got.type, "ok": obs.loop is not None and not problem}
    return None


def _matches(values: list[float], reference: list[float], rtol: float = LOSS_RTOL, atol: float = LOSS_ATOL) -> bool:
    return len(values) == len(reference) > 0 and all(abs(v - r) <= atol + rtol * abs(r)
                                                        for v, r in zip(values, reference))


def _references(spec: TrainingSpec, obs: TrainingObservation,
                harness: Recomputed | None) -> dict[str, dict[str, list[float]]]:
    """The harness's own numbers each recognisable role is compared with, by reading: the training
    losses its hook saw, and the validation losses and accuracies the host recomputed (``harness``)."""
    refs: dict[str, dict[str, list[float]]] = {"training-losses": dict(obs.training_loss_readings)}
    if harness is not None:
        refs["validation-losses"] = recomputed_by_reading(spec, harness)
        refs["validation-accuracies"] = {"fraction": harness.accuracies,
                                         "percent": [100 * a for a in harness.accuracies]}
    return refs


_RECOGNISED_AS = {"batch-mean": "the mean of the batch losses", "sample-mean": "the mean per sample",
                  "batch-sum": "the sum of the batch losses", "sample-sum": "the sum over the samples",
                  "fraction": "as a fraction", "percent": "in percent"}


def _read_by_content(spec: TrainingSpec, obs: TrainingObservation,
                     harness: Recomputed | None) -> tuple[list[dict[str, Any]], list[Element], str | None]:
    """Rows for the roles of ``returns``, each found among the returned values by what it is (the
    module docstring), the elements lined up with ``returns``, and why a person must decide, if so."""
    refs = _references(spec, obs, harness)
    series = [i for i, e in enumerate(obs.elements) if e.length == spec.epochs and e.numeric and e.finite]

    def recognised(i: int, role: str) -> str | None:
        return next((reading for reading, ref in refs.get(role, {}).items()
                     if _matches(obs.elements[i].values, ref)), None)

    known = {i for i in series if any(recognised(i, role) for role in refs)}
    claimed: dict[int, int] = {}  # position in returns -> element index
    how: dict[int, str] = {}
    review = []
    order = sorted(range(len(spec.returns)), key=lambda k: spec.returns[k] not in RECOMPUTED)
    for k in order:
        role = spec.returns[k]
        if role not in PER_EPOCH:
            continue
        free = [i for i in series if i not in claimed.values()]
        found = [(i, r) for i in free if (r := recognised(i, role))] if role in RECOMPUTED else []
        if found:
            claimed[k], how[k] = found[0][0], f"equals the harness's recomputed {_SAID[role]}, " \
                                              f"{_RECOGNISED_AS.get(found[0][1], found[0][1])}"
            continue
        left = [i for i in free if i not in known]
        if role == "per-epoch" and free:
            claimed[k], how[k] = free[0], "one number per epoch"
        elif len(left) == 1:
            claimed[k], how[k] = left[0], "the one per-epoch series left"
        elif len(left) > 1:
            review.append(f"which of {', '.join(obs.elements[i].label for i in left)} holds the {_SAID[role]} "
                          "cannot be told from their values")
    rows = []
    aligned = []
    for k, role in enumerate(spec.returns, start=0):
        n = k + 1
        if k in claimed:
            got = obs.elements[claimed[k]]
            aligned.append(got)
            row = _per_epoch_row(n, role, got, spec.epochs)
            row["requirement"] = f"returns the {_SAID[role]}: one number per epoch ({spec.epochs})"
            row["got"] = f"{got.label}, {row['got']} ({how[k]})"
            rows.append(row)
            continue
        aligned.append(_NOTHING)
        if role in PER_EPOCH:
            rows.append({"requirement": f"returns the {_SAID[role]}: one number per epoch ({spec.epochs})",
                         "got": _none_found(obs, spec, role, review), "ok": False})
        elif role == "model":
            module = next((e for e in obs.elements if e.is_module), None)
            rows.append({"requirement": "returns a model (torch.nn.Module)", "ok": module is not None,
                         "got": module.label if module else f"none of {len(obs.elements)} returned values"})
            if module is not None:
                aligned[-1] = module
        elif role == "best-model":
            problem = obs.loop.returned_parameters_problem if obs.loop else "no loop recorded"
            rows.append({"requirement": "returns the best model (a model, a state dict or a parameter list)",
                         "got": problem or f"read from the {obs.return_type} returned", "ok": not problem})
    return rows, aligned, "; ".join(review) or None


def _none_found(obs: TrainingObservation, spec: TrainingSpec, role: str, review: list[str]) -> str:
    if any(_SAID[role] in r for r in review):
        return next(r for r in review if _SAID[role] in r)
    values = ", ".join(f"{e.label} ({e.type}{f' of {e.length}' if e.length is not None else ''})"
                       for e in obs.elements[:8])
    return f"no returned value is {'one' if role == 'per-epoch' else 'that'}; returned: {values}"


def _per_epoch_row(n: int, role: str, got: Element, epochs: int) -> dict[str, Any]:
    detail = f"{got.type} of {got.length}" if got.length is not None else got.type
    if got.length is not None and not got.numeric:
        detail += ", not all numbers"
    elif got.length is not None and not got.finite:
        detail += ", contains nan/inf"
    named = "" if role == "per-epoch" else f" ({role.replace('-', ' ')})"
    return {"requirement": f"value {n}{named}: one number per epoch ({epochs})", "got": detail,
            "ok": got.length == epochs and got.numeric and got.finite}
