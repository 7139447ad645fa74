"""grader.targets: finding the student object a check is about."""

from __future__ import annotations

import types

import pytest
import torch

from grader.targets import TargetSpec, candidates, describe, parameter_names, resolve

OWN = __name__  # functions defined here have this __module__: they count as "the student's own"


def ns(label: str = "notebook", **objects):
    """A namespace as the probe side sees it: (label, globals) with the student's module name."""
    return (label, {"__name__": OWN, **objects})


def fully_connected(D, K, O):
    return ("fully_connected", D, K, O)


def fc_net(D, K, O):
    return ("fc_net", D, K, O)


def make_fc(d, k, o, activation="relu"):
    return ("make_fc", d, k, o)


def needs_more(D, K, O, dropout):
    return ("needs_more", D, K, O)


def needs_keyword(D, K, O, *, activation):
    return ("needs_keyword", D, K, O)


def train_model(model, num_epochs, learning_rate=0.1):
    return model


class ExampleModel(torch.nn.Module):
    def __init__(self, D, K, O):
        super().__init__()


# ---------------------------------------------------------------- spec


def test_target_spec_needs_a_way_to_find():
    with pytest.raises(ValueError, match="give at least one of name, aliases, signature or contract"):
        TargetSpec(kind="callable")


def test_label_lists_names_and_signature():
    spec = TargetSpec(name="fully_connected", aliases=["fc_net", "fc"], signature=["D", ["K", "hidden"], "O"])
    assert spec.label() == "fully_connected (or fc_net, fc) or any callable taking (D, K|hidden, O)"


# ---------------------------------------------------------------- by name, by alias


def test_resolve_by_exact_name():
    r = resolve(TargetSpec(name="fully_connected"), [ns(fully_connected=fully_connected, fc_net=fc_net)])
    assert r.ok and r.obj is fully_connected
    assert (r.found_as, r.how) == ("fully_connected", "name")


def test_name_wins_over_aliases():
    spec = TargetSpec(name="fully_connected", aliases=["fc_net"])
    r = resolve(spec, [ns(fully_connected=fully_connected, fc_net=fc_net)])
    assert r.obj is fully_connected and r.how == "name"


def test_aliases_are_tried_in_order():
    spec = TargetSpec(aliases=["fc", "fc_net", "fully_connected"])
    r = resolve(spec, [ns(fully_connected=fully_connected, fc_net=fc_net)])
    assert r.obj is fc_net
    assert (r.found_as, r.how) == ("fc_net", "alias")


def test_name_or_alias_of_the_wrong_kind_is_skipped():
    spec = TargetSpec(aliases=["fc", "fc_net"], kind="callable")
    r = resolve(spec, [ns(fc=42, fc_net=fc_net)])
    assert r.obj is fc_net


# ---------------------------------------------------------------- by signature


def test_resolve_by_signature():
    r = resolve(TargetSpec(name="fc", signature=["D", "K", "O"]), [ns(whatever=fully_connected)])
    assert r.obj is fully_connected
    assert (r.found_as, r.how) == ("whatever", "signature")


def test_signature_is_case_insensitive_and_allows_extra_params_with_defaults():
    r = resolve(TargetSpec(signature=["D", "K", "O"]), [ns(make_fc=make_fc)])
    assert r.obj is make_fc


def test_signature_alternatives_per_position():
    spec = TargetSpec(signature=[["network", "net", "model"], ["epochs", "num_epochs"], ["lr", "learning_rate", "eta"]])
    r = resolve(spec, [ns(train_model=train_model)])
    assert r.obj is train_model and r.how == "signature"


def test_signature_with_extra_param_without_default_does_not_match():
    r = resolve(TargetSpec(signature=["D", "K", "O"]), [ns(needs_more=needs_more)])
    assert r.problem == "missing"


def test_signature_with_required_keyword_only_param_does_not_match():
    # needs_keyword(784, 100, 10) would raise TypeError: it cannot be called with the rubric's arguments
    r = resolve(TargetSpec(signature=["D", "K", "O"]), [ns(needs_keyword=needs_keyword)])
    assert r.problem == "missing"


def test_signature_with_too_few_params_does_not_match():
    def two(D, K):
        return None

    two.__module__ = OWN
    assert resolve(TargetSpec(signature=["D", "K", "O"]), [ns(two=two)]).problem == "missing"


def test_signature_matches_a_class_by_its_constructor():
    r = resolve(TargetSpec(signature=["D", "K", "O"], kind="class"), [ns(ExampleModel=ExampleModel)])
    assert r.obj is ExampleModel


def test_signature_ignores_imported_callables():
    imported = types.FunctionType(fully_connected.__code__, {}, "fully_connected")
    imported.__module__ = "some_library"
    r = resolve(TargetSpec(signature=["D", "K", "O"]), [ns(fully_connected=imported)])
    assert r.problem == "missing"


def test_two_signature_matches_are_ambiguous():
    r = resolve(TargetSpec(signature=["D", "K", "O"]), [ns(fully_connected=fully_connected, fc_net=fc_net)])
    assert r.problem == "ambiguous"
    assert sorted(r.candidates) == ["fc_net(D, K, O)", "fully_connected(D, K, O)"]


# ---------------------------------------------------------------- several namespaces (module folders)


def test_same_name_with_different_objects_in_two_modules_is_ambiguous():
    spaces = [ns("task1", fc=fully_connected), ns("task2", fc=fc_net)]
    r = resolve(TargetSpec(name="fc"), spaces)
    assert not r.ok and r.problem == "ambiguous"
    assert r.candidates == ["task1.fc", "task2.fc"]
    assert r.obj is None


def test_same_object_imported_into_two_modules_is_not_ambiguous():
    spaces = [ns("task1", fc=fully_connected), ns("task2", fc=fully_connected)]
    r = resolve(TargetSpec(name="fc"), spaces)
    assert r.ok and r.obj is fully_connected
    assert r.found_as == "task1.fc"


def test_found_as_names_the_module_when_there_are_several():
    spaces = [ns("task1", A=1), ns("task2", fc=fully_connected)]
    r = resolve(TargetSpec(name="fc"), spaces)
    assert r.found_as == "task2.fc"


def test_qualified_name_addresses_one_module():
    task2 = types.ModuleType("task2")
    task2.ExampleModel = ExampleModel
    spaces = [ns("task1", task2=task2, ExampleModel=fc_net), ns("task2", ExampleModel=ExampleModel)]
    r = resolve(TargetSpec(name="task2.ExampleModel", kind="class"), spaces)
    assert r.ok and r.obj is ExampleModel


def test_qualified_name_by_module_label_alone():
    spaces = [ns("task1", ExampleModel=fc_net), ns("task2", ExampleModel=ExampleModel)]
    r = resolve(TargetSpec(name="task2.ExampleModel"), spaces)
    assert r.ok and r.obj is ExampleModel
    assert r.found_as == "task2.ExampleModel"


def test_dotted_name_reaches_a_class_attribute():
    class Config:
        flatten_size = 3136

    r = resolve(TargetSpec(name="Config.flatten_size", kind="value"), [ns(Config=Config)])
    assert r.obj == 3136


# ---------------------------------------------------------------- kinds


def test_kind_class_rejects_functions():
    assert resolve(TargetSpec(name="fc", kind="class"), [ns(fc=fully_connected)]).problem == "missing"
    assert resolve(TargetSpec(name="fc", kind="class"), [ns(fc=ExampleModel)]).obj is ExampleModel


def test_kind_value_rejects_callables_and_modules():
    assert resolve(TargetSpec(name="x", kind="value"), [ns(x=fully_connected)]).problem == "missing"
    assert resolve(TargetSpec(name="x", kind="value"), [ns(x=types.ModuleType("x"))]).problem == "missing"
    assert resolve(TargetSpec(name="x", kind="value"), [ns(x=3136)]).obj == 3136


def test_kind_callable_rejects_values_and_modules():
    assert resolve(TargetSpec(name="x", kind="callable"), [ns(x=3136)]).problem == "missing"
    assert resolve(TargetSpec(name="x", kind="callable"), [ns(x=types.ModuleType("x"))]).problem == "missing"
    assert resolve(TargetSpec(name="x", kind="callable"), [ns(x=ExampleModel)]).obj is ExampleModel


# ---------------------------------------------------------------- missing: candidates


def test_missing_target_lists_what_the_student_defined():
    space = ns(my_fc=fully_connected, flatten=3136, Linear=torch.nn.Linear, nn=torch.nn, torch=torch,
               _private=1, In=[], Out={}, get_ipython=lambda: None)
    r = resolve(TargetSpec(name="fc_network", aliases=["fc"]), [space])
    assert r.problem == "missing" and r.obj is None
    assert r.candidates == ["flatten: int", "my_fc(D, K, O)"]


def test_missing_target_lists_candidates_of_its_kind_only():
    space = ns(my_fc=fully_connected, flatten=3136, Model=ExampleModel)
    r = resolve(TargetSpec(name="fc_network", kind="callable"), [space])
    assert r.candidates == ["Model(D, K, O)", "my_fc(D, K, O)"]


def test_missing_target_candidates_are_capped():
    space = ns(**{f"v{i:02d}": i for i in range(30)})
    assert len(resolve(TargetSpec(name="nope"), [space]).candidates) == 20


def test_candidates_across_modules_are_qualified():
    spaces = [ns("task1", helper=fully_connected), ns("task2", size=3)]
    assert candidates(spaces) == ["task1.helper(D, K, O)", "task2.size: int"]


# ---------------------------------------------------------------- helpers


def test_parameter_names_skip_self_and_keywords():
    assert parameter_names(ExampleModel) == ["D", "K", "O"]
    assert parameter_names(needs_keyword) == ["D", "K", "O"]
    assert parameter_names(len) == ["obj"]


def test_describe_callable_and_value():
    assert describe("fc", fully_connected) == "fc(D, K, O)"
    assert describe("n", 3.5) == "n: float"


# ---------------------------------------------------------------- how real notebooks name things


def test_a_built_model_named_like_the_builder_is_not_the_builder():
    """`fc = dense_net(784, 100, 10)` must not shadow the builder `dense_net(D, K, O)`."""
    import torch

    def dense_net(D, K, O):
        return torch.nn.Linear(D, O)

    dense_net.__module__ = "__main__"
    ns = {"__name__": "__main__", "dense_net": dense_net, "fc": dense_net(4, 3, 2)}
    found = resolve(TargetSpec(aliases=["fully_connected", "fc"], signature=["D", "K", "O"], kind="callable"),
                    [("notebook", ns)])
    assert (found.found_as, found.how) == ("dense_net", "signature")


def test_a_model_class_beside_its_builder_function_resolves_to_the_function():
    import torch

    class DigitCNN(torch.nn.Module):
        def __init__(self, Q1, Q2, O):
            super().__init__()

    def conv_net_builder(Q1, Q2, O):
        return DigitCNN(Q1, Q2, O)

    for obj in (DigitCNN, conv_net_builder):
        obj.__module__ = "__main__"
    ns = {"__name__": "__main__", "DigitCNN": DigitCNN, "conv_net_builder": conv_net_builder}
    found = resolve(TargetSpec(aliases=["convolutional"], signature=["Q1", "Q2", "O"], kind="callable"),
                    [("notebook", ns)])
    assert (found.found_as, found.how) == ("conv_net_builder", "signature")


# ---------------------------------------------------------------- as a careful human grader would


class TwoLayer(torch.nn.Module):
    def __init__(self, d_in, hidden, d_out):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(d_in, hidden), torch.nn.Linear(hidden, d_out))

    def forward(self, x):
        return self.net(x)


class WrongOutput(torch.nn.Module):
    def __init__(self, d_in, hidden, d_out):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(d_in, hidden))

    def forward(self, x):
        return self.net(x)


def plot_curves(losses, accuracies, title):
    raise AssertionError("a candidate that is not a model must not be mistaken for one")


FITS = {"args": [784, 100, 10], "input": [2, 1, 28, 28], "output": [2, 10]}


def test_a_qualified_alias_wins_over_a_bare_name_that_several_modules_define():
    """A student's task3.py with its own ExampleModel: the rubric's `task2.ExampleModel` decides."""
    spaces = [ns("task2", ExampleModel=ExampleModel), ns("task3", ExampleModel=TwoLayer)]
    r = resolve(TargetSpec(name="ExampleModel", aliases=["task2.ExampleModel"], kind="class"), spaces)
    assert r.ok and r.obj is ExampleModel and r.found_as == "task2.ExampleModel"


def test_a_name_defined_in_one_module_and_held_by_another_is_the_defining_modules():
    elsewhere = types.new_class("ExampleModel")
    elsewhere.__module__ = "a_library"
    spaces = [ns("task2", ExampleModel=ExampleModel), ("task3", {"__name__": "task3", "ExampleModel": elsewhere})]
    r = resolve(TargetSpec(name="ExampleModel", kind="class"), spaces)
    assert r.ok and r.obj is ExampleModel and r.found_as == "task2.ExampleModel"


def test_a_callable_with_its_own_parameter_names_resolves_by_arity():
    def build_network(d_in, hidden, d_out):
        return None

    build_network.__module__ = OWN
    r = resolve(TargetSpec(signature=["D", "K", "O"], kind="callable"),
                [ns(build_network=build_network, needs_more=needs_more)])
    assert r.ok and r.obj is build_network and r.how == "arity"


def test_several_callables_of_the_right_arity_are_decided_by_the_contract():
    plot_curves.__module__ = OWN
    spaces = [ns(TwoLayer=TwoLayer, WrongOutput=WrongOutput, plot_curves=plot_curves)]
    unsettled = resolve(TargetSpec(signature=["D", "K", "O"], kind="callable"), spaces)
    assert unsettled.problem == "ambiguous" and len(unsettled.candidates) == 3
    r = resolve(TargetSpec(signature=["D", "K", "O"], kind="callable", contract=FITS), spaces)
    assert r.ok and r.obj is TwoLayer and r.how == "behaviour"


def test_a_class_of_its_own_name_resolves_by_behaviour_when_no_name_fits():
    """A class named as the student liked, with exactly the handout's interface, is measured."""
    r = resolve(TargetSpec(name="Model", kind="class", contract=FITS), [ns(TwoLayer=TwoLayer, WrongOutput=WrongOutput)])
    assert r.ok and r.obj is TwoLayer and r.how == "behaviour"


def test_two_candidates_that_both_meet_the_contract_stay_ambiguous_naming_both():
    class Another(TwoLayer):
        pass

    Another.__module__ = OWN
    r = resolve(TargetSpec(name="Model", kind="class", contract=FITS), [ns(TwoLayer=TwoLayer, Another=Another)])
    assert r.problem == "ambiguous" and all("maps [2, 1, 28, 28] to [2, 10]" in c for c in r.candidates)


def test_a_built_model_counts_where_the_target_accepts_instances_and_is_copied_when_built():
    from grader.targets import build

    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    spec = TargetSpec(name="torch_network", kind="callable", instances=True, contract={"input": [2, 1, 28, 28],
                                                                                        "output": [2, 10]})
    r = resolve(spec, [ns(net=net)])
    assert r.ok and r.obj is net and r.how == "behaviour"
    with torch.no_grad():
        net[1].weight.fill_(0.5)  # as if the notebook had trained it
    copy = build(r.obj, [])
    assert copy is not net and copy[1].weight.shape == net[1].weight.shape
    assert not torch.equal(copy[1].weight, net[1].weight) and (net[1].weight == 0.5).all()
    with pytest.raises(TypeError, match="needs to build it with arguments"):
        build(net, [784])


def test_an_instructors_mapping_replaces_every_step_and_says_so():
    spaces = [ns(fully_connected=fully_connected, mine=fc_net)]
    r = resolve(TargetSpec(name="fully_connected"), spaces, mapped="mine")
    assert r.ok and r.obj is fc_net and r.how == "instructor"
    wrong = resolve(TargetSpec(name="fully_connected"), spaces, mapped="typo")
    assert wrong.problem == "missing" and "'typo', which is not defined" in wrong.candidates[0]


def test_a_contract_tells_two_networks_of_the_same_interface_apart_by_their_layers():
    """custom-ops: the network of hand-written ops and the torch.nn one map the same shapes."""

    class Conv2d(torch.nn.Module):  # the student's own op, named like torch's
        def __init__(self):
            super().__init__()
            self.inner = torch.nn.Identity()

        def forward(self, x):
            return x

    Conv2d.__module__ = OWN
    custom = torch.nn.Sequential(Conv2d(), torch.nn.Flatten(), torch.nn.LazyLinear(10))
    builtin = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1), torch.nn.Flatten(), torch.nn.LazyLinear(10))
    shapes = {"input": [2, 1, 28, 28], "output": [2, 10]}
    spaces = [ns(custom=custom, builtin=builtin)]
    torch_spec = TargetSpec(name="torch_network", instances=True,
                            contract={**shapes, "contains": ["torch.nn.modules.conv.Conv2d"]})
    own_spec = TargetSpec(name="custom_network", instances=True,
                          contract={**shapes, "contains": ["*.Conv2d"], "excludes": ["torch.nn.modules.conv.*"]})
    assert resolve(torch_spec, spaces).obj is builtin
    assert resolve(own_spec, spaces).obj is custom
    assert "containing torch.nn.modules.conv.Conv2d" in torch_spec.label()


def test_a_listed_name_that_cannot_take_the_handouts_arguments_is_passed_over():
    """mlp-checkpoint lists `train` for the whole training loop; a one-epoch `train(model, loader)`
    of the same name is not it, and the loop is then found by the roles its parameters name."""
    def train(model, loader):
        return None

    def run_epochs(net, trainloader, validloader, criterion, opt, n_epochs):
        return None

    train.__module__ = run_epochs.__module__ = OWN
    spec = TargetSpec(aliases=["train"], signature=["model", "train_loader", "val_loader", "loss_fn", "optimizer",
                                                    "epochs"], kind="callable")
    r = resolve(spec, [ns(train=train, run_epochs=run_epochs)])
    assert r.ok and r.obj is run_epochs and r.how == "signature"


def test_arguments_follow_the_roles_the_students_parameter_names_give():
    from grader.targets import by_role

    wanted = [["in_channels", "in_ch"], ["growth_rate", "k"], ["num_layers", "n_layers", "num_convs"]]

    def dense_block(num_convs, in_ch, k):
        return None

    def in_order(in_channels, growth_rate, num_layers):
        return None

    def unnamed(a, b, c):
        return None

    assert by_role(dense_block, wanted, [4, 6, 3]) == [3, 4, 6]
    assert by_role(in_order, wanted, [4, 6, 3]) is None  # already the handout's order
    assert by_role(unnamed, wanted, [4, 6, 3]) is None  # no roles to read: positions stand


def test_a_trained_network_beside_its_builder_is_not_taken_for_a_second_builder():
    """`m2 = pytorch_cnn()` trained in the notebook: the builder is the target, not a tie."""
    def pytorch_cnn():
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))

    pytorch_cnn.__module__ = OWN
    m2 = pytorch_cnn()
    spec = TargetSpec(name="torch_network", instances=True, contract={"input": [2, 1, 28, 28], "output": [2, 10]})
    r = resolve(spec, [ns(pytorch_cnn=pytorch_cnn, m2=m2)])
    assert r.ok and r.obj is pytorch_cnn and r.how == "behaviour"


def test_a_listed_name_is_found_in_another_case_after_every_exact_spelling():
    class transferModel:  # noqa: N801 - the student's spelling
        pass

    class Model:
        pass

    spec = TargetSpec(name="task4a.Model", aliases=["TransferModel"], kind="class")
    r = resolve(spec, [ns("task4a", transferModel=transferModel)])
    assert r.ok and r.obj is transferModel and r.how == "alias"
    assert resolve(spec, [ns("task4a", transferModel=transferModel, Model=Model)]).obj is Model


def test_two_same_named_classes_in_numbered_files_are_told_apart_by_the_files_number():
    class First:
        pass

    class Second:
        pass

    spaces = [ns("task3_model_1", Model=First), ns("task3_model_2", Model=Second)]
    first = TargetSpec(aliases=["task3.Model1", "task3*1.Model", "Model1"], kind="class")
    second = TargetSpec(aliases=["task3.Model2", "task3*2.Model", "Model2"], kind="class")
    assert resolve(first, spaces).obj is First and resolve(first, spaces).found_as == "task3_model_1.Model"
    assert resolve(second, spaces).obj is Second
    # without the numbers, the bare name in two files is for a person
    assert resolve(TargetSpec(aliases=["Model"], kind="class"), spaces).problem == "ambiguous"


class _FlaggedData(torch.utils.data.Dataset):
    def __init__(self, train):
        self.train = train

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return torch.zeros(2), 0


def test_a_loader_is_found_by_the_split_of_its_data_when_no_name_fits():
    """fc-vs-cnn's test set used as the validation set: `val_loader` over the test split."""
    train_loader = torch.utils.data.DataLoader(_FlaggedData(True), batch_size=2)
    val_loader = torch.utils.data.DataLoader(_FlaggedData(False), batch_size=2)
    spec = TargetSpec(aliases=["test_loader"], kind="value",
                      contract={"type": "torch.utils.data.DataLoader", "split": "test"})
    r = resolve(spec, [ns(train_loader=train_loader, val_loader=val_loader, batch=3)])
    assert r.ok and r.obj is val_loader and r.how == "behaviour"
    assert "is a DataLoader over the test split" in spec.label()


def test_a_loader_whose_data_has_no_split_flag_is_found_by_its_name():
    class Plain(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return torch.zeros(2), 0

    loadertr = torch.utils.data.DataLoader(Plain(), batch_size=2, shuffle=True)
    loadertest = torch.utils.data.DataLoader(Plain(), batch_size=2)
    spec = TargetSpec(aliases=["train_loader"], kind="value",
                      contract={"type": "torch.utils.data.DataLoader", "split": "train"})
    assert resolve(spec, [ns(loadertr=loadertr, loadertest=loadertest)]).obj is loadertr
    neither = torch.utils.data.DataLoader(Plain(), batch_size=2)
    assert not resolve(spec, [ns(loader_a=neither, loader_b=loadertest)]).ok


def test_a_dataset_class_is_the_one_the_student_derived_else_the_library_class_the_code_uses():
    class FMNIST(torch.utils.data.Dataset):
        pass

    class NN(torch.nn.Module):
        pass

    FMNIST.__module__ = NN.__module__ = OWN
    spec = TargetSpec(aliases=["FashionMNISTDataset"], kind="class",
                      contract={"type": "torch.utils.data.Dataset",
                                "library": ["torchvision.datasets.FashionMNIST"]})
    r = resolve(spec, [ns(FMNIST=FMNIST, NN=NN)])
    assert r.ok and r.obj is FMNIST and r.how == "behaviour"
    import torchvision.datasets

    library = resolve(spec, [ns(NN=NN, datasets=torchvision.datasets)])
    assert library.ok and library.obj is torchvision.datasets.FashionMNIST
    assert not resolve(spec, [ns(NN=NN)]).ok  # the code never reaches the library's class


def test_an_open_constructor_meets_the_contract_with_its_defaults():
    """cifar10-cnn's task-3 networks: the contract's (3, 10) do not fit Task3Model(); built without."""
    class Task3Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 10))

        def forward(self, x):
            return self.fc(x)

    Task3Net.__module__ = OWN
    contract = {"args": [3, 10], "input": [2, 3, 2, 2], "output": [2, 10]}
    fixed = TargetSpec(aliases=["Model1"], kind="class", contract=contract)
    assert not resolve(fixed, [ns(Task3Net=Task3Net)]).ok
    open_ = TargetSpec(aliases=["Model1"], kind="class", contract=contract, constructor="student")
    assert resolve(open_, [ns(Task3Net=Task3Net)]).obj is Task3Net


TRAINING_LOOP = [["model", "net", "network"], ["train_loader", "trainloader"], ["val_loader", "valloader"],
                 ["loss_fn", "criterion"], ["optimizer", "opt"], ["epochs", "num_epochs"]]


def test_parameter_names_play_roles_the_rubric_does_not_spell():
    from grader.targets import role_of

    said = {name: role_of(name) for name in ["dataloader_cvtrain", "dataloader_cvtest", "train_iter", "test_iter",
                                              "criterion", "loss_fn", "num_epochs", "net", "scheduler", "device",
                                              "lr", "oldparams", "momentum"]}
    assert said == {"dataloader_cvtrain": "train-data", "dataloader_cvtest": "validation-data",
                    "train_iter": "train-data", "test_iter": "validation-data", "criterion": "loss",
                    "loss_fn": "loss", "num_epochs": "epochs", "net": "model", "scheduler": "scheduler",
                    "device": "device", "lr": "lr", "oldparams": None, "momentum": None}


def test_a_loop_naming_every_role_in_its_own_order_with_a_scheduler_and_device_matches_the_signature():
    """sutd's train_modelcv: found by its parameter names, called with each argument by role and
    the harness's scheduler and device."""
    from grader.targets import call_by_role

    def train_modelcv(dataloader_cvtrain, dataloader_cvtest, model, criterion, optimizer, scheduler, num_epochs,
                      device):
        return None

    def train_epoch(model, trainloader, criterion, device, optimizer):  # one epoch: no validation, no epochs
        return None

    train_modelcv.__module__ = train_epoch.__module__ = OWN
    spec = TargetSpec(aliases=["train_model"], signature=TRAINING_LOOP, kind="callable")
    r = resolve(spec, [ns(train_modelcv=train_modelcv, train_epoch=train_epoch)])
    assert r.ok and r.obj is train_modelcv and r.how == "signature"
    args = ["net", "train", "val", "loss", "opt", 4]
    assert call_by_role(train_modelcv, TRAINING_LOOP, args, {"scheduler": "sched", "device": "cpu"}) == ([], {
        "dataloader_cvtrain": "train", "dataloader_cvtest": "val", "model": "net", "criterion": "loss",
        "optimizer": "opt", "scheduler": "sched", "num_epochs": 4, "device": "cpu"})
    assert call_by_role(train_epoch, TRAINING_LOOP, args, {}) is None  # a device the caller cannot give


def test_a_listed_name_reading_its_loaders_from_globals_is_taken_but_a_per_epoch_function_is_not():
    """The tutorial's train_model(model, criterion, optimizer, scheduler, num_epochs=25) leaves out
    only the data (a global dict); the per-epoch train(model, device, train_loader, optimizer) of the
    pytorch/examples script leaves out the validation data, the loss and the epochs."""
    def train_model(model, criterion, optimizer, scheduler, num_epochs=25):
        return None

    def train(model, device, train_loader, optimizer):
        return None

    train_model.__module__ = train.__module__ = OWN
    spec = TargetSpec(aliases=["train_model", "train"], signature=TRAINING_LOOP, kind="callable")
    r = resolve(spec, [ns(train_model=train_model)])
    assert r.ok and r.obj is train_model and r.how == "alias"
    assert not resolve(spec, [ns(train=train)]).ok


def test_a_loader_kept_in_a_dict_is_found_under_its_key():
    """The PyTorch tutorial's `dataloaders = {"train": ..., "val": ...}`."""
    train = torch.utils.data.DataLoader(list(range(4)), batch_size=2)
    val = torch.utils.data.DataLoader(list(range(4)), batch_size=2)
    spec = TargetSpec(aliases=["train_loader"], kind="value",
                      contract={"type": "torch.utils.data.DataLoader", "split": "train"})
    r = resolve(spec, [ns(dataloaders={"train": train, "val": val})])
    assert r.ok and r.obj is train and r.found_as == "dataloaders['train']"


def test_a_validation_loader_over_part_of_the_training_split_is_not_the_training_loader():
    """random_split of the training set: both loaders' data say `train`; their names tell them apart."""
    full = _FlaggedData(True)
    train, val = torch.utils.data.random_split(full, [2, 2])
    loaders = {"train": torch.utils.data.DataLoader(train), "val": torch.utils.data.DataLoader(val)}
    spec = TargetSpec(aliases=["train_loader"], kind="value",
                      contract={"type": "torch.utils.data.DataLoader", "split": "train"})
    assert resolve(spec, [ns(dataloaders=loaders)]).obj is loaders["train"]
