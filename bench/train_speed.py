"""How much faster the harness's trainer is than the usual DataLoader loop, on the same model and data.

    .venv/bin/python bench/train_speed.py                  # CPU or the first CUDA device
    .venv/bin/python bench/train_speed.py --device cpu --epochs 1 --out /tmp/speed.json

Each case trains one of the courses' own models on synthetic data in the real format: fc-vs-cnn's
fully connected network and its CNN on MNIST, cifar10-cnn's ExampleModel on CIFAR-10. The same
model, batch size, optimiser and number of epochs run twice:

- ``DataLoader``: torchvision's data set class with ``ToTensor``, a shuffling ``DataLoader``,
  each batch copied to the device, ``loss.item()`` every step: the loop a course teaches;
- ``grader.train``: the harness's loop (data resident on the device, index-sliced batches, mixed
  precision and channels-last where they pay off).

Each is warmed up on two batches first, then timed end to end (for the harness that includes moving
the data to the device), ``--repeats`` times, alternating the two; the fastest run of each counts.
The fully connected case shows what the per-sample loader costs; the convolutional ones how much of
it is left when the arithmetic dominates (on a CPU: next to nothing). Prints a table and writes JSON
to ``bench/results/<device kind>.json`` (or ``--out``). On a shared machine the load average is
recorded beside the numbers, because it moves them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from grader import data, train  # noqa: E402
from grader.data import cifar_checksums, synthetic, tensors  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
LR, MOMENTUM = 0.05, 0.9


def mnist_fc() -> nn.Module:
    """fc-vs-cnn's fully connected network with D=784, K=100, O=10 (89,610 parameters)."""
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 100), nn.Tanh(), nn.Linear(100, 100), nn.Tanh(),
                         nn.Linear(100, 10))


def mnist_cnn() -> nn.Module:
    """fc-vs-cnn's CNN with Q1=32, Q2=64 (83,466 parameters)."""
    return nn.Sequential(nn.Conv2d(1, 32, 5, padding=2), nn.MaxPool2d(2), nn.Tanh(),
                         nn.Conv2d(32, 64, 5, padding=2), nn.MaxPool2d(2), nn.Tanh(),
                         nn.Flatten(), nn.Linear(64 * 7 * 7, 10))


def cifar_example_model() -> nn.Module:
    """cifar10-cnn's ExampleModel (Table 2, 390,410 parameters)."""
    def block(c_in: int, c_out: int) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)]

    return nn.Sequential(*block(3, 32), *block(32, 64), *block(64, 128), nn.Flatten(),
                         nn.Linear(128 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10))


# case name -> (data set, model builder); the MLP shows the loader's own cost, the CNNs the compute
CASES = {"mnist-fc": ("mnist", mnist_fc), "mnist-cnn": ("mnist", mnist_cnn),
         "cifar10-example": ("cifar10", cifar_example_model)}


def torchvision_dataset(name: str, root: Path) -> torch.utils.data.Dataset:
    import torchvision
    from torchvision import transforms

    dataset_class = torchvision.datasets.MNIST if name == "mnist" else cifar_checksums.cifar10_class(root)
    return dataset_class(str(root), train=True, download=True, transform=transforms.ToTensor())


def repeated(dataset: torch.utils.data.Dataset, samples: int) -> torch.utils.data.Dataset:
    """``dataset`` cycled to exactly ``samples`` items (to time a GPU on more than a small set)."""
    copies = -(-samples // len(dataset))
    return torch.utils.data.Subset(torch.utils.data.ConcatDataset([dataset] * copies), range(samples))


def dataloader_loop(build: Callable[[], nn.Module], dataset: torch.utils.data.Dataset, epochs: int, batch: int,
                    device: torch.device) -> tuple[float, float]:
    """The usual loop; returns (seconds, last epoch's mean loss)."""
    torch.manual_seed(0)
    model = build().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True)
    start = time.perf_counter()
    model.train()
    for _ in range(epochs):
        total, count = 0.0, 0
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            optimizer.zero_grad()
            loss = F.cross_entropy(model(images), labels)
            loss.backward()
            optimizer.step()
            total, count = total + loss.item() * len(labels), count + len(labels)
    synchronize(device)
    return time.perf_counter() - start, total / count


def harness_loop(build: Callable[[], nn.Module], images: torch.Tensor, labels: torch.Tensor, epochs: int,
                 batch: int, device: torch.device) -> tuple[float, float, str, bool]:
    start = time.perf_counter()
    trained = train.train(build, images, labels,
                          {"epochs": epochs, "batch_size": batch, "lr": LR, "momentum": MOMENTUM}, device=device)
    synchronize(device)
    return time.perf_counter() - start, trained.epoch_losses[-1], trained.precision, trained.channels_last


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(case: str, args: argparse.Namespace, device: torch.device) -> dict:
    name, build = CASES[case]
    root = synthetic.ensure(name, data.synthetic_root())
    images, labels = tensors.load(name, root, train=True)
    samples = args.samples or (50_000 if device.type == "cuda" else len(labels))
    reps = -(-samples // len(labels))
    images, labels = images.repeat(reps, 1, 1, 1)[:samples], labels.repeat(reps)[:samples]
    dataset = repeated(torchvision_dataset(name, root), samples)
    warm = 2 * args.batch_size
    dataloader_loop(build, torch.utils.data.Subset(dataset, range(warm)), 1, args.batch_size, device)
    harness_loop(build, images[:warm], labels[:warm], 1, args.batch_size, device)
    loader_runs, harness_runs = [], []
    for _ in range(args.repeats):  # alternated, so a burst of load elsewhere hits both alike
        loader_runs.append(dataloader_loop(build, dataset, args.epochs, args.batch_size, device))
        harness_runs.append(harness_loop(build, images, labels, args.epochs, args.batch_size, device))
    seen = samples * args.epochs
    loader_best, harness_best = min(r[0] for r in loader_runs), min(r[0] for r in harness_runs)
    return {"case": case, "dataset": name, "model": build.__doc__.split(" (")[0], "samples": samples,
            "epochs": args.epochs, "batch_size": args.batch_size, "repeats": args.repeats,
            "dataloader": {"best_seconds": round(loader_best, 3), "samples_per_s": round(seen / loader_best, 1),
                           "seconds_each": [round(r[0], 3) for r in loader_runs],
                           "last_epoch_loss": round(loader_runs[-1][1], 4)},
            "grader_train": {"best_seconds": round(harness_best, 3), "samples_per_s": round(seen / harness_best, 1),
                             "seconds_each": [round(r[0], 3) for r in harness_runs],
                             "last_epoch_loss": round(harness_runs[-1][1], 4), "precision": harness_runs[-1][2],
                             "channels_last": harness_runs[-1][3]},
            "speedup": round(loader_best / harness_best, 2)}


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        return re.search(r"model name\s*:\s*(.+)", cpuinfo).group(1).strip()
    except (OSError, AttributeError):
        return platform.processor() or "cpu"


def device_kind(device: torch.device, name: str) -> str:
    """A file-name-safe kind: ``cpu``, or ``cuda-`` and the GPU's name."""
    return "cpu" if device.type == "cpu" else "cuda-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def table(report: dict) -> str:
    lines = [f"device: {report['device_name']} ({report['device']}, {report['threads']} CPU threads), "
             f"torch {report['torch']}, load average {report['load_average_before']}",
             f"{'case':<16} {'samples':>7} {'epochs':>6} {'batch':>5} "
             f"{'DataLoader/s':>12} {'grader.train/s':>14} {'speed-up':>8}  precision"]
    for row in report["rows"]:
        h = row["grader_train"]
        lines.append(f"{row['case']:<16} {row['samples']:>7} {row['epochs']:>6} "
                     f"{row['batch_size']:>5} {row['dataloader']['samples_per_s']:>12,.0f} "
                     f"{h['samples_per_s']:>14,.0f} {row['speedup']:>7.2f}x  "
                     f"{h['precision']}{', channels-last' if h['channels_last'] else ''}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES,
                        help="data set and model pairs to time (default: all)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of each loop, alternated; the best counts")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--samples", type=int, default=None,
                        help="training images per epoch (default: the synthetic set on CPU, 50,000 on CUDA)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch (default: torch's choice; 1 is steadier on a busy machine)")
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default: bench/results/<device kind>.json)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    name = device_name(device)
    report = {"device": str(device), "device_name": name, "torch": torch.__version__,
              "threads": torch.get_num_threads(), "load_average_before": round(os.getloadavg()[0], 2),
              "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
              "rows": [measure(case, args, device) for case in args.cases]}
    report["load_average_after"] = round(os.getloadavg()[0], 2)
    print(table(report))
    out = args.out or RESULTS / f"{device_kind(device, name)}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
