"""The ``dataset`` check: judges on hand-made observations (just inside and just outside each
requirement), probes on tiny objects and on the fixtures in tests/fixtures/contracts/."""

from __future__ import annotations

import importlib.util
import math
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from grader import checks, observations
from grader.checks.base import HarnessSeed, ProbeContext, StudentRaised, Verdict
from grader.checks.dataset import (BatchesExpect, BatchesObservation, BatchRead, BatchReading, CourseData,
                                   DatasetInfo, DatasetObservation, ItemsObservation, LabelSummary,
                                   LoaderObservation, given_classes, identify_samples, label_classes, value_hash)
from grader.data import DataRoot, synthetic
from grader.errors import GraderError
from grader.targets import TargetSpec

CONTRACTS = Path(__file__).resolve().parents[1] / "fixtures" / "contracts"
SEED = 0  # the probe contexts' seed, and so the host's


def spec(**fields: Any):
    return checks.get("dataset").Spec.model_validate({"id": "dataset-check", "kind": "dataset", "points": 2, **fields})


def judge(the_spec: Any, observation: DatasetObservation) -> Verdict:
    """The host's judgement, with the seed the plan gives a ``batches`` check (the other forms ignore it)."""
    return checks.get("dataset").judge(the_spec, observation, HarnessSeed(seed=SEED))


def probe(the_spec: Any, ctx: ProbeContext) -> DatasetObservation:
    ctx.seed_everything()
    return checks.get("dataset").probe(the_spec, ctx)


def context(**objects: Any) -> ProbeContext:
    """A probe context over one notebook-like namespace; every object is a target by its own name."""
    return ProbeContext(namespaces=[("notebook", {"__name__": __name__, **objects})],
                        targets={name: TargetSpec(name=name) for name in objects})


@cache
def fixture(name: str) -> ModuleType:
    """A module of tests/fixtures/contracts/, imported once."""
    found = importlib.util.spec_from_file_location(f"contracts_{name}", CONTRACTS / f"{name}.py")
    module = importlib.util.module_from_spec(found)  # type: ignore[arg-type]
    found.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def fixture_context(name: str) -> ProbeContext:
    """Every public name of a fixture module is a target."""
    module = fixture(name)
    return ProbeContext(namespaces=[("module", vars(module))],
                        targets={k: TargetSpec(name=k) for k in vars(module) if not k.startswith("_")})


def failed_requirements(v: Verdict) -> list[str]:
    return [row["requirement"] for row in v.table if not row["ok"]]


def test_spec_needs_exactly_one_form():
    with pytest.raises(ValueError, match="give exactly one of `items`, `loader` or `batches`"):
        spec(target="x")
    with pytest.raises(ValueError, match="give exactly one"):
        spec(target="x", items={}, loader={})


def test_spec_list_of_targets_only_for_items():
    with pytest.raises(ValueError, match="a list of targets needs the `items` form and no `call`"):
        spec(target=["a", "b"], loader={})
    assert spec(target=["a", "b"], items={}).target_refs() == ["a", "b"]


# ================================================================ items


ITEMS = dict(target="datasets", call=[None], items={"returns": 2, "item_types": ["PIL.Image.Image", "int"]})


def info(types: list[str], length: int = 60_000, **fields: Any) -> DatasetInfo:
    return DatasetInfo(type="torchvision.datasets.mnist.MNIST", length=length, item_types=[types] * 3, **fields)


def items(*datasets: DatasetInfo, returned_type: str = "tuple") -> DatasetObservation:
    return DatasetObservation(items=ItemsObservation(returned_type=returned_type, datasets=list(datasets)))


def test_items_pass():
    v = judge(spec(**ITEMS), items(*[info(["PIL.Image.Image", "int"])] * 2))
    assert v.fraction == 1.0
    assert v.message == "all 5 requirements met"
    assert [r["requirement"] for r in v.table] == [
        "returns 2 data sets", "data set 1 has at least 1 items", "data set 1 items are (PIL.Image.Image, int)",
        "data set 2 has at least 1 items", "data set 2 items are (PIL.Image.Image, int)"]


def test_items_of_the_wrong_type_fail_with_what_was_found():
    obs = items(info(["torch.Tensor", "int"]), info(["PIL.Image.Image", "int"]))
    v = judge(spec(partial_credit=True, **ITEMS), obs)
    assert v.fraction == pytest.approx(4 / 5)
    assert v.message == "data set 1 items are (PIL.Image.Image, int): got (torch.Tensor, int)"


def test_items_returning_one_data_set_instead_of_two():
    obs = items(info(["PIL.Image.Image", "int"]), returned_type="torchvision.datasets.mnist.MNIST")
    assert judge(spec(**ITEMS), obs).message == "returns 2 data sets: got 1 (torchvision.datasets.mnist.MNIST)"


@pytest.mark.parametrize("classes, ok", [
    (["split_datasets.FashionDataset", "torch.utils.data.dataset.Dataset", "typing.Generic", "builtins.object"], True),
    (["split_datasets.PlainFashionDataset", "builtins.object"], False),
])
def test_items_subclass_of(classes, ok):
    the_spec = spec(target="train_set", items={"subclass_of": "torch.utils.data.Dataset"})
    v = judge(the_spec, items(info(["torch.Tensor", "int"], classes=classes)))
    assert (v.fraction == 1.0) is ok, v.message


def test_items_deterministic_passes_when_rereads_agree():
    the_spec = spec(target="train_set", items={"deterministic": True})
    v = judge(the_spec, items(info(["torch.Tensor", "int"], read_indices=[0, 40, 79], item_hashes=[1, 2, 3],
                                   reread_hashes=[1, 2, 3])))
    assert v.fraction == 1.0, v.message


def test_items_deterministic_fails_naming_the_index_that_changed():
    the_spec = spec(target="train_set", items={"deterministic": True})
    v = judge(the_spec, items(info(["torch.Tensor", "int"], read_indices=[0, 40, 79], item_hashes=[1, 2, 3],
                                   reread_hashes=[1, 5, 3])))
    assert v.message == "data set 1 gives the same item for the same index: got item 40 differed on a second read"


def hashed(*values: int) -> DatasetInfo:
    return info(["torch.Tensor", "int"], length=len(values), sample_hashes=np.array(values, dtype=np.int64))


SPLIT = dict(target=["train_set", "val_set", "test_set"])


def test_items_disjoint_passes_without_shared_samples():
    v = judge(spec(**SPLIT, items={"disjoint": True}), items(hashed(1, 2, 3), hashed(4, 5), hashed(6)))
    assert v.fraction == 1.0
    assert v.table[-1]["got"] == "no shared sample (samples hashed: 3, 2, 1)"


def test_items_disjoint_fails_on_one_shared_sample():
    v = judge(spec(**SPLIT, items={"disjoint": True}), items(hashed(1, 2, 3), hashed(3, 5), hashed(6)))
    assert v.message == ("the 3 data sets share no sample: "
                         "got data sets 1 and 2 share 1 samples (samples hashed: 3, 2, 1)")


@pytest.mark.parametrize("shared, ok", [(1, True), (2, False)])
def test_items_disjoint_allowance_boundary(shared, ok):
    the_spec = spec(**SPLIT, items={"disjoint": True, "shared_allowed": 1})
    val = hashed(1, 5) if shared == 1 else hashed(1, 2)
    v = judge(the_spec, items(hashed(1, 2, 3), val, hashed(6)))
    assert (v.fraction == 1.0) is ok, v.message


@pytest.mark.parametrize("validation, ok", [((6, 7), True), ((4, 5), True), ((6, 9), False)])
def test_a_pair_that_may_coincide_is_accepted_as_the_same_set_or_apart_but_not_half_shared(validation, ok):
    """Validation on the test set, as one sentence of the handout tells students to do."""
    the_spec = spec(**SPLIT, items={"disjoint": True, "may_coincide": [[2, 3]]})
    v = judge(the_spec, items(hashed(1, 2, 3), hashed(*validation), hashed(6, 7)))
    assert (v.fraction == 1.0) is ok, v.message
    if validation == (6, 7):
        assert "data sets 2 and 3 are the same samples (the handout allows it)" in v.table[-1]["got"]


def test_items_probe_of_a_function_returning_two_data_sets():
    def datasets(transform):
        return [(torch.zeros(2), 1)] * 5, [(torch.zeros(2), 0)] * 3

    the_spec = spec(target="datasets", call=[None], items={"returns": 2, "item_types": ["torch.Tensor", "int"]})
    obs = probe(the_spec, context(datasets=datasets))
    assert [d.length for d in obs.items.datasets] == [5, 3]
    assert obs.items.datasets[0].item_types == [["torch.Tensor", "int"]] * 3
    assert judge(the_spec, obs).fraction == 1.0


MLP_SPLIT = {"subclass_of": "torch.utils.data.Dataset", "deterministic": True, "disjoint": True, "min_length": 20}


def test_items_probe_of_a_disjoint_train_val_test_split_passes():
    the_spec = spec(**SPLIT, items=MLP_SPLIT)
    obs = probe(the_spec, fixture_context("split_datasets"))
    assert [d.length for d in obs.items.datasets] == [80, 20, 20]
    v = judge(the_spec, obs)
    assert v.fraction == 1.0, v.message


def test_items_probe_of_a_validation_set_drawn_from_training_fails_disjointness():
    the_spec = spec(target=["train_set", "leaky_val_set", "test_set"], items=MLP_SPLIT)
    v = judge(the_spec, probe(the_spec, fixture_context("split_datasets")))
    assert v.message == ("the 3 data sets share no sample: got data sets 1 and 2 share 20 samples "
                         "(samples hashed: 80, 20, 20)")


def test_items_probe_of_a_data_set_adding_noise_on_every_read_is_not_deterministic():
    the_spec = spec(target="noisy_train_set", items={"deterministic": True})
    v = judge(the_spec, probe(the_spec, fixture_context("split_datasets")))
    assert v.message == ("data set 1 gives the same item for the same index: got item 0 differed on a second read "
                         "(3 of 3 items)")


def test_items_probe_of_a_class_not_deriving_from_dataset():
    the_spec = spec(target="plain_train_set", items={"subclass_of": "torch.utils.data.Dataset"})
    v = judge(the_spec, probe(the_spec, fixture_context("split_datasets")))
    assert v.message == "data set 1 is a torch.utils.data.Dataset: got contracts_split_datasets.PlainFashionDataset"


def test_value_hash_tells_values_dtypes_and_shapes_apart():
    x = torch.arange(4.0)
    assert value_hash(x) == value_hash(x.clone()) == value_hash(x.numpy())
    assert len({value_hash(x), value_hash(x.double()), value_hash(x.reshape(2, 2)), value_hash(x + 1)}) == 4
    assert 0 <= value_hash(x) < 2**63


# ================================================================ loader


LOADER = dict(target="train_loader",
              loader={"batch_size": 64, "input_range": [0, 1], "target_range": [0, 9], "shuffled": True})


def loader(**overrides: Any) -> DatasetObservation:
    fields = dict(returned_type="torch.utils.data.dataloader.DataLoader", batch_structure=["list[2]"],
                  batch_sizes=[64, 64, 32], input_types=["torch.Tensor"], target_types=["torch.Tensor"],
                  input_min=0.0, input_max=1.0, target_min=0.0, target_max=9.0, fingerprints=[10.0, 12.5])
    return DatasetObservation(loader=LoaderObservation(**(fields | overrides)))


def test_loader_passes():
    v = judge(spec(**LOADER), loader())
    assert v.fraction == 1.0
    assert v.message == "all 6 requirements met"
    assert [r["requirement"] for r in v.table] == [
        "batches of 64 (the last may be smaller)", "inputs are torch.Tensor", "targets are torch.Tensor",
        "inputs in [0, 1]", "targets are integers in [0, 9]", "shuffled every pass"]


def test_loader_with_wrong_batch_size():
    v = judge(spec(**LOADER), loader(batch_sizes=[32, 32, 16]))
    assert v.fraction == pytest.approx(5 / 6)
    assert v.message == "batches of 64 (the last may be smaller): got 3 batches, sizes [32] found"


def test_loader_with_inputs_out_of_range():
    assert judge(spec(**LOADER), loader(input_min=-0.42, input_max=2.8)).message == "inputs in [0, 1]: got [-0.42, 2.8]"


def test_loader_with_non_integer_targets():
    v = judge(spec(**LOADER), loader(targets_integral=False))
    assert v.message == "targets are integers in [0, 9]: got [0.0, 9.0], not integers"


def test_loader_not_shuffled_when_it_should_be():
    v = judge(spec(**LOADER), loader(fingerprints=[10.0, 10.0]))
    assert v.message == "shuffled every pass: got same order on every pass"


def test_loader_shuffled_when_it_should_not_be():
    v = judge(spec(target="test_loader", loader={"shuffled": False}), loader())
    assert v.message == "not shuffled: got order changes between passes"


def test_loader_that_does_not_yield_pairs():
    v = judge(spec(**LOADER), loader(batch_structure=["dict"]))
    assert (v.fraction, v.message) == (0.0, "batches are (inputs, targets) pairs: got dict")


ONE_HOT = "labels are one-hot rows of width 10 (0/1 values summing to 1)"


@pytest.mark.parametrize("summary, got", [
    (LabelSummary(dims=[2], widths=[10], zero_one=True, row_sum_min=1.0, row_sum_max=1.0), None),
    (LabelSummary(dims=[2], widths=[9], zero_one=True, row_sum_min=1.0, row_sum_max=1.0),
     "rows of width 9 summing to 1"),
    (LabelSummary(dims=[2], widths=[10], zero_one=True, row_sum_min=1.0, row_sum_max=2.0),
     "rows of width 10 summing to 1..2"),
    (LabelSummary(dims=[2], widths=[10], zero_one=False, row_sum_min=1.0, row_sum_max=1.0),
     "rows of width 10 summing to 1, not all 0/1"),
    (LabelSummary(dims=[1]), "1-d class indices"),
])
def test_loader_one_hot_targets(summary, got):
    v = judge(spec(target="loader", loader={"one_hot": 10}), loader(labels=summary))
    assert v.message == ("all 3 requirements met" if got is None else f"{ONE_HOT}: got {got}")


PAIRS = "a second pass serves the same samples, each with its own label"


def passes(first: list[tuple[int, int]], second: list[tuple[int, int]]) -> dict[str, Any]:
    """Loader observation fields for two passes of (sample hash, label hash) pairs."""
    arrays = [np.array(values, dtype=np.int64) for values in (*zip(*first), *zip(*second))]
    return {"sample_hashes": [arrays[0], arrays[2]], "label_hashes": [arrays[1], arrays[3]]}


def test_loader_keeps_pairs_in_another_order():
    obs = loader(**passes([(5, 0), (1, 1), (3, 2)], [(3, 2), (5, 0), (1, 1)]))
    v = judge(spec(target="loader", loader={"keeps_pairs": True}), obs)
    assert v.fraction == 1.0
    assert v.table[-1]["got"] == "yes, 3 samples"


def test_loader_one_sample_with_another_label():
    obs = loader(**passes([(5, 0), (1, 1), (3, 2)], [(3, 2), (5, 1), (1, 1)]))
    v = judge(spec(target="loader", loader={"keeps_pairs": True}), obs)
    assert v.message == f"{PAIRS}: got 1 of 3 samples came with another label than on the first pass"


def test_loader_second_pass_repeating_a_sample():
    obs = loader(**passes([(5, 0), (1, 1), (3, 2)], [(3, 2), (5, 0), (5, 0)]))
    v = judge(spec(target="loader", loader={"keeps_pairs": True}), obs)
    assert v.message == f"{PAIRS}: got 0 of the second pass's 3 samples never occurred in the first (3 served there)"


def test_loader_dropping_last_may_serve_other_samples_but_keeps_labels():
    the_spec = spec(target="loader", loader={"keeps_pairs": True, "drop_last": True, "batch_size": 2})
    obs = loader(batch_sizes=[2], dataset_length=3, **passes([(5, 0), (1, 1)], [(3, 2), (5, 0)]))
    assert judge(the_spec, obs).fraction == 1.0
    obs = loader(batch_sizes=[2], dataset_length=3, **passes([(5, 0), (1, 1)], [(3, 2), (5, 1)]))
    assert judge(the_spec, obs).message == ("each sample keeps its own label on a second pass: "
                                            "got 1 of 1 samples came with another label than on the first pass")


@pytest.mark.parametrize("served, ok", [([8, 8, 8, 6], True), ([8, 8, 8], False)])
def test_loader_last_partial_batch_kept(served, ok):
    v = judge(spec(target="loader", loader={"drop_last": False}), loader(batch_sizes=served, dataset_length=30))
    assert (v.fraction == 1.0) is ok
    if not ok:
        assert v.message == ("a pass serves every sample of loader.dataset (the last partial batch kept): "
                             "got 24 of 30 samples")


def test_loader_drop_last_needs_a_batch_size():
    with pytest.raises(ValueError, match="`drop_last: true` needs `batch_size`"):
        spec(target="loader", loader={"drop_last": True})


def tiny_loader(shuffle: bool) -> DataLoader:
    g = torch.Generator().manual_seed(1)
    data = TensorDataset(torch.rand(10, 1, 2, 2, generator=g), torch.arange(10) % 10)
    return DataLoader(data, batch_size=4, shuffle=shuffle)


@pytest.mark.parametrize("shuffle", [True, False])
def test_loader_probe_of_a_tiny_loader(shuffle):
    the_spec = spec(target="loader", loader={"batch_size": 4, "input_range": [0, 1],
                                             "target_range": [0, 9], "shuffled": shuffle})
    obs = probe(the_spec, context(loader=tiny_loader(shuffle))).loader
    assert obs.batch_sizes == [4, 4, 2]
    assert obs.batch_structure == ["list[2]"]
    assert (obs.target_min, obs.target_max) == (0.0, 9.0)
    assert len(obs.fingerprints) == 2
    assert obs.sample_hashes == []  # no second full pass unless keeps_pairs asks for it
    assert judge(the_spec, DatasetObservation(loader=obs)).fraction == 1.0


def test_loader_probe_of_a_loader_raising_mid_iteration():
    def broken():
        yield torch.zeros(2, 1), torch.zeros(2)
        raise IndexError("list index out of range")

    with pytest.raises(StudentRaised) as info:
        probe(spec(target="loader", loader={}), context(loader=broken()))
    assert info.value.during == "iterating the data loader"


FULL_CONTRACT = {"batch_size": 8, "input_range": [0, 1], "shuffled": True, "keeps_pairs": True, "drop_last": False}


def test_loader_probe_of_a_shuffling_data_loader_meets_the_full_contract():
    the_spec = spec(target="shuffled_loader", loader=FULL_CONTRACT)
    v = judge(the_spec, probe(the_spec, fixture_context("loaders")))
    assert v.fraction == 1.0, v.message


def test_loader_probe_of_a_loader_shuffling_samples_but_not_labels():
    the_spec = spec(target="labels_left_behind_loader", loader=FULL_CONTRACT)
    v = judge(the_spec, probe(the_spec, fixture_context("loaders")))
    assert failed_requirements(v) == [PAIRS]
    assert v.table[-2]["got"].endswith("samples came with another label than on the first pass")


def test_loader_probe_of_a_loader_dropping_the_last_partial_batch():
    the_spec = spec(target="loader_dropping_last", loader=FULL_CONTRACT)
    v = judge(the_spec, probe(the_spec, fixture_context("loaders")))
    assert failed_requirements(v) == [
        PAIRS, "a pass serves every sample of loader.dataset (the last partial batch kept)"]
    assert v.table[-1]["got"] == "24 of 30 samples"
    assert "of the second pass's 24 samples never occurred in the first (24 served there)" in v.table[-2]["got"]


@pytest.mark.parametrize("target, ok", [("one_hot_loader", True), ("class_index_loader", False)])
def test_loader_probe_of_one_hot_targets(target, ok):
    the_spec = spec(target=target, loader={"one_hot": 10, "target_type": "torch.Tensor"})
    v = judge(the_spec, probe(the_spec, fixture_context("loaders")))
    assert (v.fraction == 1.0) is ok, v.message


# ================================================================ batches (custom-ops' batching class)


BATCHES = {"count": 10, "batch_size": 4, "classes": 3, "sample_shape": [1, 2, 2]}
GIVEN = [int(c) for c in given_classes(BatchesExpect(**BATCHES), SEED)]  # what the host draws from the seed


def served(ids: list[int], classes: list[int], shape: list[int], index_labels: bool) -> BatchRead:
    """A read of one batch as the probe records it: sample i filled with (i + 1) / 11 (-1: a row
    of other values), each label a one-hot row (-1: all zeros) or a class index."""
    rows = [np.full(shape, (i + 1) / 11, dtype=np.float32) if i >= 0 else np.linspace(0, 1, math.prod(shape),
            dtype=np.float32).reshape(shape) for i in ids]
    labels = np.array(classes, dtype=np.int64) if index_labels else \
        np.array([np.eye(3, dtype=np.float32)[c] if c >= 0 else np.zeros(3, dtype=np.float32) for c in classes])
    return BatchRead(structure="tuple(torch.Tensor, torch.Tensor)", samples=np.stack(rows), labels=labels)


def reading(ids: list[list[int]], labels: list[list[int]] | None = None, changed_on_reread: tuple[int, ...] = (),
            shape: list[int] | None = None, index_labels: bool = False) -> BatchReading:
    labels = labels if labels is not None else [[GIVEN[i] for i in batch] for batch in ids]
    first = [served(batch, classes, shape or [1, 2, 2], index_labels) for batch, classes in zip(ids, labels)]
    second = [read.model_copy(update={"samples": read.samples[::-1].copy()}) if b in changed_on_reread else read
              for b, read in enumerate(first)]
    return BatchReading(first=first, second=second)


IN_ORDER = [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
SHUFFLED = [[9, 2, 4, 0], [7, 1, 3, 8], [6, 5]]


def batches(before: BatchReading | None = None, after: BatchReading | None = None, **fields: Any) -> DatasetObservation:
    values = dict(length=3, length_when_divisible=2, before_shuffle=before or reading(IN_ORDER),
                  after_shuffle=after or reading(SHUFFLED))
    return DatasetObservation(batches=BatchesObservation(**(values | fields)))


def batches_verdict(obs: DatasetObservation) -> Verdict:
    return judge(spec(target="Dataset", batches=BATCHES, partial_credit=True), obs)


def test_batches_pass():
    v = batches_verdict(batches())
    assert v.fraction == 1.0, v.message
    assert [r["requirement"] for r in v.table] == [
        "len() counts batches: ceil(10 / 4) = 3, and 2 for 8 samples",
        "batches are (samples, labels) tensor pairs, samples of shape [1, 2, 2]",
        "batches of 4, the last holding the remaining 2",
        "every sample is served exactly once",
        "each sample comes with its own label",
        "labels are one-hot rows of width 3 (0/1 values summing to 1)",
        "the same index gives the same batch",
        "shuffle() changes the order of the samples",
        "after shuffle(): every sample served once, with its own label",
        "after shuffle(): the same index gives the same batch"]


@pytest.mark.parametrize("length, when_divisible, ok", [(3, 2, True), (2, 2, False), (3, 3, False), (4, 2, False)])
def test_batches_len_counts_batches_both_ways(length, when_divisible, ok):
    v = batches_verdict(batches(length=length, length_when_divisible=when_divisible))
    assert ("len() counts batches: ceil(10 / 4) = 3, and 2 for 8 samples" in failed_requirements(v)) is not ok


def test_batches_last_partial_batch_dropped():
    v = batches_verdict(batches(reading(IN_ORDER[:2]), reading(SHUFFLED[:2]), length=2))
    assert v.table[2] == {"requirement": "batches of 4, the last holding the remaining 2", "got": "sizes [4, 4]",
                          "ok": False}
    assert v.table[3]["got"] == "2 of 10 samples never served"


def test_batches_last_batch_padded_to_full_size():
    v = batches_verdict(batches(reading([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 1]])))
    assert v.table[2]["got"] == "sizes [4, 4, 4]"
    assert v.table[3]["got"] == "2 served more than once"


def test_batches_rows_that_are_not_given_samples():
    ids = [[0, 1, 2, 3], [4, 5, 6, 7], [8, -1]]
    labels = [[GIVEN[i] for i in batch[:-1]] + [GIVEN[9]] if -1 in batch else [GIVEN[i] for i in batch] for batch in ids]
    v = batches_verdict(batches(reading(ids, labels=labels)))
    assert v.table[3]["got"] == ("1 of 10 samples never served; "
                                 "1 rows are not samples given to the class (values changed?)")


def test_batches_one_misaligned_label_after_shuffle():
    labels = [[GIVEN[i] for i in batch] for batch in SHUFFLED]
    labels[1][0] = (labels[1][0] + 1) % 3
    v = batches_verdict(batches(after=reading(SHUFFLED, labels=labels)))
    assert v.message == ("after shuffle(): every sample served once, with its own label: "
                         "got 1 of 10 samples came with a label other than their own")


def test_batches_labels_are_held_to_the_hosts_own_draw_not_the_runs():
    """The record holds no given labels: a run that served labels of another seed's draw, however
    consistently, serves samples with labels other than their own."""
    other = [int(c) for c in given_classes(BatchesExpect(**BATCHES), SEED + 1)]
    assert other != GIVEN
    relabelled = [[other[i] for i in batch] for batch in IN_ORDER]
    v = batches_verdict(batches(before=reading(IN_ORDER, labels=relabelled)))
    wrong = sum(other[i] != GIVEN[i] for i in range(10))
    assert v.table[4] == {"requirement": "each sample comes with its own label",
                          "got": f"{wrong} of 10 samples came with a label other than their own", "ok": False}


def test_batches_shuffle_that_changes_nothing():
    v = batches_verdict(batches(after=reading(IN_ORDER)))
    assert v.message == "shuffle() changes the order of the samples: got the same order after shuffle()"


def test_batches_same_index_different_batch():
    v = batches_verdict(batches(before=reading(IN_ORDER, changed_on_reread=(0,))))
    assert v.message == "the same index gives the same batch: got batch 0 differed on a second read (1 of 3 batches)"


def test_batches_samples_of_another_shape():
    v = batches_verdict(batches(before=reading(IN_ORDER, shape=[4])))
    assert v.message == ("batches are (samples, labels) tensor pairs, samples of shape [1, 2, 2]: "
                         "got samples of shape [4]")


def test_batches_labels_not_one_hot():
    v = batches_verdict(batches(before=reading(IN_ORDER, index_labels=True),
                                after=reading(SHUFFLED, index_labels=True)))
    assert v.message == "labels are one-hot rows of width 3 (0/1 values summing to 1): got 1-d class indices"


def test_batches_index_labels_are_not_held_to_one_hot():
    the_spec = spec(target="Dataset", batches=BATCHES | {"labels": "index"})
    obs = batches(before=reading(IN_ORDER, index_labels=True), after=reading(SHUFFLED, index_labels=True))
    assert judge(the_spec, obs).fraction == 1.0


def test_batches_values_that_are_not_a_pair_of_tensors():
    odd = BatchReading(first=[BatchRead(structure="dict(str)")] * 3, second=[BatchRead(structure="dict(str)")] * 3)
    v = batches_verdict(batches(before=odd, after=odd))
    assert v.table[1]["got"] == "dict(str)" and v.table[3]["got"] == "10 of 10 samples never served"


def test_batches_without_the_hosts_seed_is_a_grader_error():
    with pytest.raises(GraderError, match="no host seed for dataset check"):
        checks.get("dataset").judge(spec(target="Dataset", batches=BATCHES), batches(), None)


@pytest.mark.parametrize("count, batch_size", [(8, 4), (4, 8), (4, 4)])
def test_batches_spec_needs_a_last_partial_batch(count, batch_size):
    with pytest.raises(ValueError, match="not a multiple of it, so that the last partial batch is tested"):
        spec(target="Dataset", batches={"count": count, "batch_size": batch_size})


def test_identify_samples_by_fill_value():
    rows = np.stack([np.full((1, 2, 2), (i + 1) / 11, dtype=np.float32) for i in (3, 0, 9)])
    assert identify_samples(rows, 10) == [3, 0, 9]
    rows[1, 0, 0, 0] = 0.5  # no longer uniform
    rows[2] *= 255  # rescaled by the student
    assert identify_samples(rows, 10) == [3, -1, -1]


def test_label_classes_of_indices_and_one_hot_rows():
    assert label_classes(np.array([2, 0, 9])) == [2, 0, 9]
    assert label_classes(np.array([[0, 1, 0], [0.5, 0.5, 0], [1, 1, 0]], dtype=np.float32)) == [1, -1, -1]


CUSTOM_OPS = {"count": 50, "batch_size": 8, "classes": 10, "sample_shape": [1, 28, 28], "labels": "one-hot"}


def batches_probe_verdict(class_name: str) -> Verdict:
    the_spec = spec(target=class_name, batches=CUSTOM_OPS, partial_credit=True)
    return judge(the_spec, probe(the_spec, fixture_context("batching_datasets")))


def test_batches_probe_of_the_handout_done_right():
    v = batches_probe_verdict("Dataset")
    assert v.fraction == 1.0, v.message
    assert v.message == "all 10 requirements met"


RESHUFFLED_ON_READ = ["every sample is served exactly once",  # batch 0 comes from another order than the rest
                      "the same index gives the same batch",
                      "after shuffle(): every sample served once, with its own label",
                      "after shuffle(): the same index gives the same batch"]


@pytest.mark.parametrize("class_name, failed", [
    ("ShufflesSamplesNotLabels", ["after shuffle(): every sample served once, with its own label"]),
    ("DropsLastPartialBatch", ["len() counts batches: ceil(50 / 8) = 7, and 6 for 48 samples",
                               "batches of 8, the last holding the remaining 2",
                               "every sample is served exactly once",
                               "after shuffle(): every sample served once, with its own label"]),
    ("LenAlwaysPlusOne", ["len() counts batches: ceil(50 / 8) = 7, and 6 for 48 samples"]),
    ("LabelsAsClassIndices", ["labels are one-hot rows of width 10 (0/1 values summing to 1)"]),
    ("ReshufflesWhenBatchZeroIsRead", RESHUFFLED_ON_READ),
    ("ReshufflesInPlaceWhenBatchZeroIsRead", RESHUFFLED_ON_READ),
])
def test_batches_probe_of_a_subtly_wrong_class(class_name, failed):
    v = batches_probe_verdict(class_name)
    assert failed_requirements(v) == failed, v.message


def test_batches_probe_records_the_values_each_batch_served():
    the_spec = spec(target="Dataset", batches=CUSTOM_OPS)
    obs = probe(the_spec, fixture_context("batching_datasets")).batches
    assert (obs.length, obs.length_when_divisible) == (7, 6)
    first = obs.before_shuffle.first
    assert identify_samples(first[0].samples, 50) == list(range(8))
    assert identify_samples(first[-1].samples, 50) == [48, 49]
    assert label_classes(first[0].labels) == [int(c) for c in given_classes(BatchesExpect(**CUSTOM_OPS), SEED)[:8]]
    shuffled = [i for read in obs.after_shuffle.first for i in identify_samples(read.samples, 50)]
    assert sorted(shuffled) == list(range(50))


def test_batches_probe_of_a_constructor_that_raises():
    class Broken:
        def __init__(self, samples, labels, batch_size):
            raise TypeError("expected numpy arrays")

    with pytest.raises(StudentRaised) as info:
        probe(spec(target="Broken", batches=CUSTOM_OPS), context(Broken=Broken))
    assert info.value.during == "building Broken from 50 samples, batch size 8"


def through_the_boundary(obs: DatasetObservation, folder: Path) -> DatasetObservation:
    """The observation as the host reads it back: JSON plus npz, validated strictly."""
    writer = observations.ArrayWriter()
    record = {"check": "c", "status": "observed", "data": writer.encode(obs.model_dump())}
    observations.write(folder, [record], writer)
    doc, arrays = observations.load(folder)
    return observations.validate_data(DatasetObservation, doc.records[0].data, arrays)  # type: ignore[return-value]


@pytest.mark.parametrize("module, fields", [
    ("batching_datasets", dict(target="Dataset", batches=CUSTOM_OPS)),
    ("loaders", dict(target="shuffled_loader", loader=FULL_CONTRACT)),
    ("split_datasets", dict(SPLIT, items=MLP_SPLIT)),
])
def test_every_form_survives_the_boundary(module, fields, tmp_path):
    the_spec = spec(**fields)
    obs = probe(the_spec, fixture_context(module))
    assert judge(the_spec, through_the_boundary(obs, tmp_path)).table == judge(the_spec, obs).table


# ================================================================ the course's data, as the host holds it


@pytest.fixture(scope="module")
def mnist_root(tmp_path_factory) -> DataRoot:
    """Synthetic MNIST in torchvision's layout (1,200 training and 300 test images), as a batch gets it."""
    return DataRoot(synthetic.ensure("mnist", tmp_path_factory.mktemp("data")), "synthetic", "mnist")


@pytest.fixture(scope="module")
def mnist_course(mnist_root) -> CourseData:
    return CourseData.read(mnist_root, with_images=True)  # type: ignore[return-value]


def torchvision_mnist(root: DataRoot, train: bool) -> Any:
    import torchvision

    return torchvision.datasets.MNIST(str(root.path), train=train, transform=None)


def test_the_host_reads_each_splits_class_counts_from_the_files(mnist_root, mnist_course):
    for split, train in (("train", True), ("test", False)):
        labels = torchvision_mnist(mnist_root, train).targets.numpy()
        assert mnist_course.class_counts[split] == tuple(np.bincount(labels, minlength=10))
    assert sum(mnist_course.class_counts["train"]) == 1200
    assert CourseData.read(DataRoot(None, "none"), with_images=True) is None


def test_the_plan_gives_items_and_loader_checks_the_course_data_and_batches_the_seed(mnist_root):
    kind = checks.get("dataset")
    raw = kind.host_truth(spec(**ITEMS), mnist_root)
    transformed = kind.host_truth(spec(target="s", items={"item_types": ["torch.Tensor", "int"]}), mnist_root)
    assert raw.image_labels and not transformed.image_labels  # images are hashed only where they can match
    assert kind.host_truth(spec(**LOADER), mnist_root).class_counts == raw.class_counts
    assert kind.host_truth(spec(target="Dataset", batches=CUSTOM_OPS), mnist_root) is None


def test_torchvisions_untransformed_splits_are_the_courses_own_images(mnist_root, mnist_course):
    the_spec = spec(**ITEMS)
    obs = probe(the_spec, context(datasets=lambda transform: (torchvision_mnist(mnist_root, True),
                                                              torchvision_mnist(mnist_root, False))))
    v = checks.get("dataset").judge(the_spec, obs, mnist_course)
    assert v.fraction == 1.0 and v.review is None
    assert [r["got"] for r in v.table if "own images" in r["requirement"]] == ["yes, 3 items read"] * 2


def made_up_images(count: int) -> list[tuple[Any, int]]:
    """What a student who never loaded the data could hand in: PIL images of noise, labelled 0-9."""
    from PIL import Image

    rng = np.random.default_rng(0)
    return [(Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8), mode="L"), i % 10) for i in range(count)]


def test_made_up_images_of_the_right_types_fail_the_course_rows_and_go_to_a_person(mnist_course):
    the_spec = spec(partial_credit=True, **ITEMS)
    obs = probe(the_spec, context(datasets=lambda transform: (made_up_images(1200), made_up_images(300))))
    v = checks.get("dataset").judge(the_spec, obs, mnist_course)
    assert failed_requirements(v) == ["data set 1 holds mnist's own images with their labels",
                                      "data set 2 holds mnist's own images with their labels"]
    assert "item 0 is not an image of mnist" in v.message
    assert v.review is not None and "a person may decide" in v.review


def test_the_courses_images_with_other_labels_fail(mnist_root, mnist_course):
    class Relabelled(torch.utils.data.Dataset):
        def __init__(self, train):
            self.inner = torchvision_mnist(mnist_root, train)

        def __len__(self):
            return len(self.inner)

        def __getitem__(self, index):
            image, label = self.inner[index]
            return image, (label + 1) % 10

    the_spec = spec(**ITEMS)
    obs = probe(the_spec, context(datasets=lambda transform: (Relabelled(True), Relabelled(False))))
    v = checks.get("dataset").judge(the_spec, obs, mnist_course)
    assert "item 0 has label" in v.message and v.fraction < 1


def labels_served(classes: list[int], batch: int = 64) -> DatasetObservation:
    """A loader's observation whose first pass served ``classes``, in batches of ``batch``."""
    sizes = [batch] * (len(classes) // batch) + ([len(classes) % batch] if len(classes) % batch else [])
    return loader(batch_sizes=sizes, served_classes=np.array(classes, dtype=np.int64))


def all_labels(course: CourseData, split: str) -> list[int]:
    return [c for c, count in enumerate(course.class_counts[split]) for _ in range(count)]


def course_row(v: Verdict) -> dict[str, Any]:
    return next(r for r in v.table if "labels" in r["requirement"] and "pass serves" in r["requirement"])


@pytest.mark.parametrize("drop, ok", [(0, True), (63, True), (64, False), (300, False)])
def test_a_loader_over_the_whole_split_may_drop_less_than_a_batch(mnist_course, drop, ok):
    the_spec = spec(target="train_loader", loader={"split": "train"})
    classes = all_labels(mnist_course, "train")
    v = checks.get("dataset").judge(the_spec, labels_served(classes[drop:]), mnist_course)
    assert course_row(v)["ok"] == ok, course_row(v)
    assert (v.review is None) == ok


def test_a_loader_over_the_whole_split_serving_one_class_too_often_fails(mnist_course):
    classes = all_labels(mnist_course, "train")
    classes[0] = 9  # as many labels, one class one too many
    v = checks.get("dataset").judge(spec(target="train_loader", loader={"split": "train"}),
                                    labels_served(classes), mnist_course)
    assert course_row(v)["got"] == f"1,200 labels; class 9 served {mnist_course.class_counts['train'][9] + 1} " \
                                   f"times, the split holds {mnist_course.class_counts['train'][9]}"


@pytest.mark.parametrize("classes, got", [
    ("test split", "yes: 300 labels, the test split's"),
    ("half of train", "yes: 600 labels, within the train split"),
    ("train twice", "10 of 10 classes served more often than any split holds them"),
    ("unnamed", "2 of 600 labels name no class"),
    ("class 10", "class 10 served; mnist has 10 classes"),
    ("none", "no labels served"),
])
def test_a_loader_over_part_of_a_split_serves_no_class_more_often_than_a_split_holds_it(mnist_course, classes, got):
    train = all_labels(mnist_course, "train")
    served = {"test split": all_labels(mnist_course, "test"), "half of train": train[::2], "train twice": train * 2,
              "unnamed": train[::2][:-2] + [-1, -1], "class 10": train[::2][:-1] + [10], "none": []}[classes]
    v = checks.get("dataset").judge(spec(target="train_loader", loader={}), labels_served(served), mnist_course)
    assert course_row(v)["got"].startswith(got)


def test_a_record_whose_labels_do_not_add_up_to_the_batches_served_fails(mnist_course):
    obs = loader(batch_sizes=[64, 64], served_classes=np.zeros(100, dtype=np.int64))
    v = checks.get("dataset").judge(spec(target="train_loader", loader={}), obs, mnist_course)
    assert course_row(v) == {"requirement": "a pass serves mnist's labels (at most a split's count of each class)",
                             "got": "100 labels recorded for 128 samples served", "ok": False}


def test_a_record_of_labels_that_are_not_class_indices_fails(mnist_course):
    obs = loader(batch_sizes=[2], served_classes=np.array([0.5, 1.0]))
    v = checks.get("dataset").judge(spec(target="train_loader", loader={}), obs, mnist_course)
    assert course_row(v)["got"] == "labels recorded as float64 of shape [2], not one class index each"


@pytest.mark.parametrize("first, ok", [("the split's first 192", True), ("192 of class 0", False)])
def test_a_pass_cut_at_max_batches_is_held_to_within_a_split_only(mnist_course, first, ok):
    classes = all_labels(mnist_course, "train")[:192] if first == "the split's first 192" else [0] * 192
    the_spec = spec(target="train_loader", loader={"split": "train"}, max_batches=3)
    v = checks.get("dataset").judge(the_spec, labels_served(classes), mnist_course)
    assert course_row(v)["requirement"] == "a pass serves mnist's labels (at most a split's count of each class)"
    assert course_row(v)["ok"] == ok, course_row(v)  # the train split holds 116 of class 0


def test_the_loader_probe_records_each_served_label_as_its_class(mnist_root, mnist_course):
    import torchvision
    from torchvision import transforms

    train = torchvision.datasets.MNIST(str(mnist_root.path), train=True, transform=transforms.ToTensor())
    one_hot = [(x, torch.nn.functional.one_hot(torch.tensor(y), 10).float()) for x, y in list(train)[:100]]
    the_spec = spec(target="train_loader", loader={"split": "train", "batch_size": 64}, partial_credit=True)
    for loader_obj, whole in ((DataLoader(train, batch_size=64, shuffle=True), True),
                              (DataLoader(one_hot, batch_size=64), False)):
        obs = probe(the_spec, context(train_loader=loader_obj))
        assert obs.loader.served_classes.size == sum(obs.loader.batch_sizes)
        v = checks.get("dataset").judge(the_spec, obs, mnist_course)
        assert course_row(v)["ok"] == whole, course_row(v)


def split_of(course: CourseData, split: str, every: int = 1, copies: int = 1) -> DatasetInfo:
    """A transformed data set as the probe records it for ``disjoint``: every item hashed, with its label."""
    labels = np.array(all_labels(course, split)[::every] * copies, dtype=np.int64)
    return DatasetInfo(type="torch.utils.data.dataset.Subset", length=labels.size, item_types=[["torch.Tensor", "int"]] * 3,
                       sample_hashes=np.arange(labels.size, dtype=np.int64) + 1000 * copies, sample_labels=labels)


def test_transformed_data_sets_hashed_whole_serve_no_class_more_often_than_a_split(mnist_course):
    the_spec = spec(**SPLIT, items={"disjoint": True})
    honest = items(split_of(mnist_course, "train", every=2), split_of(mnist_course, "train", every=3),
                   split_of(mnist_course, "test"))
    v = checks.get("dataset").judge(the_spec, honest, mnist_course)
    assert [r["got"] for r in v.table if "holds mnist's labels" in r["requirement"]] == [
        "yes: 600 labels, within the train split", "yes: 400 labels, within the train split",
        "yes: 300 labels, the test split's"]
    doubled = items(split_of(mnist_course, "train", copies=2), split_of(mnist_course, "test"))
    v = checks.get("dataset").judge(the_spec, doubled, mnist_course)
    assert failed_requirements(v) == ["data set 1 holds mnist's labels (at most a split's count of each class)"]
    assert v.review is not None


def test_a_data_set_sampled_rather_than_hashed_whole_is_held_to_a_split_too(mnist_course):
    """Evenly spaced items are a part of the data set: no class of theirs can outnumber a split's."""
    sampled = split_of(mnist_course, "train", copies=2).model_copy(update={"length": 60_000})
    v = checks.get("dataset").judge(spec(**SPLIT, items={"disjoint": True}), items(sampled, sampled), mnist_course)
    assert failed_requirements(v) == ["the 2 data sets share no sample",
                                      "data set 1 holds mnist's labels (at most a split's count of each class)",
                                      "data set 2 holds mnist's labels (at most a split's count of each class)"]


def test_a_record_without_the_hashed_items_labels_fails_rather_than_skips_the_row(mnist_course):
    unlabelled = split_of(mnist_course, "test").model_copy(update={"sample_labels": None})
    v = checks.get("dataset").judge(spec(**SPLIT, items={"disjoint": True}), items(unlabelled), mnist_course)
    assert "data set 1 holds mnist's labels (at most a split's count of each class): got no label recorded for each " \
           "sample hashed" in v.message


@pytest.mark.parametrize("label, cls", [(3, 3), (np.int64(4), 4), (3.0, 3), (torch.tensor(5), 5), (torch.tensor([6]), 6),
                                        (torch.nn.functional.one_hot(torch.tensor(7), 10).float(), 7), (2.5, -1),
                                        ("cat", -1), (torch.tensor([1, 2]), -1)])
def test_an_items_label_is_read_as_the_class_it_names(label, cls):
    from grader.checks.dataset import _label_of

    assert _label_of((torch.zeros(2), label)) == cls


def test_the_split_probe_records_each_hashed_items_label(mnist_root, mnist_course):
    import torchvision
    from torchvision import transforms

    train = torchvision.datasets.MNIST(str(mnist_root.path), train=True, transform=transforms.ToTensor())
    test = torchvision.datasets.MNIST(str(mnist_root.path), train=False, transform=transforms.ToTensor())
    train_set, val_set = torch.utils.data.random_split(train, [1000, 200], generator=torch.Generator().manual_seed(0))
    the_spec = spec(**SPLIT, items={"disjoint": True, "may_coincide": [[2, 3]]})
    obs = probe(the_spec, context(train_set=train_set, val_set=val_set, test_set=test))
    assert [ds.sample_labels.size for ds in obs.items.datasets] == [1000, 200, 300]
    v = checks.get("dataset").judge(the_spec, obs, mnist_course)
    assert v.fraction == 1.0, v.message
