"""The ``training`` check: judges on hand-made observations (just inside and just outside each
requirement), probes of tiny training functions and of the course-style loops in
tests/fixtures/contracts/training_loops.py, trained on the harness's tiny data."""

from __future__ import annotations

import importlib.util
import math
import time
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch

from grader import checks, observations
from grader.checks.base import HarnessSeed, ProbeContext, StudentRaised, Verdict
from grader.checks import training as training_kind
from grader.checks.training import (Element, LoopRecord, LoopRecorder, Recomputed, TinyBatches, TrainingObservation,
                                    build_fixture, in_globals, make_split, recompute, recomputed)
from grader.targets import TargetSpec

CONTRACTS = Path(__file__).resolve().parents[1] / "fixtures" / "contracts"


def spec(**fields: Any):
    entry = {"id": "training-check", "kind": "training", "points": 3, **fields}
    return checks.get("training").Spec.model_validate(entry)


SEED = 0  # the seed the probes below make the harness's data from (ProbeContext's default)


def judge(the_spec: Any, observation: TrainingObservation) -> Verdict:
    """Judged as the pipeline judges: with the host's truth, from which it remakes the data."""
    return checks.get("training").judge(the_spec, observation, HarnessSeed(seed=SEED))


def probe(the_spec: Any, ctx: ProbeContext) -> TrainingObservation:
    ctx.seed_everything()
    return checks.get("training").probe(the_spec, ctx)


def context(**objects: Any) -> ProbeContext:
    return ProbeContext(namespaces=[("notebook", {"__name__": __name__, **objects})],
                        targets={name: TargetSpec(name=name) for name in objects})


@cache
def loops() -> ModuleType:
    """tests/fixtures/contracts/training_loops.py, imported once (the probe restores its globals)."""
    found = importlib.util.spec_from_file_location("contracts_training_loops", CONTRACTS / "training_loops.py")
    module = importlib.util.module_from_spec(found)  # type: ignore[arg-type]
    found.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def loops_context() -> ProbeContext:
    module = loops()
    return ProbeContext(namespaces=[("module", vars(module))],
                        targets={k: TargetSpec(name=k) for k in vars(module) if not k.startswith("_")})


def failed_requirements(v: Verdict) -> list[str]:
    return [row["requirement"] for row in v.table if not row["ok"]]


# ================================================================ return structure (no harness data)


TRAINING = dict(target="train", network={"input": [1, 28, 28], "classes": 10}, epochs=2,
                args=["$network", "$epochs", 0.01], returns=["per-epoch", "per-epoch"])


def element(values: list[float] | None = None, type_: str = "list") -> Element:
    if values is None:
        return Element(type=type_, length=None, numeric=False, finite=False, values=[])
    finite = all(math.isfinite(v) for v in values)
    return Element(type=type_, length=len(values), numeric=True, finite=finite, values=values)


def observed(elements: list[Element], changed: bool = True, return_type: str = "tuple",
             loop: LoopRecord | None = None) -> TrainingObservation:
    return TrainingObservation(return_type=return_type, elements=elements, weights_changed=changed, seconds=0.25,
                               loop=loop)


def test_training_passes():
    v = judge(spec(**TRAINING), observed([element([0.5, 0.4]), element([0.8, 0.9])]))
    assert v.fraction == 1.0
    assert v.message == "returns 2 per-epoch value lists and trains (2 epoch(s))"


def test_training_wrong_number_of_epochs_recorded():
    v = judge(spec(partial_credit=True, **TRAINING), observed([element([0.5, 0.4, 0.3]), element([0.8, 0.9])]))
    assert v.fraction == pytest.approx(3 / 4)
    assert v.message == "value 1: one number per epoch (2): got list of 3"


def test_training_nan_losses():
    v = judge(spec(**TRAINING), observed([element([0.5, math.nan]), element([0.8, 0.9])]))
    assert v.message == "value 1: one number per epoch (2): got list of 2, contains nan/inf"


def test_training_non_numeric_values():
    bad = Element(type="list", length=2, numeric=False, finite=False, values=[])
    v = judge(spec(**TRAINING), observed([element([0.5, 0.4]), bad]))
    assert v.message == "value 2: one number per epoch (2): got list of 2, not all numbers"


def test_training_without_weight_updates():
    v = judge(spec(**TRAINING), observed([element([0.5, 0.4]), element([0.8, 0.9])], changed=False))
    assert v.fraction == pytest.approx(3 / 4)
    assert v.message == "updates the network's weights: got weights unchanged"


def test_training_returning_none():
    v = judge(spec(**TRAINING), observed([element(None, "NoneType")], changed=False, return_type="NoneType"))
    assert v.fraction == 0.0
    assert v.message == ("returns 2 value(s): got 1 (NoneType); value 1: one number per epoch (2): got NoneType; "
                         "updates the network's weights: got weights unchanged")


def test_training_model_element_must_be_a_model():
    the_spec = spec(**(TRAINING | {"returns": ["per-epoch", "model"]}))
    v = judge(the_spec, observed([element([0.5, 0.4]), element(None, "NoneType")]))
    assert v.message == "value 2: a model (torch.nn.Module): got NoneType"


def test_training_named_per_epoch_roles_say_what_they_are():
    the_spec = spec(**(TRAINING | {"returns": ["training-losses", "validation-losses"]}))
    v = judge(the_spec, observed([element([0.5, 0.4]), element([0.8])]))
    assert v.message == "value 2 (validation losses): one number per epoch (2): got list of 1"


def test_training_probe_with_a_real_tiny_training_function():
    def train(network, epochs, lr):  # plain SGD by hand
        x, y = torch.rand(8, 1, 28, 28), torch.arange(8) % 10
        losses, accs = [], []
        for _ in range(epochs):
            network.zero_grad()
            loss = torch.nn.functional.cross_entropy(network(x), y)
            loss.backward()
            with torch.no_grad():
                for p in network.parameters():
                    p -= lr * p.grad
            losses.append(loss.item())
            accs.append(torch.tensor(0.1))
        return losses, accs

    the_spec = spec(**TRAINING)
    obs = probe(the_spec, context(train=train))
    assert obs.return_type == "tuple" and obs.weights_changed and obs.loop is None
    assert [(e.type, e.length, e.numeric, e.finite) for e in obs.elements] == [("list", 2, True, True)] * 2
    assert obs.elements[1].values == pytest.approx([0.1, 0.1])
    assert judge(the_spec, obs).fraction == 1.0


def test_training_probe_of_a_function_that_does_not_train():
    obs = probe(spec(**TRAINING), context(train=lambda net, epochs, lr: ([1.0] * epochs, [0.0] * epochs)))
    assert not obs.weights_changed


# ================================================================ spec validation


CUSTOM_OPS = dict(
    target="fit", network={"input": [1, 28, 28], "classes": 10}, epochs=4, args=["$network", "$epochs"],
    data={"labels": "one-hot", "train_globals": ["training_dataset", "train_dataset"],
          "validation_globals": ["validation_dataset", "val_dataset"]},
    returns=["best-model", "training-losses", "validation-losses"],
    train_eval_modes=True, validation_without_grad=True, validation_loss_matches=True)

MLP_CHECKPOINT = dict(
    target="train_with_checkpoints", network={"input": [1, 28, 28], "classes": 10}, epochs=4,
    args=["$network", "$train_data", "$validation_data", "$epochs"], data={},
    returns=["best-model"], train_eval_modes=True, validation_without_grad=True)

FC_VS_CNN = dict(
    target="train", network={"input": [1, 28, 28], "classes": 10}, epochs=3, args=["$network", "$epochs", 0.01],
    data={"train_globals": ["train_loader"], "validation_globals": ["test_loader"]},
    returns=["validation-losses", "per-epoch"], train_eval_modes=True, validation_without_grad=True,
    validation_loss_matches=True)


@pytest.mark.parametrize("change, message", [
    ({"data": None}, "need `data`"),
    ({"epochs": 1}, "best-model needs at least 2 epochs"),
    ({"args": ["$network", "$epoch"]}, "unknown placeholder $epoch"),
    ({"data": {"train_globals": ["training_dataset"]}}, "`data` needs a way in for the validation data"),
    ({"returns": ["best-model", "training-losses", "per-epoch"]},
     "validation_loss_matches needs a `validation-losses` element"),
    ({"validation_loss_readings": []}, "validation_loss_readings"),
    ({"validation_loss_readings": ["batch-median"]}, "validation_loss_readings"),
    ({"validation_loss_matches": False, "validation_loss_readings": ["sample-mean"]},
     "validation_loss_readings has no effect without validation_loss_matches: true"),
    ({"validation_loss_is_sample_mean": True}, "give one or the other"),
    ({"validation_accuracy_matches": True}, "validation_accuracy_matches needs a `validation-accuracies` element"),
])
def test_spec_rejects_contracts_it_cannot_check(change, message):
    with pytest.raises(ValueError, match=message.replace("$", r"\$")):
        spec(**(CUSTOM_OPS | change))


def test_spec_without_data_keeps_the_old_fields():
    assert spec(**TRAINING).data is None


def test_spec_accepts_every_reading_of_the_validation_loss_unless_told_otherwise():
    assert spec(**CUSTOM_OPS).validation_loss_readings == ["sample-mean", "batch-mean", "batch-sum", "sample-sum"]
    assert spec(**(CUSTOM_OPS | {"validation_loss_readings": ["batch-sum"]})).validation_loss_readings == ["batch-sum"]


@pytest.mark.parametrize("older, matches, readings", [
    (True, True, ["sample-mean"]),
    (False, False, ["sample-mean", "batch-mean", "batch-sum", "sample-sum"]),
])
def test_spec_older_spelling_keeps_its_meaning(older, matches, readings):
    fields = {k: v for k, v in CUSTOM_OPS.items() if k != "validation_loss_matches"}
    the_spec = spec(**fields, validation_loss_is_sample_mean=older)
    assert (the_spec.validation_loss_matches, the_spec.validation_loss_readings) == (matches, readings)


# ================================================================ loop contracts on hand-made records


PARAMETERS = np.array([[0.0, 0.0], [1.0, 0.5], [2.0, 1.0], [3.0, 1.5]], dtype=np.float32)


def loop(returned: np.ndarray | None = PARAMETERS[1], **fields: Any) -> LoopRecord:
    values = dict(data_in_globals=["training_dataset", "validation_dataset"], train_steps=32,
                  train_steps_in_eval_mode=0, validation_passes=4, validation_forwards=12,
                  validation_forwards_in_train_mode=0, validation_forwards_with_grad=0,
                  parameters_by_pass=PARAMETERS, validation_orders=np.tile(np.arange(20), (4, 1)),
                  returned_parameters=returned)
    return LoopRecord(**(values | fields))


# What the host recomputes for the hand-made records above, given in place of its recomputation
# (their two-number "parameters" are no network's): a pass's loss as the mean per sample and as
# the mean of the batch means, and its accuracy.
HARNESS = Recomputed(sample_means=[2.0, 1.5, 1.7, 1.9], batch_means=[2.2, 1.6, 1.8, 2.0],
                    accuracies=[0.35, 0.55, 0.6, 0.45])


def custom_ops(record: LoopRecord, validation_losses: list[float] | None = None, harness: Recomputed = HARNESS,
               **fields: Any) -> Verdict:
    own = validation_losses or [2.0, 1.5, 1.7, 1.9]
    obs = observed([element(None, "torch.nn.modules.container.Sequential"), element([2.3, 2.1, 2.2, 2.4]),
                    element(own)], loop=record)
    return judged_as_recomputed(spec(**(CUSTOM_OPS | fields), partial_credit=True), obs, harness)


def judged_as_recomputed(the_spec: Any, obs: TrainingObservation, harness: Recomputed = HARNESS) -> Verdict:
    """``obs`` (a hand-made record) judged with ``harness`` as what the host recomputed for it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training_kind, "recomputed", lambda *_: harness)
        return judge(the_spec, obs)


EVERY_READING = ("validation losses are the validation cross-entropy as the mean per sample, the mean of the batch "
                 "losses, the sum of the batch losses or the sum over the samples")


BEST = "returns the parameters of epoch 2 of 4, the one with the lowest validation loss"


def test_loop_contracts_all_met():
    v = custom_ops(loop())
    assert v.fraction == 1.0, v.message
    assert [r["requirement"] for r in v.table][-6:] == [
        "validates once per epoch on the given validation data (4 passes)", BEST,
        "training steps run in train mode", "validation runs in eval mode", "validation runs without gradients",
        EVERY_READING]
    assert v.table[-1]["got"] == "the mean per sample"
    assert v.message == ("returns best-model, training-losses, validation-losses and trains (4 epoch(s)); "
                         "its validation losses are the mean per sample")


def test_best_model_of_the_last_epoch_fails():
    v = custom_ops(loop(PARAMETERS[3]))
    assert v.message == f"{BEST}: got epoch 4's (the last)"


@pytest.mark.parametrize("offset, ok", [(0.9e-6, True), (1.1e-6, False)])
def test_best_model_tolerance_boundary(offset, ok):
    v = custom_ops(loop(PARAMETERS[1] + np.array([0.0, offset], dtype=np.float64)))
    assert (BEST not in failed_requirements(v)) is ok
    if not ok:
        assert v.message == f"{BEST}: got the parameters of no epoch (closest: epoch 2's, off by up to 1.1e-06)"


def test_best_model_by_the_students_own_losses_is_accepted_too():
    v = custom_ops(loop(PARAMETERS[2]), validation_losses=[2.0, 1.6, 1.55, 1.9])
    assert v.table[-5]["requirement"] == ("returns the parameters of epoch 2 or 3 of 4, the one with the lowest "
                                          "validation loss (recomputed, or by the returned losses)")
    assert v.table[-5]["ok"]


def test_best_model_that_cannot_be_read():
    v = custom_ops(loop(None, returned_parameters_problem="a NoneType, not a model, state dict or list of tensors"))
    assert failed_requirements(v) == ["value 1: the best model (a model, a state dict or a parameter list)",
                                      "returns the parameters of the epoch with the lowest validation loss"]
    assert v.table[1]["got"] == "a NoneType, not a model, state dict or list of tensors"


@pytest.mark.parametrize("fields, failed, got", [
    ({"train_steps_in_eval_mode": 1}, "training steps run in train mode",
     "1 of 32 training steps in eval mode (model.train() missing after validation?)"),
    ({"validation_forwards_in_train_mode": 1}, "validation runs in eval mode",
     "1 of 12 validation forwards in train mode (model.eval() missing?)"),
    ({"validation_forwards_with_grad": 1}, "validation runs without gradients",
     "1 of 12 validation forwards with gradients on (torch.no_grad() missing?)"),
    ({"train_steps": 0}, "training steps run in train mode", "no training steps seen"),
])
def test_mode_and_gradient_contracts_fail_on_one_forward(fields, failed, got):
    v = custom_ops(loop(**fields))
    assert v.message == f"{failed}: got {got}"


@pytest.mark.parametrize("relative, ok", [(0.9e-4, True), (1.2e-4, False)])
def test_validation_loss_tolerance_boundary(relative, ok):
    recomputed = [2.0, 1.5, 1.7, 1.9]
    v = custom_ops(loop(), harness=HARNESS._replace(sample_means=recomputed),
                   validation_losses=[r * (1 + relative) if i == 2 else r for i, r in enumerate(recomputed)])
    row = v.table[-1]
    assert row["ok"] is ok
    if ok:
        assert row["got"] == "the mean per sample"
    else:
        assert row["got"] == "epoch 3: 1.7002, recomputed 1.7 as the mean per sample (off by 0.01%)"


# 20 validation samples in batches of 8: 3 batches
@pytest.mark.parametrize("own, reading", [
    ([2.2, 1.6, 1.8, 2.0], "the mean of the batch losses"),
    ([6.6, 4.8, 5.4, 6.0], "the sum of the batch losses"),
    ([40.0, 30.0, 34.0, 38.0], "the sum over the samples"),
])
def test_every_reading_the_handout_allows_passes_and_is_named(own, reading):
    v = custom_ops(loop(), validation_losses=own)
    assert v.fraction == 1.0, v.message
    assert v.table[-1]["got"] == reading
    assert v.message.endswith(f"; its validation losses are {reading}")


def test_a_rubric_can_require_one_reading():
    v = custom_ops(loop(), validation_losses=[2.2, 1.6, 1.8, 2.0], validation_loss_readings=["sample-mean"])
    assert v.message == ("validation losses are the validation cross-entropy as the mean per sample: got the mean of "
                         "the batch losses, which this check does not accept")


def test_readings_equal_on_the_data_are_both_named():
    v = custom_ops(loop(), harness=HARNESS._replace(batch_means=[2.0, 1.5, 1.7, 1.9]))
    assert v.table[-1]["got"] == "the mean per sample (the same numbers as the mean of the batch losses on this data)"


def test_losses_of_no_reading_name_the_closest_and_how_far_off():
    v = custom_ops(loop(), validation_losses=[2.2, 1.6, 1.8, 2.6])  # batch means but the last epoch
    assert v.table[-1] == {"requirement": EVERY_READING, "ok": False,
                           "got": "epoch 4: 2.6, recomputed 2 as the mean of the batch losses (off by 30.00%)"}


def test_a_record_without_batch_means_checks_the_other_readings():
    v = custom_ops(loop(), harness=HARNESS._replace(batch_means=[]), validation_losses=[2.2, 1.6, 1.8, 2.0],
                   validation_loss_readings=["batch-mean"])
    assert v.table[-1]["got"] == "epoch 1: 2.2, recomputed 2 as the mean per sample (off by 10.00%)"


def test_sample_mean_with_another_number_of_losses():
    v = custom_ops(loop(validation_passes=5, parameters_by_pass=np.vstack([PARAMETERS, PARAMETERS[3]]),
                        validation_orders=np.tile(np.arange(20), (5, 1))),
                   harness=HARNESS._replace(sample_means=[2.0, 1.5, 1.7, 1.9, 2.0]))
    assert v.table[-1]["got"] == "4 losses for 5 validation passes"
    assert v.table[-6]["got"] == "5 passes"


def test_no_validation_pass_names_the_globals_the_harness_replaces():
    v = custom_ops(loop(data_in_globals=["training_dataset"], validation_passes=0, validation_forwards=0,
                        parameters_by_pass=np.zeros((0, 2), np.float32),
                        validation_orders=np.zeros((0, 20), np.int64)), harness=Recomputed([], [], []))
    assert v.table[-6]["got"] == ("0 passes: the function's module defines none of the globals validation_dataset, "
                                  "val_dataset the harness replaces")
    assert v.table[-5]["got"] == "no validation pass to compare with"


def test_a_record_that_does_not_fit_the_harness_network_or_data_is_not_recomputed():
    """The host recomputes every number from the parameters and orders the record holds; a record
    of another size, or with orders that are not the validation samples, was rewritten."""
    the_spec = spec(**(CUSTOM_OPS | {"partial_credit": True}))
    obs, _ = loop_verdict(CUSTOM_OPS, "fit")
    assert host_recomputed(the_spec, obs).sample_means  # as recorded, it adds up
    for rewritten in ({"parameters_by_pass": obs.loop.parameters_by_pass[:, :-1]},
                      {"validation_orders": np.zeros_like(obs.loop.validation_orders)},
                      {"validation_orders": obs.loop.validation_orders[:-1]}):
        forged = obs.model_copy(update={"loop": obs.loop.model_copy(update=rewritten)})
        assert recomputed(the_spec, forged.loop, SEED, build_fixture(the_spec.network)) is None
        v = judge(the_spec, forged)
        assert {"requirement": "the training loop was observed", "ok": False,
                "got": "a record whose sizes do not agree with the harness's network and data (tampered output?)"} \
            in v.table


def test_a_record_cannot_carry_numbers_for_the_judge():
    """The harness's validation losses once travelled in the record, where a student's process
    could rewrite them to match its own; the judge recomputes them, and such a field is refused."""
    obs, _ = loop_verdict(CUSTOM_OPS, "fit")
    data = obs.model_dump(mode="python")
    data["loop"]["recomputed_validation_losses"] = [1.0] * 4
    writer = observations.ArrayWriter()
    with pytest.raises(observations.InvalidOutput, match="recomputed_validation_losses"):
        observations.validate_data(TrainingObservation, writer.encode(data), writer.arrays)


# ================================================================ the harness's data and recorder


def test_tiny_batches_work_like_a_loader_and_like_the_batching_class():
    recorder = LoopRecorder(misleading_after_passes=1)
    x, y = make_split([1, 2, 2], classes=3, count=10, seed=0, part=0)
    data = TinyBatches("train", x, y, 4, recorder, misleading_labels=(y + 1) % 3, seed=0)
    assert (len(data), len(data.dataset), [len(b[0]) for b in data]) == (3, 10, [4, 4, 2])
    assert torch.equal(data[2][1], y[8:])
    with pytest.raises(IndexError):
        data[3]
    data.shuffle()
    assert sorted(torch.cat([b[1] for b in data]).tolist()) == sorted(y.tolist())
    recorder.validation_passes = 1  # from now on the training labels mislead
    assert torch.equal(data[0][1], (y[data.order[:4]] + 1) % 3)


def test_tiny_split_is_learnable_and_in_range():
    x, y = make_split([1, 28, 28], classes=10, count=64, seed=0, part=0)
    assert x.shape == (64, 1, 28, 28) and 0 <= float(x.min()) and float(x.max()) <= 1
    assert sorted(set(y.tolist())) == list(range(10))
    validation_x, _ = make_split([1, 28, 28], classes=10, count=64, seed=0, part=1)
    assert not torch.equal(x, validation_x)


def test_globals_come_back_even_when_the_student_raises():
    def fit(model):
        raise RuntimeError("boom")

    fit.__globals__  # a function of this test module: its globals are this module's
    marker = object()
    globals()["training_dataset"] = marker
    try:
        with pytest.raises(RuntimeError):
            with in_globals(fit, {"training_dataset": "harness", "not_defined_here": "harness"}) as names:
                assert names == ["training_dataset"] and globals()["training_dataset"] == "harness"
                fit(None)
        assert globals()["training_dataset"] is marker and "not_defined_here" not in globals()
    finally:
        del globals()["training_dataset"]


# ================================================================ probes of the course-style loops


def loop_verdict(fields: dict[str, Any], target: str) -> tuple[TrainingObservation, Verdict]:
    the_spec = spec(**(fields | {"target": target, "partial_credit": True}))
    obs = probe(the_spec, loops_context())
    return obs, judge(the_spec, obs)


def host_recomputed(the_spec: Any, obs: TrainingObservation) -> Recomputed:
    harness = recomputed(the_spec, obs.loop, SEED, build_fixture(the_spec.network))
    assert harness is not None
    return harness


def test_the_data_makes_the_best_epoch_differ_from_the_last():
    obs, _ = loop_verdict(CUSTOM_OPS, "fit")
    losses = host_recomputed(spec(**CUSTOM_OPS), obs).sample_means
    assert len(losses) == 4 and int(np.argmin(losses)) < 3
    assert losses[3] > losses[2] > losses[1]  # the misleading epochs raise the validation loss
    assert not np.array_equal(obs.loop.parameters_by_pass[1], obs.loop.parameters_by_pass[3])


@pytest.mark.parametrize("target", ["fit", "fit_keeping_a_copied_state_dict"])
def test_custom_ops_fit_keeping_a_copy_passes(target):
    obs, v = loop_verdict(CUSTOM_OPS, target)
    assert v.fraction == 1.0, v.message
    assert obs.loop.data_in_globals == ["training_dataset", "validation_dataset"]


@pytest.mark.parametrize("target", ["fit_keeping_a_live_state_dict", "fit_keeping_the_model_itself"])
def test_custom_ops_fit_keeping_a_live_reference_fails(target):
    _, v = loop_verdict(CUSTOM_OPS, target)
    assert failed_requirements(v) == [BEST]
    assert v.message == f"{BEST}: got epoch 4's (the last)"


def test_a_best_model_that_is_none_fails_its_row_saying_so():
    _, v = loop_verdict(CUSTOM_OPS, "fit_never_setting_the_best")
    rows = [r for r in v.table if not r["ok"]]
    assert rows and all("None: no model was returned" in r["got"] for r in rows), v.table


@pytest.mark.parametrize("target, failed", [
    ("fit_validating_in_train_mode", "validation runs in eval mode"),
    ("fit_validating_with_gradients", "validation runs without gradients"),
])
def test_custom_ops_fit_with_one_mistake_fails_exactly_that_requirement(target, failed):
    _, v = loop_verdict(CUSTOM_OPS, target)
    assert failed_requirements(v) == [failed], v.message


def test_custom_ops_fit_averaging_per_batch_passes_unless_the_rubric_wants_the_mean_per_sample():
    _, v = loop_verdict(CUSTOM_OPS, "fit_averaging_validation_loss_per_batch")
    assert v.fraction == 1.0, v.message
    assert v.table[-1]["got"] == "the mean of the batch losses"
    _, v = loop_verdict(CUSTOM_OPS | {"validation_loss_readings": ["sample-mean"]},
                        "fit_averaging_validation_loss_per_batch")
    assert v.message == ("validation losses are the validation cross-entropy as the mean per sample: got the mean of "
                         "the batch losses, which this check does not accept")


def validating_with(reduce: Any, shuffle_validation: bool = False) -> Any:
    """A training function whose validation loss is ``reduce([(batch mean loss, batch size), ...])``."""
    def fit(network, train_data, validation_data, epochs):
        optimizer = torch.optim.SGD(network.parameters(), lr=0.05)
        losses = []
        for _ in range(epochs):
            network.train()
            for x, y in train_data:
                optimizer.zero_grad()
                torch.nn.functional.cross_entropy(network(x), y).backward()
                optimizer.step()
            network.eval()
            if shuffle_validation:
                validation_data.shuffle()
            with torch.no_grad():
                batches = [(torch.nn.functional.cross_entropy(network(x), y).item(), len(y))
                           for x, y in validation_data]
            losses.append(reduce(batches))
        return losses
    return fit


VALIDATING = dict(target="fit", network={"input": [1, 28, 28], "classes": 10}, epochs=2,
                  args=["$network", "$train_data", "$validation_data", "$epochs"], data={},
                  returns=["validation-losses"], validation_loss_matches=True)


@pytest.mark.parametrize("reduce, reading", [
    (lambda batches: sum(loss * n for loss, n in batches) / sum(n for _, n in batches), "the mean per sample"),
    (lambda batches: sum(loss for loss, _ in batches) / len(batches), "the mean of the batch losses"),
    (lambda batches: sum(loss for loss, _ in batches), "the sum of the batch losses"),
    (lambda batches: sum(loss * n for loss, n in batches), "the sum over the samples"),
])
def test_loops_of_every_reading_pass_and_are_named(reduce, reading):
    the_spec = spec(**VALIDATING)
    v = judge(the_spec, probe(the_spec, context(fit=validating_with(reduce))))
    assert v.fraction == 1.0, v.message
    assert v.table[-1]["got"] == reading


def test_a_loop_dividing_summed_batch_means_by_the_samples_fails_and_is_told_what_it_computed():
    the_spec = spec(**VALIDATING)
    reduce = lambda batches: sum(loss for loss, _ in batches) / sum(n for _, n in batches)  # noqa: E731
    v = judge(the_spec, probe(the_spec, context(fit=validating_with(reduce))))
    assert v.fraction < 1.0
    assert v.table[-1]["got"].startswith("the sum of the batch losses divided by the number of samples")


def test_a_validation_loss_of_no_known_reading_says_how_far_it_is_from_the_closest():
    the_spec = spec(**VALIDATING)
    reduce = lambda batches: 2 * sum(loss for loss, _ in batches) / len(batches)  # noqa: E731
    v = judge(the_spec, probe(the_spec, context(fit=validating_with(reduce))))
    assert v.fraction < 1.0
    assert v.table[-1]["got"].startswith("epoch ") and "recomputed" in v.table[-1]["got"]


def test_batch_means_follow_the_order_a_shuffled_validation_pass_was_served_in():
    the_spec = spec(**VALIDATING)
    reduce = lambda batches: sum(loss for loss, _ in batches) / len(batches)  # noqa: E731
    obs = probe(the_spec, context(fit=validating_with(reduce, shuffle_validation=True)))
    v = judge(the_spec, obs)
    assert v.fraction == 1.0, v.message
    assert v.table[-1]["got"] == "the mean of the batch losses"
    # in the order the samples were made, the batches hold other samples: another number
    x, y = make_split([1, 28, 28], 10, 20, seed=SEED, part=1)
    layout = build_fixture(the_spec.network)
    made_order = np.tile(np.arange(20), (2, 1))
    in_made_order = recompute(layout, obs.loop.parameters_by_pass, made_order, x, y, batch_size=8)
    as_served = host_recomputed(the_spec, obs)
    assert in_made_order.sample_means == pytest.approx(as_served.sample_means, rel=1e-6)
    assert abs(in_made_order.batch_means[1] - as_served.batch_means[1]) > 1e-3


def test_the_data_set_behind_a_replaced_loader_is_replaced_unless_both_splits_share_it():
    from grader.checks.training import datasets_behind

    shared = torch.utils.data.TensorDataset(torch.zeros(4, 1))
    train_set = torch.utils.data.TensorDataset(torch.zeros(3, 1))
    test_set = torch.utils.data.TensorDataset(torch.zeros(2, 1))
    harness = {split: TinyBatches(split, torch.zeros(6, 1), torch.zeros(6, dtype=torch.long), 2, LoopRecorder(1))
               for split in ("train", "validation")}

    namespace = {"trainset": train_set, "testset": test_set, "everything": shared,
                 "train_loader": torch.utils.data.DataLoader(train_set),
                 "test_loader": torch.utils.data.DataLoader(test_set)}
    exec("def train():\n    return trainset, testset, everything, train_loader, test_loader", namespace)
    fn = namespace.pop("train")
    loaders = {"train_loader": harness["train"], "test_loader": harness["validation"]}
    assert datasets_behind(fn, loaders) == {"trainset": harness["train"].dataset,
                                            "testset": harness["validation"].dataset}
    namespace |= {"train_loader": torch.utils.data.DataLoader(shared), "test_loader": torch.utils.data.DataLoader(shared)}
    assert datasets_behind(fn, loaders) == {}


def test_custom_ops_fit_leaves_the_students_data_in_place():
    before = loops().training_dataset, loops().validation_dataset
    loop_verdict(CUSTOM_OPS, "fit")
    assert (loops().training_dataset, loops().validation_dataset) == before


def test_mlp_checkpoint_loop_returning_a_copied_state_dict_passes():
    obs, v = loop_verdict(MLP_CHECKPOINT, "train_with_checkpoints")
    assert v.fraction == 1.0, v.message
    assert obs.loop.data_in_globals == []  # the data came as arguments


def test_mlp_checkpoint_loop_returning_a_live_state_dict_fails():
    _, v = loop_verdict(MLP_CHECKPOINT, "train_with_live_checkpoints")
    assert v.message == f"{BEST}: got epoch 4's (the last)"


def test_fc_vs_cnn_train_over_global_loaders_passes_in_seconds():
    loop_verdict(FC_VS_CNN, "train")  # the first optimizer step imports more of torch: not the check's cost
    start = time.process_time()  # CPU time: other processes on a shared machine do not count
    obs, v = loop_verdict(FC_VS_CNN, "train")
    assert v.fraction == 1.0, v.message
    assert obs.loop.data_in_globals == ["train_loader", "test_loader"]
    assert obs.loop.train_steps == 3 * 8  # 64 samples in batches of 8, 3 epochs
    assert time.process_time() - start < 5


def test_a_function_reading_data_the_rubric_does_not_name_is_told_so():
    fields = CUSTOM_OPS | {"data": {"labels": "one-hot", "train_globals": ["training_dataset"],
                                    "validation_globals": ["val_dataset"]}}
    _, v = loop_verdict(fields, "fit")
    assert v.table[5]["got"] == ("0 passes: the function's module defines none of the globals val_dataset "
                                 "the harness replaces")


def test_a_student_exception_inside_the_loop_is_reported_and_the_hook_removed():
    seen = {}

    def fit(model, epochs):
        seen["model"] = model
        raise ValueError("shapes do not match")

    the_spec = spec(**(CUSTOM_OPS | {"target": "fit"}))
    with pytest.raises(StudentRaised) as info:
        probe(the_spec, context(fit=fit))
    assert info.value.during == "calling fit with a small network for 4 epoch(s)"
    assert not seen["model"]._forward_pre_hooks


def test_the_loop_record_survives_the_boundary(tmp_path):
    the_spec = spec(**(CUSTOM_OPS | {"target": "fit_keeping_a_live_state_dict"}))
    obs = probe(the_spec, loops_context())
    writer = observations.ArrayWriter()
    record = {"check": "c", "status": "observed", "data": writer.encode(obs.model_dump())}
    observations.write(tmp_path, [record], writer)
    doc, arrays = observations.load(tmp_path)
    read_back = observations.validate_data(TrainingObservation, doc.records[0].data, arrays)
    assert judge(the_spec, read_back).table == judge(the_spec, obs).table  # type: ignore[arg-type]


# ================================================================ interfaces the handout leaves open

MLP_SIGNATURE = [["model", "net", "network"], ["train_loader", "trainloader", "train_data"],
                 ["val_loader", "valloader", "val_data"], ["loss_fn", "criterion", "loss"],
                 ["optimizer", "opt", "optim"], ["epochs", "num_epochs", "n_epochs"]]
MLP_RUBRIC = dict(network={"input": [1, 28, 28], "classes": 10}, epochs=4, data={},
                  args=["$network", "$train_data", "$validation_data", "$loss", "$optimizer", "$epochs"],
                  returns=["best-model", "training-losses", "validation-losses"], train_eval_modes=True,
                  validation_without_grad=True, validation_loss_matches=True)
RESMLP_SIGNATURE = [["model", "net", "network"], ["train_loader", "trainloader", "train_data"],
                    ["test_loader", "testloader", "test_data"], ["epochs", "num_epochs"], ["lr", "learning_rate"]]
RESMLP_RUBRIC = dict(network={"input": [1, 28, 28], "classes": 10}, epochs=2, data={},
                     args=["$network", "$train_data", "$validation_data", "$epochs", 0.05],
                     returns=["training-losses", "validation-accuracies"], returns_optional=True,
                     train_eval_modes=True)


def by_role_verdict(fields: dict[str, Any], target: str, signature: list[Any]) -> tuple[TrainingObservation, Verdict]:
    """Probe and judge a fixture loop found under its own name, with the rubric's signature."""
    the_spec = spec(**(fields | {"target": target, "partial_credit": True}))
    ctx = ProbeContext(namespaces=[("module", vars(loops()))],
                       targets={target: TargetSpec(name=target, signature=signature, kind="callable")})
    obs = probe(the_spec, ctx)
    return obs, judge(the_spec, obs)


def test_a_loop_taking_its_arguments_by_role_with_a_scheduler_and_a_device_returning_six_values_passes():
    """sutd's train_modelcv: loaders first, a scheduler and a device the harness gives (the
    scheduler keeps the rate); six values, of which the state dict, the numpy training losses and
    the validation losses are recognised by what they are."""
    obs, v = by_role_verdict(MLP_RUBRIC, "train_taking_arguments_by_role_returning_six_values", MLP_SIGNATURE)
    assert v.fraction == 1.0, v.message
    assert obs.read_by == "content" and obs.called.startswith("by the roles its parameters name")
    rows = {row["requirement"]: row["got"] for row in v.table}
    assert rows["returns the training losses: one number per epoch (4)"] == (
        "value 4, numpy.ndarray of 4 (equals the harness's recomputed training losses, the mean of the batch losses)")
    assert rows["returns the validation losses: one number per epoch (4)"].startswith("value 5, list of 4")
    assert rows["returns the best model (a model, a state dict or a parameter list)"] == "read from the tuple returned"


def test_a_loop_reading_a_global_dict_of_loaders_gets_the_harness_data_under_its_keys():
    """The PyTorch tutorial's train_model(model, criterion, optimizer, scheduler, num_epochs):
    `dataloaders[phase]` and `dataset_sizes[phase]` hold the harness's data while it runs; it
    returns (model, history dict), read by what they are."""
    before = loops().dataloaders, loops().dataset_sizes
    obs, v = by_role_verdict(MLP_RUBRIC, "train_model_over_a_global_dict_of_loaders", MLP_SIGNATURE)
    assert v.fraction == 1.0, v.message
    assert obs.loop.data_in_globals == ["dataloaders", "dataset_sizes"]
    assert (loops().dataloaders, loops().dataset_sizes) == before
    assert [e.label for e in obs.elements] == ["value 1", "value 2['train']", "value 2['val']"]


def test_a_returned_series_that_matches_nothing_is_taken_only_when_it_is_the_one_left():
    """A role no series equals is the one per-epoch series left (then judged as such); with two
    left, which is which cannot be told from the values, and a person decides."""
    the_spec = spec(**(MLP_RUBRIC | {"target": "train", "returns": ["any", "validation-losses"],
                                     "partial_credit": True}))
    one_left = observed([element(None, "dict"), element([9.0, 8.0, 7.0, 6.0], "numpy.ndarray"), element([1.0])],
                        loop=loop()).model_copy(update={"read_by": "content"})
    v = judged_as_recomputed(the_spec, one_left)
    rows = {row["requirement"]: row for row in v.table}
    assert v.review is None
    assert rows["returns the validation losses: one number per epoch (4)"]["ok"]
    assert not rows[EVERY_READING]["ok"]  # taken, then found not to be the validation loss
    series = [element(v).model_copy(update={"label": f"value {n}"}) for n, v in enumerate([[0.5] * 4, [0.6] * 4], 1)]
    v = judged_as_recomputed(the_spec, one_left.model_copy(update={"elements": series}))
    assert v.review == "which of value 1, value 2 holds the validation losses cannot be told from their values"
    assert v.fraction < 1


def test_a_three_tuple_where_two_values_are_asked_is_read_by_what_the_values_are():
    """(training losses, training accuracies, test accuracies): the losses and the test accuracies
    are the series the harness recomputes; the modes check has no return-count row to fail."""
    obs, v = by_role_verdict(RESMLP_RUBRIC, "train_returning_losses_and_two_accuracies", RESMLP_SIGNATURE)
    assert v.fraction == 1.0, v.message
    rows = {row["requirement"]: row["got"] for row in v.table}
    assert rows["returns the validation accuracies: one number per epoch (2)"].startswith("value 3, list of 2")
    modes = RESMLP_RUBRIC | {"returns": ["any", "any"]}
    _, v = by_role_verdict(modes, "train_returning_losses_and_two_accuracies", RESMLP_SIGNATURE)
    assert v.fraction == 1.0 and not any("returns" in row["requirement"] for row in v.table)


def test_a_loop_that_returns_nothing_is_graded_on_what_it_does_when_the_handout_asks_no_returns():
    """d2l's train_ch6(net, train_iter, test_iter, num_epochs, lr, device) prints its numbers."""
    obs, v = by_role_verdict(RESMLP_RUBRIC, "train_that_prints_and_returns_nothing", RESMLP_SIGNATURE)
    assert obs.read_by == "none" and v.fraction == 1.0, v.message
    _, v = by_role_verdict(RESMLP_RUBRIC | {"returns_optional": False}, "train_that_prints_and_returns_nothing",
                           RESMLP_SIGNATURE)
    assert v.fraction < 1 and v.message.startswith("returns the training losses")


def test_numpy_and_tensor_series_are_per_epoch_numbers():
    from grader.checks.training import _describe

    for series in (np.array([0.5, 0.25]), torch.tensor([0.5, 0.25]), [np.float32(0.5), np.array(0.25)]):
        described = _describe(series)
        assert (described.length, described.numeric, described.finite) == (2, True, True), series
        assert described.values == pytest.approx([0.5, 0.25])
    assert _describe(np.zeros((2, 2))).length is None  # a matrix is no series
