"""``transfer``: ResNet18 transfer models, checked without weights and against a weights file.

``structure`` runs in-process on the handout's model and on the usual mistakes (nothing frozen,
no pretrained weights asked for, the old 1,000-class head). ``pretrained`` runs with a temporary
TORCH_HOME whose hub cache holds a stand-in ``resnet18-f37072fd.pth`` (a randomly initialised
ResNet18 saved under torchvision's file name), so the loading path runs without a download; and
without the file, where the check is skipped naming the file and its place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import torchvision
from torch import nn

from grader import checks
from grader.checks.base import CheckSkipped, Measured, ProbeContext
from grader.checks.transfer import TransferObservation
from grader.targets import TargetSpec

KIND = checks.get("transfer")
FILE = "resnet18-f37072fd.pth"


def spec(**fields: Any):
    return KIND.Spec.model_validate({"id": "transfer", "kind": "transfer", "points": 3, "partial_credit": True,
                                     "target": "model", **fields})


def observe(cls, **fields: Any) -> TransferObservation:
    ctx = ProbeContext(namespaces=[("task4a", {"Model": cls})],
                       targets={"model": TargetSpec(name="Model", kind="class")})
    return KIND.probe(spec(**fields), ctx)


def judge(cls, **fields: Any):
    """The verdict on ``cls``; in ``pretrained`` mode through the measure stage's code, run here."""
    the_spec, obs = spec(**fields), observe(cls, **fields)
    if the_spec.mode != "pretrained":
        return KIND.judge(the_spec, obs, None)
    return KIND.judge(the_spec, obs, None, Measured(7, data=KIND.measure(the_spec, obs, 7, {})))


class Handout(nn.Module):
    """Listing 1 of the handout, with the current torchvision API."""

    def __init__(self, freeze: bool = True, weights: Any = "IMAGENET1K_V1", classes: int = 10):
        super().__init__()
        self.model = torchvision.models.resnet18(weights=weights)
        self.model.fc = nn.Linear(512, classes)
        if freeze:
            for p in self.model.parameters():
                p.requires_grad = False
            for p in [*self.model.fc.parameters(), *self.model.layer4.parameters()]:
                p.requires_grad = True

    def forward(self, x):
        return self.model(x)


class Legacy(nn.Module):
    """The same with `pretrained=True` and freezing by parameter name."""

    def __init__(self):
        super().__init__()
        self.net = torchvision.models.resnet18(pretrained=True)
        self.net.fc = nn.Sequential(nn.Dropout(0.2), nn.Linear(512, 10))
        for name, p in self.net.named_parameters():
            p.requires_grad = name.startswith(("layer4", "fc"))

    def forward(self, x):
        return self.net(x)


def variant(**options: Any) -> type:
    """Handout with other constructor defaults, as a class (the target is a class)."""

    class Variant(Handout):
        def __init__(self):
            super().__init__(**options)

    return Variant


class NoResNet(nn.Sequential):
    def __init__(self):
        super().__init__(nn.Flatten(), nn.Linear(3 * 112 * 112, 10))


# ================================================================ structure, no weights needed


def test_the_handout_model_passes_without_any_weights_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache: nothing may be read or fetched
    for cls in (Handout, Legacy):
        obs = observe(cls)
        assert obs.requested == [FILE]
        verdict = KIND.judge(spec(), obs, None)
        assert verdict.fraction == 1.0, verdict.message
    assert not any(tmp_path.rglob("*.pth"))


def test_the_stub_is_removed_afterwards():
    before = (torchvision.models._api.WeightsEnum.get_state_dict, nn.Module.load_state_dict,
              torch.hub.load_state_dict_from_url)
    observe(Handout)
    assert before == (torchvision.models._api.WeightsEnum.get_state_dict, nn.Module.load_state_dict,
                      torch.hub.load_state_dict_from_url)


def test_everything_trainable_fails_one_row_and_names_the_tensors():
    verdict = judge(variant(freeze=False))
    assert verdict.fraction == pytest.approx(3 / 4)
    assert "tensor(s) outside them train (conv1.weight, bn1.weight" in verdict.message


def test_no_pretrained_weights_and_the_old_head_fail_their_rows():
    verdict = judge(variant(weights=None, classes=1000))
    assert verdict.fraction == pytest.approx(1 / 4)
    assert "none: the network starts from random weights" in verdict.message
    assert "Linear(512 -> 1000)" in verdict.message


def test_a_model_without_a_resnet_fails():
    verdict = judge(NoResNet)
    assert verdict.fraction == 0.0 and "no torchvision resnet18 inside the model" in verdict.message


# ================================================================ pretrained: the weights file


@pytest.fixture
def hub(tmp_path, monkeypatch) -> Path:
    """A TORCH_HOME whose hub cache holds a stand-in for torchvision's ResNet18 weights."""
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.manual_seed(123)
    torch.save(torchvision.models.resnet18().state_dict(), checkpoints / FILE)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    return checkpoints


def test_the_weights_are_loaded_from_the_hub_cache_and_recognised(hub):
    verdict = judge(Handout, mode="pretrained")
    assert verdict.fraction == 1.0, verdict.message
    assert "hold the pretrained weights of resnet18-f37072fd.pth" in verdict.message


def test_a_network_without_the_weights_fails(hub):
    verdict = judge(variant(weights=None), mode="pretrained")
    assert verdict.fraction == 0.0 and "differ from the pretrained weights" in verdict.message


def test_without_the_file_the_check_is_skipped_naming_the_file_and_its_place(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    obs = observe(Handout, mode="pretrained")
    assert obs.weights_seen is False  # not built: building would try to download
    with pytest.raises(CheckSkipped) as raised:
        KIND.judge(spec(mode="pretrained"), obs, None, None)
    text = raised.value.render()
    assert FILE in text and str(tmp_path / "hub" / "checkpoints" / FILE) in text


class SideLoaded(nn.Module):
    """A pretrained ResNet18 kept beside the network, which computes with a randomly initialised one."""

    def __init__(self):
        super().__init__()
        self.kept = torchvision.models.resnet18(weights="IMAGENET1K_V1")
        self.used = torchvision.models.resnet18(weights=None)
        self.used.fc = nn.Linear(512, 10)

    def forward(self, x):
        return self.used(x)


def test_pretrained_weights_the_forward_never_reads_are_not_counted(hub):
    verdict = judge(SideLoaded, mode="pretrained")
    assert verdict.fraction == 0.0 and "not read by the model's forward at all" in verdict.message, verdict.message


def test_a_record_with_the_files_fingerprints_and_no_capture_earns_nothing_and_asks_a_person(hub):
    """What the probe used to report, forged from the file the sandbox can read: nothing is measured."""
    obs = observe(variant(weights=None), mode="pretrained").model_copy(update={"captured": None})
    the_spec = spec(mode="pretrained")
    measured = Measured(7, data=KIND.measure(the_spec, obs, 7, {}))
    verdict = KIND.judge(the_spec, obs, None, measured)
    assert verdict.fraction == 0.0 and verdict.review
    assert "not measured: the run shipped no capture of the model" in verdict.message


def test_the_measure_stage_fingerprints_only_what_the_forward_reads(hub):
    the_spec = spec(mode="pretrained")
    obs = observe(Handout, mode="pretrained")
    assert obs.captured is not None and obs.captured.input_shapes == [[2, 3, 112, 112]]
    measured = KIND.measure(the_spec, obs, 7, {})
    assert measured.problem == "" and len(measured.tensors) == len(measured.fingerprints) > 60
    assert "model.conv1.weight" in measured.tensors and "model.fc.weight" in measured.tensors


def test_a_record_forging_that_the_weights_were_missing_is_not_skipped_but_sent_for_review(hub):
    forged = KIND.Observation(module_type="(not built)", weights_seen=False)  # the file is on this machine
    verdict = KIND.judge(spec(mode="pretrained"), forged, None, None)  # no CheckSkipped: it counts
    assert verdict.fraction == 0.0 and "graded 0 until a person looks" in verdict.message
    assert "forged record" in verdict.review


def test_the_sandbox_level_shows_the_hub_cache_read_only(hub):
    from grader.sandbox import namespace

    assert namespace.torch_home() == hub.parent.parent
    assert namespace.sandbox_env({}, None, 1)["TORCH_HOME"] == str(hub.parent.parent)
    assert str(hub) in namespace.readonly_paths([hub])
