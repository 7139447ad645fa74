"""Similarity between submissions: copies survive the usual disguises, work written apart on the
same task does not match, the starter code never counts, earlier terms can be compared, and the
pages show the pairs without ever running or trusting student text."""

from __future__ import annotations

import json
import re

import pytest

from grader import cli, report, similarity
from tests.conftest import FIXTURES, write_notebook
from tests.report.test_html import result_with

STARTER = [
    "md:# Homework 3: a classifier for Fashion-MNIST\nFill in the cells marked TODO.",
    "import torch\nfrom torch import nn\nfrom torch.utils.data import DataLoader\nimport torchvision\n"
    "from torchvision import transforms\n\n"
    "transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])\n"
    "train_set = torchvision.datasets.FashionMNIST('data', train=True, download=True, transform=transform)\n"
    "test_set = torchvision.datasets.FashionMNIST('data', train=False, download=True, transform=transform)\n"
    "train_loader = DataLoader(train_set, batch_size=64, shuffle=True)\n"
    "test_loader = DataLoader(test_set, batch_size=256)\n"
    "classes = ['T-shirt', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Boot']",
    "def show_batch(loader):\n    images, labels = next(iter(loader))\n    print(images.shape, labels[:8])\n"
    "    return images, labels\n\nshow_batch(train_loader)",
]

NETWORK = (
    "class MLP(nn.Module):\n"
    "    def __init__(self, hidden=128):\n"
    "        super().__init__()\n"
    "        self.flatten = nn.Flatten()\n"
    "        self.fc1 = nn.Linear(28 * 28, hidden)\n"
    "        self.act = nn.ReLU()\n"
    "        self.drop = nn.Dropout(0.2)\n"
    "        self.fc2 = nn.Linear(hidden, 10)\n\n"
    "    def forward(self, x):\n"
    "        # flatten the image, one hidden layer, logits out\n"
    "        x = self.flatten(x)\n"
    "        x = self.drop(self.act(self.fc1(x)))\n"
    "        return self.fc2(x)\n"
)
TRAIN = (
    "def train_one_epoch(model, loader, optimizer, loss_fn):\n"
    "    model.train()\n"
    "    total_loss, seen = 0.0, 0\n"
    "    for images, labels in loader:\n"
    "        optimizer.zero_grad()\n"
    "        outputs = model(images)\n"
    "        loss = loss_fn(outputs, labels)\n"
    "        loss.backward()\n"
    "        optimizer.step()\n"
    "        total_loss += loss.item() * images.size(0)\n"
    "        seen += images.size(0)\n"
    "    return total_loss / seen\n"
)
EVALUATE = (
    "@torch.no_grad()\n"
    "def evaluate(model, loader):\n"
    "    model.eval()\n"
    "    correct = total = 0\n"
    "    for images, labels in loader:\n"
    "        predictions = model(images).argmax(dim=1)\n"
    "        correct += (predictions == labels).sum().item()\n"
    "        total += labels.numel()\n"
    "    return correct / total\n"
)
RUN = (
    "model = MLP(hidden=256)\n"
    "optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)\n"
    "loss_fn = nn.CrossEntropyLoss()\n"
    "history = []\n"
    "for epoch in range(5):\n"
    "    loss = train_one_epoch(model, train_loader, optimizer, loss_fn)\n"
    "    accuracy = evaluate(model, test_loader)\n"
    "    history.append((loss, accuracy))\n"
    "    print(f'epoch {epoch}: loss {loss:.3f}, test accuracy {accuracy:.3f}')\n"
)
ORIGINAL = [*STARTER, NETWORK, TRAIN + "\n" + EVALUATE, RUN, "md:The accuracy reaches about 88%."]

RENAMED = {"MLP": "FashionNet", "hidden": "width", "fc1": "layer_in", "fc2": "layer_out", "act": "relu",
           "drop": "dropout", "train_one_epoch": "fit_epoch", "evaluate": "test_accuracy", "total_loss": "running",
           "seen": "count", "outputs": "logits", "predictions": "guesses", "correct": "hits", "history": "log"}


def renamed(cells: list[str]) -> list[str]:
    pattern = re.compile(r"\b(" + "|".join(RENAMED) + r")\b")
    return [pattern.sub(lambda m: RENAMED[m[1]], cell) for cell in cells]


DISGUISES = {
    "renamed identifiers": renamed(ORIGINAL),
    "reordered functions": [*STARTER, EVALUATE, TRAIN, NETWORK, RUN],
    "comments and whitespace changed": [*STARTER, NETWORK.replace("# flatten the image, one hidden layer, logits out",
                                                                  "# my own two-layer network").replace("\n\n", "\n"),
                                        "# training loop\n" + TRAIN.replace("    ", "  ") + "\n\n\n" + EVALUATE, RUN],
    "cells split and merged": [*STARTER, NETWORK + "\n" + TRAIN, EVALUATE.split("    model.eval()")[0],
                               "    model.eval()" + EVALUATE.split("    model.eval()")[1], RUN],
}

# The same task written apart: another structure, another loop, another evaluation.
INDEPENDENT = [*STARTER,
               "net = nn.Sequential(\n    nn.Flatten(),\n    nn.Linear(784, 300), nn.Tanh(),\n    nn.Linear(300, 100), "
               "nn.Tanh(),\n    nn.Linear(100, 10),\n)\nopt = torch.optim.Adam(net.parameters(), 1e-3)\n"
               "criterion = nn.CrossEntropyLoss()",
               "losses = []\nfor ep in range(3):\n    batch_losses = [0.0]\n    for xb, yb in iter(train_loader):\n"
               "        l = criterion(net(xb), yb)\n        opt.zero_grad(); l.backward(); opt.step()\n"
               "        batch_losses.append(float(l))\n    losses.append(sum(batch_losses) / len(batch_losses))\n"
               "    print('epoch', ep, 'mean loss', losses[-1])",
               "def accuracy_on(data):\n    net.eval()\n    with torch.no_grad():\n        hits = [\n"
               "            (net(xb).max(1).indices == yb).float().mean().item() for xb, yb in data\n        ]\n"
               "    net.train()\n    return 100 * sum(hits) / len(hits)\n\nprint('test accuracy %.1f%%' % accuracy_on(test_loader))"]

TINY = FIXTURES / "tiny" / "rubric.yaml"


@pytest.fixture
def batch(tmp_path, tiny_rubric):
    """A folder of notebooks and the output folder with their results, as `grade` leaves it."""
    def make(notebooks: dict[str, list[str]], out_name: str = "out"):
        folder = tmp_path / f"{out_name}-in"
        folder.mkdir()
        results = [result_with(student=name, source=str(write_notebook(folder / f"{name}.ipynb", cells)),
                               content_hash=f"{index:064x}")
                   for index, (name, cells) in enumerate(notebooks.items())]
        out = tmp_path / out_name
        report.write_batch(results, tiny_rubric, out)
        return out, results
    return make


def scores(found: similarity.Report) -> dict[frozenset, float]:
    return {frozenset((p.first, p.second)): p.score for p in found.pairs}


@pytest.mark.parametrize("disguise", DISGUISES)
def test_a_copy_is_found_through_each_disguise(batch, tiny_rubric, disguise):
    out, results = batch({"original": ORIGINAL, "copy": DISGUISES[disguise]})
    starter = write_notebook(out.parent / "starter.ipynb", STARTER)
    found = similarity.run(out, tiny_rubric, results, starters=[starter])
    assert scores(found).get(frozenset(("original", "copy")), 0) >= 0.8, found


def test_work_written_apart_and_the_bare_starter_are_not_listed(batch, tiny_rubric):
    out, results = batch({"original": ORIGINAL, "independent": INDEPENDENT, "starter_only": STARTER})
    starter = write_notebook(out.parent / "starter.ipynb", STARTER)
    found = similarity.run(out, tiny_rubric, results, starters=[starter])
    assert found.pairs == [] and found.compared == 3
    # the starter is what the three share: without subtracting it, the bare starter matches everything
    unsubtracted = similarity.run(out, tiny_rubric, results, threshold=0.6)
    assert any("starter_only" in (p.first, p.second) for p in unsubtracted.pairs)


def test_earlier_terms_are_compared_and_the_pages_list_the_pair(batch, tiny_rubric, tmp_path):
    old, _ = batch({"last_year": renamed(ORIGINAL)}, "2025")
    out, results = batch({"original": ORIGINAL, "independent": INDEPENDENT}, "2026")
    before = (out / "gradebook.csv").read_text()
    found = similarity.run(out, tiny_rubric, results, against=[old])
    (pair,) = found.pairs
    assert (pair.first, pair.second, pair.second_term) == ("original", "last_year", str(old))
    report.write_batch(results, tiny_rubric, out)
    page = (out / "index.html").read_text()
    assert "Similar code" in page and pair.page in page and "similar" in page
    assert (out / pair.page).is_file()
    assert (out / "gradebook.csv").read_text() == before  # a pair never changes a grade


def test_the_side_by_side_page_marks_shared_code_and_escapes_everything(batch, tiny_rubric):
    hostile = [*ORIGINAL[:-1], "note = '</pre><script>alert(1)</script>'  # <img src=x onerror=alert(2)>"]
    out, results = batch({"original": ORIGINAL, "hostile": hostile})
    found = similarity.run(out, tiny_rubric, results)
    page = (out / found.pairs[0].page).read_text()
    assert "<mark>" in page and "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_command_compares_a_graded_folder_and_rewrites_its_page(batch, capsys):
    out, _ = batch({"original": ORIGINAL, "copy": DISGUISES["renamed identifiers"], "independent": INDEPENDENT})
    capsys.readouterr()
    assert cli.main(["similarity", str(out), "--rubric", str(TINY)]) == 0
    printed = capsys.readouterr().out
    assert "3 pair(s) compared, 1 at or above 60%" in printed and "copy & original" in printed
    saved = json.loads((out / similarity.FILE_NAME).read_text())
    assert [(p["first"], p["second"]) for p in saved["pairs"]] == [("copy", "original")]
    assert "side by side" in (out / "index.html").read_text()
    assert cli.main(["similarity", str(out / "nothing")]) == 2
