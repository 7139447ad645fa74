"""``transfer``: a model built around a pretrained torchvision network, fine-tuned in part.

Two modes:

* ``structure`` needs no weights file. The model is built while torchvision's weight loading is
  replaced by a stub that only notes which weights were asked for, so the parameters keep their
  random initialisation. The probe finds the torchvision network inside the student's model (the
  outermost module of the rubric's ``backbone`` class) and reports its parameters and which of
  them train. The judge wants: the rubric's pretrained weights asked for, a new head (``fc``)
  ending in a Linear layer with ``classes`` outputs, exactly the parameters under the
  ``trainable`` prefixes training and every other one frozen, and the right output shape.
* ``pretrained`` builds the model for real: torchvision reads the weights from the torch hub
  cache (``$TORCH_HOME/hub/checkpoints``, which the sandbox shows read-only). A measured mode: the
  probe captures the whole model's eval forward with every weight (``model_capture``); the measure
  stage runs the graph on a fresh input and takes a fingerprint (float64 sum and sum of squares)
  of each weight the output is computed from; the host reads the same file itself and compares
  the backbone's tensors outside the head. Pretrained weights that the forward never reads (a
  record rewritten with the file's fingerprints, weights shipped beside a network that does not
  use them) earn nothing. Without the file on the host the check is ``skipped``, naming the file
  and where it goes: no weights are ever downloaded. ``structure`` stays observed: which
  parameters train and which weights were asked for are the student's process's account.
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Literal
from urllib.parse import urlparse

import numpy as np
from pydantic import Field

from grader import artifacts
from grader.checks import register
from grader.checks.toolkit import model_capture
from grader.checks.base import CheckKind, CheckSkipped, CheckSpec, Measured, Observation, ProbeContext, Verdict
from grader.checks.toolkit.capture import JUDGE_ONLY
from grader.checks.toolkit.common import Args, call_target, type_name
from grader.errors import GraderError
from grader.observations import Array

MAX_LISTED = 6  # parameter names shown in a message
# A ResNet18's 11.7M weights are 47 MB; a model over this is not measured (a person grades it)
MAX_WEIGHT_BYTES = 96 * 2**20
CAPTURE_INPUT = [1, 3, 64, 64]  # (pretrained) the input the forward is captured on when the rubric gives none


class TransferSpec(CheckSpec):
    kind: Literal["transfer"]
    target: str = Field(description="a class or function that builds the transfer model")
    args: Args = Field(default_factory=list, description="arguments that build it: a list or a mapping")
    mode: Literal["structure", "pretrained"] = Field(
        "structure", description="structure: frozen/trainable sets and the new head, without weights; "
                                 "pretrained: the network holds the pretrained weights (needs the weights file)")
    backbone: str = Field("resnet18", description="the torchvision model inside, by torchvision's name")
    weights: str = Field("IMAGENET1K_V1", description="the pretrained weights asked for, by torchvision's name")
    head: str = Field("fc", description="the backbone's attribute that holds the new classifier")
    classes: int = Field(10, ge=1, description="outputs of the new head", json_schema_extra=JUDGE_ONLY)
    trainable: list[str] = Field(["layer4", "fc"], description="(structure) prefixes of the backbone's parameter "
                                                               "names that must train; every other one is frozen",
                                                               json_schema_extra=JUDGE_ONLY)
    input: list[int] | None = Field([2, 3, 112, 112], description="(structure) an input for one forward pass, "
                                                                   "or null for none")
    rel_tol: float = Field(1e-5, gt=0, description="(pretrained) accepted relative difference of a fingerprint",
                           json_schema_extra=JUDGE_ONLY)


class TransferObservation(Observation):
    module_type: str
    backbone_at: str | None = Field(None, description="where the backbone sits in the model ('' for the model itself)")
    requested: list[str] = Field([], description="weight files the construction asked for")
    parameters: list[str] = []
    trainable: list[bool] = []
    head_type: str | None = None
    head_in: int | None = None
    head_out: int | None = None
    output_shape: list[int] | None = None
    weights_seen: bool | None = Field(None, description="(pretrained) whether the sandbox found the weights file")
    captured: model_capture.CapturedModel | None = Field(
        None, description="(pretrained) the model's eval forward as a graph, with every weight's values")


class TransferMeasurement(Observation):
    """(pretrained) What the measure stage found in the captured model: a fingerprint of each
    weight its output is computed from, by the weight's name in the model, or why there is none."""

    tensors: list[str] = []
    fingerprints: Array | None = None
    problem: str = ""


# ---------------------------------------------------------------- both sides


def weights_file(spec: TransferSpec) -> tuple[str, str]:
    """The hub cache's file name of the rubric's weights, and where torchvision downloads it from."""
    import torchvision

    try:
        url = torchvision.models.get_model_weights(spec.backbone)[spec.weights].url
    except (KeyError, ValueError) as exc:
        raise GraderError(f"torchvision has no weights {spec.weights!r} for {spec.backbone!r}: {exc}",
                          where=f"check {spec.id!r}", hint="use torchvision's names, e.g. resnet18 and IMAGENET1K_V1") from None
    return Path(urlparse(url).path).name, url


def hub_checkpoints() -> Path:
    """``$TORCH_HOME/hub/checkpoints`` (default ``~/.cache/torch/hub/checkpoints``), where torchvision looks."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def fingerprint(tensor: Any) -> tuple[float, float]:
    import torch

    values = torch.Tensor.detach(tensor).to("cpu", torch.float64)
    return float(values.sum()), float((values * values).sum())


# ---------------------------------------------------------------- probe side


class _NotLoaded(dict):
    """What the stub hands over instead of a state dict: loading it changes nothing."""


@contextmanager
def _weights_stubbed(requested: list[str]) -> Iterator[None]:
    """While the model is built, asking torchvision or torch.hub for weights only records the file."""
    import torch
    from torch import nn
    from torch.nn.modules.module import _IncompatibleKeys
    from torchvision.models import _api

    def get_state_dict(self: Any, *args: Any, **kwargs: Any) -> dict:
        requested.append(Path(urlparse(self.url).path).name)
        return _NotLoaded()

    def from_url(url: str, *args: Any, **kwargs: Any) -> dict:
        requested.append(Path(urlparse(url).path).name)
        return _NotLoaded()

    def load_state_dict(module: nn.Module, state_dict: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(state_dict, _NotLoaded):
            return _IncompatibleKeys([], [])
        return original_load(module, state_dict, *args, **kwargs)

    original_get, original_load = _api.WeightsEnum.get_state_dict, nn.Module.load_state_dict
    original_hub, original_zoo = torch.hub.load_state_dict_from_url, torch.utils.model_zoo.load_url
    _api.WeightsEnum.get_state_dict, nn.Module.load_state_dict = get_state_dict, load_state_dict
    torch.hub.load_state_dict_from_url = torch.utils.model_zoo.load_url = from_url
    try:
        yield
    finally:
        _api.WeightsEnum.get_state_dict, nn.Module.load_state_dict = original_get, original_load
        torch.hub.load_state_dict_from_url, torch.utils.model_zoo.load_url = original_hub, original_zoo


def _children(module: Any) -> dict[str, Any]:
    return {k: v for k, v in object.__getattribute__(module, "_modules").items() if v is not None}


def _find(model: Any, cls: type) -> tuple[str, Any] | None:
    """The outermost module of class ``cls`` (the model itself included), breadth first."""
    queue, seen = [("", model)], set()
    while queue:
        path, module = queue.pop(0)
        if id(module) in seen:
            continue
        seen.add(id(module))
        if isinstance(module, cls):
            return path, module
        queue += [(f"{path}.{k}" if path else k, m) for k, m in _children(module).items()]
    return None


def _named(module: Any, store: str, prefix: str = "", seen: set[int] | None = None) -> Iterator[tuple[str, Any]]:
    """Parameters (``store="_parameters"``) or buffers of a module tree, read from the modules' own
    storage so that an overridden ``named_parameters`` changes nothing."""
    seen = set() if seen is None else seen
    for name, value in object.__getattribute__(module, store).items():
        if value is not None and id(value) not in seen:
            seen.add(id(value))
            yield prefix + name, value
    for name, child in _children(module).items():
        yield from _named(child, store, f"{prefix}{name}.", seen)


def _head(backbone: Any, name: str) -> tuple[str | None, int | None, int | None]:
    """The head's type and the sizes of the last Linear layer in it."""
    from torch import nn

    head = _children(backbone).get(name)
    if head is None:
        return None, None, None
    linears = [head] if isinstance(head, nn.Linear) else [m for m in _walk(head) if isinstance(m, nn.Linear)]
    if not linears:
        return type_name(head), None, None
    return type_name(head), int(linears[-1].in_features), int(linears[-1].out_features)


def _walk(module: Any) -> Iterator[Any]:
    for child in _children(module).values():
        yield child
        yield from _walk(child)


@register("transfer")
class Transfer(CheckKind):
    Spec = TransferSpec
    Observation = TransferObservation
    Measurement = TransferMeasurement

    @classmethod
    def measures(cls, spec: TransferSpec) -> bool:
        return spec.mode == "pretrained"  # structure: which parameters train is the run's account alone

    @staticmethod
    def measure(spec: TransferSpec, obs: TransferObservation, seed: int, given: dict[str, Any]) -> TransferMeasurement:
        captured = obs.captured
        if spec.mode != "pretrained" or captured is None:
            return TransferMeasurement(problem="the run shipped no capture of the model")
        if captured.problem or not captured.graphs or captured.graphs[0] is None:
            return TransferMeasurement(problem=captured.why_not(0))
        if any(w.values is None for w in captured.weights):
            return TransferMeasurement(problem=f"its weights are over the {MAX_WEIGHT_BYTES // 2**20} MiB a "
                                               "measured transfer model may ship")
        try:
            graph = model_capture.checked(captured, 0)
            weights = model_capture.weight_tensors(captured, seed)
            model_capture.run_forward(captured, 0, captured.input_shapes[0], seed, weights)  # it runs on a fresh input
        except (model_capture.Refused, artifacts.ArtifactError) as exc:
            return TransferMeasurement(problem=str(exc)[:500])
        read = model_capture.inputs_reaching_outputs(graph)
        used = [(w.name, t) for w, t in zip(captured.weights, weights) if w.name in read]
        return TransferMeasurement(tensors=[name for name, _ in used],
                                   fingerprints=np.array([fingerprint(t) for _, t in used], dtype=np.float64)
                                   .reshape(len(used), 2))

    @staticmethod
    def probe(spec: TransferSpec, ctx: ProbeContext) -> TransferObservation:
        import torch
        import torchvision

        with torch.device("meta"):  # the class to look for, built without memory or weights
            backbone_class = type(torchvision.models.get_model(spec.backbone))
        requested: list[str] = []
        if spec.mode == "pretrained":
            file, _ = weights_file(spec)
            if not (hub_checkpoints() / file).is_file():
                return TransferObservation(module_type="(not built)", weights_seen=False)
            model = call_target(ctx, spec.target, spec.args)
        else:
            with _weights_stubbed(requested):
                model = call_target(ctx, spec.target, spec.args)
        if not isinstance(model, torch.nn.Module):
            return TransferObservation(module_type=type_name(model))
        found = _find(model, backbone_class)
        if found is None:
            return TransferObservation(module_type=type_name(model), requested=requested)
        path, backbone = found
        if spec.mode == "pretrained":
            shape = spec.input or CAPTURE_INPUT
            captured = model_capture.capture(model, [shape], torch.float32, ctx, f"the model built by {spec.target}",
                                             value_bytes=MAX_WEIGHT_BYTES)
            return TransferObservation(module_type=type_name(model), backbone_at=path, weights_seen=True,
                                       captured=captured)
        params = list(_named(backbone, "_parameters"))
        head_type, head_in, head_out = _head(backbone, spec.head)
        shape = None
        if spec.input is not None:
            with ctx.student_code(f"running the model on an input of shape {spec.input}"), torch.no_grad():
                model.eval()
                output = model(torch.randn(*spec.input))
                shape = [int(d) for d in torch.Tensor.size(output)] if type(output) is torch.Tensor else None
        return TransferObservation(module_type=type_name(model), backbone_at=path, requested=requested,
                                   parameters=[n for n, _ in params], trainable=[bool(p.requires_grad) for _, p in params],
                                   head_type=head_type, head_in=head_in, head_out=head_out, output_shape=shape)

    @staticmethod
    def judge(spec: TransferSpec, obs: TransferObservation, expected: Any, measured: Measured | None = None) -> Verdict:
        if spec.mode == "pretrained":
            return _judge_pretrained(spec, obs, measured)
        if obs.backbone_at is None:
            return Verdict.failed(f"no torchvision {spec.backbone} inside the model (a {obs.module_type})")
        file, _ = weights_file(spec)
        rows = [{"requirement": f"the pretrained {spec.weights} weights are asked for ({file})",
                 "got": ", ".join(obs.requested) or "none: the network starts from random weights",
                 "ok": file in obs.requested},
                {"requirement": f"the new head `{spec.head}` ends in a Linear layer with {spec.classes} outputs",
                 "got": _head_text(obs), "ok": obs.head_out == spec.classes},
                _trainable_row(spec, obs)]
        if spec.input is not None:
            want = [spec.input[0], spec.classes]
            rows.append({"requirement": f"an input of shape {spec.input} gives logits of shape {want}",
                         "got": str(obs.output_shape) if obs.output_shape else "no plain tensor",
                         "ok": obs.output_shape == want})
        where = f"model.{obs.backbone_at}" if obs.backbone_at else "the model itself"
        return Verdict.from_requirements(rows, passed=f"{spec.backbone} at {where}: {file} asked for, "
                                                      f"{_head_text(obs)}, only {', '.join(spec.trainable)} train")


def _head_text(obs: TransferObservation) -> str:
    if obs.head_type is None:
        return "no head of that name"
    if obs.head_out is None:
        return f"a {obs.head_type} without a Linear layer"
    linear = f"Linear({obs.head_in} -> {obs.head_out})"
    short = obs.head_type.rsplit(".", 1)[-1]
    return linear if short == "Linear" else f"{short} ending in {linear}"


def _trainable_row(spec: TransferSpec, obs: TransferObservation) -> dict[str, Any]:
    def under(name: str) -> bool:
        return any(name == p or name.startswith(p + ".") for p in spec.trainable)

    should_train = [n for n, t in zip(obs.parameters, obs.trainable) if under(n) and not t]
    should_freeze = [n for n, t in zip(obs.parameters, obs.trainable) if not under(n) and t]
    problems = []
    if should_freeze:
        problems.append(f"{len(should_freeze)} tensor(s) outside them train ({_listed(should_freeze)})")
    if should_train:
        problems.append(f"{len(should_train)} tensor(s) under them are frozen ({_listed(should_train)})")
    trained = sum(obs.trainable)
    return {"requirement": f"only the parameters under {', '.join(spec.trainable)} train",
            "got": "; ".join(problems) or f"{trained} of {len(obs.parameters)} tensors train, all under them",
            "ok": not problems and trained > 0}


def _listed(names: list[str]) -> str:
    return ", ".join(names[:MAX_LISTED]) + (", ..." if len(names) > MAX_LISTED else "")


def _judge_pretrained(spec: TransferSpec, obs: TransferObservation, measured: Measured | None) -> Verdict:
    file, url = weights_file(spec)
    folder = hub_checkpoints()
    if not (folder / file).is_file():
        raise CheckSkipped(f"the pretrained weights {file} are not on this machine", where=str(folder / file),
                           hint=f"place torchvision's {spec.backbone} {spec.weights} weights ({url}) at {folder / file}, "
                                "or set TORCH_HOME to a folder whose hub/checkpoints holds them")
    if not obs.weights_seen:
        # The host has the file and shows it to every sandbox read-only, so "not seen" is a broken
        # sandbox or a forged record: either way not a reason to leave the check out of the score.
        return Verdict(0.0, f"the run reports that it did not find {file}, which this machine has and shows "
                            "every sandbox; graded 0 until a person looks",
                       review=f"the sandbox claims {folder / file} was missing: a forged record, or a sandbox "
                              "that does not show $TORCH_HOME/hub/checkpoints")
    if obs.backbone_at is None:
        return Verdict.failed(f"no torchvision {spec.backbone} inside the model (a {obs.module_type})")
    found = measured.data if measured is not None else None
    if found is None or found.problem:
        why = (measured.problem if measured is not None and measured.data is None else
               found.problem if found is not None else "no measure stage ran")
        return Verdict(0.0, f"not measured: {why}; its weights were not compared with {file}",
                       review=f"the model's weights could not be measured ({why}); a person may check them by hand")
    reference = _file_fingerprints(str(folder / file), (folder / file).stat().st_mtime_ns, spec.head)
    prefix = f"{obs.backbone_at}." if obs.backbone_at else ""
    fingerprints = found.fingerprints if found.fingerprints is not None else np.zeros((0, 2))
    got = {name[len(prefix):]: values for name, values in zip(found.tensors, fingerprints) if name.startswith(prefix)}
    differ = [name for name, want in reference.items()
              if name not in got or not np.allclose(got[name], want, rtol=spec.rel_tol, atol=1e-6)]
    if differ:
        unread = [name for name in differ if name not in got]
        why = (f"; {len(unread)} of them are not read by the model's forward at all" if unread else "")
        return Verdict.failed(f"{len(differ)} of {len(reference)} tensors of the {spec.backbone} differ from the "
                              f"pretrained weights in {file} ({_listed(differ)}){why}: built without them?")
    return Verdict.passed(f"all {len(reference)} tensors of the {spec.backbone} outside `{spec.head}` hold the "
                          f"pretrained weights of {file}")


@lru_cache(maxsize=2)
def _file_fingerprints(path: str, mtime_ns: int, head: str) -> dict[str, np.ndarray]:
    """Fingerprints of the weights file's floating-point tensors outside the head (read once per
    file version: the same file is judged for every submission of a batch)."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a damaged or foreign file: say which
        raise CheckSkipped(f"the weights file cannot be read: {type(exc).__name__}: {exc}", where=path,
                           hint="delete it and place torchvision's own file there") from None
    return {name: np.array(fingerprint(t)) for name, t in state.items()
            if not name.startswith(head + ".") and torch.is_floating_point(t)}
