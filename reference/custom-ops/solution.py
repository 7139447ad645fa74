"""Reference solution of `custom-ops`: Fashion-MNIST with hand-written Conv2d, MaxPool2d and ReLU.

The folder is laid out like the course's materials: `utils/mnist_reader.py` and `performance.py`
sit beside this file, as they sit beside the student's notebook.

Import-safe: importing this module reads no data and trains nothing. The grader builds the
networks and the ops in its trusted process; `main()` runs the whole assignment on the data in
`data/fashion` (the training and validation datasets then become the module's globals, which
`fit` reads, as the handout's `fit(model, number_of_epochs)` has no parameter for them).

Sizes through the network, for a 28x28 input (no padding: out = (in - kernel) // stride + 1):

    Conv2d(1, 32, 3, stride 1)   28 -> 26      MaxPool2d(3, stride 2)  26 -> 12     ReLU
    Conv2d(32, 64, 3, stride 1)  12 -> 10      MaxPool2d(3, stride 2)  10 -> 4      ReLU   [B, 64, 4, 4]
    Conv2d(64, 10, 4, stride 1)   4 -> 1                                                   [B, 10, 1, 1]
    Flatten                                                                                [B, 10]
"""

from __future__ import annotations

import copy
import math
import os

import torch
from torch import nn

DATA_DIR = "data/fashion"
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
CLASSES = len(CLASS_NAMES)
VALIDATION_FRACTION = 0.2
BATCH_SIZE = 64
LEARNING_RATE = 0.05
EPOCHS = 10


# ---------------------------------------------------------------- data


def load_samples(path: str = DATA_DIR, kind: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """One split read with the provided reader: images ``[N, 1, 28, 28]`` scaled to [0, 1] and
    class indices ``[N]``."""
    from utils import mnist_reader

    images, labels = mnist_reader.load_mnist(path, kind=kind)
    samples = torch.from_numpy(images).float().div(255.0).reshape(-1, 1, 28, 28)
    return samples, torch.from_numpy(labels).long()


def split(samples: torch.Tensor, classes: torch.Tensor, validation_fraction: float = VALIDATION_FRACTION,
          seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A random training / validation split, labels as one-hot rows.

    Returns ``(training samples, training labels, validation samples, validation labels)``."""
    order = torch.randperm(len(samples), generator=torch.Generator().manual_seed(seed))
    validation_count = round(len(samples) * validation_fraction)
    validation, training = order[:validation_count], order[validation_count:]
    one_hot = nn.functional.one_hot(classes, CLASSES).float()
    return samples[training], one_hot[training], samples[validation], one_hot[validation]


class Dataset:
    """Serves ``(samples, labels)`` in batches: ``dataset[i]`` is the i-th batch.

    The last batch holds whatever is left when ``batch_size`` does not divide the number of
    samples. Indexing only slices, so the same index gives the same batch until ``shuffle()``
    puts samples and labels, together, in a new random order.
    """

    def __init__(self, samples, labels, batch_size):
        if len(samples) != len(labels):
            raise ValueError(f"{len(samples)} samples but {len(labels)} labels")
        self.samples = samples
        self.labels = labels
        self.batch_size = batch_size

    def __len__(self):
        return math.ceil(len(self.samples) / self.batch_size)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} of a dataset with {len(self)} batches")  # also ends a for loop
        rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self.samples[rows], self.labels[rows]

    def shuffle(self):
        order = torch.randperm(len(self.samples))  # one permutation for both keeps every pair together
        self.samples = self.samples[order]
        self.labels = self.labels[order]


# ---------------------------------------------------------------- hand-written operations


def output_size(size: int, kernel_size: int, stride: int) -> int:
    """Positions a window of ``kernel_size`` takes along ``size`` in steps of ``stride``, no padding."""
    return (size - kernel_size) // stride + 1


def windows(x: torch.Tensor, kernel_size: int, stride: int) -> torch.Tensor:
    """Every ``kernel_size`` x ``kernel_size`` window of the last two dimensions:
    ``[..., H, W] -> [..., H_out, W_out, kernel_size, kernel_size]`` (a view, no copy)."""
    return x.unfold(-2, kernel_size, stride).unfold(-2, kernel_size, stride)


class Conv2d(nn.Module):
    """2-D convolution (cross-correlation, as in torch) without padding.

    ``weight`` is ``[out_channels, in_channels, kernel_size, kernel_size]`` and ``bias``
    ``[out_channels]``, both initialised as torch initialises its own Conv2d (uniform in
    +-1/sqrt(fan_in)). Takes ``[B, C, H, W]`` or a single image ``[C, H, W]``.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = kernel_size, stride
        bound = 1 / math.sqrt(in_channels * kernel_size * kernel_size)
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.weight = nn.Parameter(torch.empty(shape).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(out_channels).uniform_(-bound, bound))

    def forward(self, x):
        single = x.dim() == 3
        if single:
            x = x.unsqueeze(0)
        patches = windows(x, self.kernel_size, self.stride)  # [B, C, H_out, W_out, k, k]
        # each output value: the sum over channels and window of window * kernel, plus the bias
        out = torch.einsum("bchwij,ocij->bohw", patches, self.weight) + self.bias.view(1, -1, 1, 1)
        return out.squeeze(0) if single else out


class MaxPool2d(nn.Module):
    """2-D max pooling without padding: the largest value of every window."""

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size

    def forward(self, x):
        return windows(x, self.kernel_size, self.stride).amax(dim=(-2, -1))


class ReLU(nn.Module):
    """max(x, 0), element by element."""

    def forward(self, x):
        return torch.where(x > 0, x, torch.zeros_like(x))


# ---------------------------------------------------------------- MaxPool2d and ReLU commute


def commutativity_experiment(seed: int = 0) -> tuple[bool, bool]:
    """Whether ReLU after max pooling equals max pooling after ReLU (it does), and whether the same
    holds for a convolution (it does not), on a random ``[1, 100, 100]`` tensor in [-1, 1].

    ReLU is max(., 0) and never decreases, so the largest of the rectified values is the rectified
    largest value: relu(max_i a_i) = max_i relu(a_i), window by window. A convolution is a
    weighted sum with weights of both signs, and relu(sum_i w_i a_i) differs from
    sum_i w_i relu(a_i) as soon as a window holds a negative value.
    """
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 100, 100, generator=generator) * 2 - 1
    pool, relu = MaxPool2d(kernel_size=3, stride=2), ReLU()
    pool_commutes = torch.equal(relu(pool(x)), pool(relu(x)))
    torch.manual_seed(seed)
    conv = Conv2d(1, 1, 3, 1)
    with torch.no_grad():
        conv_commutes = torch.allclose(relu(conv(x)), conv(relu(x)))
    return pool_commutes, conv_commutes


pool_relu_commute, conv_relu_commute = commutativity_experiment()


# ---------------------------------------------------------------- the network, twice


def build_network(conv, pool, relu) -> nn.Module:
    """Two blocks of convolution -> max pooling -> ReLU (kernel 3), a 4x4 convolution to the 10
    class scores, then Flatten, from the given layer classes."""
    return nn.Sequential(
        conv(1, 32, 3, 1), pool(3, 2), relu(),    # [B, 32, 12, 12]
        conv(32, 64, 3, 1), pool(3, 2), relu(),   # [B, 64, 4, 4]
        conv(64, CLASSES, 4, 1),                  # [B, 10, 1, 1]
        nn.Flatten())                             # [B, 10]


def custom_network() -> nn.Module:
    """The network from the hand-written operations."""
    return build_network(Conv2d, MaxPool2d, ReLU)


def torch_network() -> nn.Module:
    """The same network from torch.nn's own classes, in an nn.Sequential."""
    return build_network(nn.Conv2d, nn.MaxPool2d, nn.ReLU)


# ---------------------------------------------------------------- training

def _datasets_where_the_data_is() -> tuple[Dataset | None, Dataset | None]:
    """The training and validation batches when the data is in ``data/fashion``, as where a
    submission runs; none when it is not (the grader also imports the reference on its own
    machine, for expectations), and ``main`` then sets them. ``fit`` reads them."""
    if not os.path.isdir(DATA_DIR):
        return None, None
    train_x, train_y, val_x, val_y = split(*load_samples(DATA_DIR, "train"))
    return Dataset(train_x, train_y, BATCH_SIZE), Dataset(val_x, val_y, BATCH_SIZE)


training_dataset, validation_dataset = _datasets_where_the_data_is()


def train_one_epoch(model, optimizer, loss_fn, dataset) -> float:
    """One pass over a freshly shuffled ``dataset``, one SGD step per batch; the mean loss per sample."""
    model.train()
    dataset.shuffle()
    total, count = 0.0, 0
    for index in range(len(dataset)):
        x, y = dataset[index]
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        total, count = total + loss.item() * len(x), count + len(x)
    return total / count


def evaluate(model, loss_fn, dataset) -> float:
    """The mean loss per sample over ``dataset``, in eval mode and without gradients."""
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for index in range(len(dataset)):
            x, y = dataset[index]
            total, count = total + loss_fn(model(x), y).item() * len(x), count + len(x)
    return total / count


def fit(model, number_of_epochs, learning_rate=LEARNING_RATE):
    """Train ``model`` with SGD and cross-entropy on ``training_dataset``, validating after every epoch.

    Returns:
        ``(best_model, training_losses, validation_losses)``: the model restored to the epoch with
        the lowest validation loss, and one mean loss per epoch for each dataset.
    """
    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)
    loss_fn = nn.CrossEntropyLoss()  # accepts the one-hot rows as class probabilities
    training_losses, validation_losses = [], []
    best_loss, best_state = math.inf, None
    for _ in range(number_of_epochs):
        training_losses.append(train_one_epoch(model, optimizer, loss_fn, training_dataset))
        validation_losses.append(evaluate(model, loss_fn, validation_dataset))
        if validation_losses[-1] < best_loss:
            # a copy: state_dict() alone would keep following the weights of later epochs
            best_loss, best_state = validation_losses[-1], copy.deepcopy(model.state_dict())
    if best_state is not None:
        model.load_state_dict(best_state)
    return model, training_losses, validation_losses


# ---------------------------------------------------------------- bonus: a better network, tested


def better_network() -> nn.Module:
    """A larger network from torch.nn: padded 3x3 convolutions, batch norm and dropout."""
    def block(inputs, outputs):
        return [nn.Conv2d(inputs, outputs, 3, padding=1), nn.BatchNorm2d(outputs), nn.ReLU(),
                nn.Conv2d(outputs, outputs, 3, padding=1), nn.BatchNorm2d(outputs), nn.ReLU(), nn.MaxPool2d(2)]

    return nn.Sequential(*block(1, 32), *block(32, 64), nn.Flatten(), nn.Dropout(0.3),
                         nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, CLASSES))


def predict_one_hot(model, samples, batch_size: int = 500):
    """The model's predictions as one-hot rows in a numpy array (what ``performance.plot_stats`` takes)."""
    model.eval()
    with torch.no_grad():
        scores = torch.cat([model(samples[i:i + batch_size]) for i in range(0, len(samples), batch_size)])
    return nn.functional.one_hot(scores.argmax(dim=1), CLASSES).numpy()


def main(path: str = DATA_DIR, epochs: int = EPOCHS) -> None:
    """The whole assignment: data, both networks trained and compared, the bonus network tested."""
    global training_dataset, validation_dataset
    import matplotlib.pyplot as plt

    import performance

    samples, classes = load_samples(path, "train")
    train_x, train_y, val_x, val_y = split(samples, classes)
    training_dataset = Dataset(train_x, train_y, BATCH_SIZE)
    validation_dataset = Dataset(val_x, val_y, BATCH_SIZE)
    print(f"{len(samples)} samples: {len(train_x)} for training, {len(val_x)} for validation")
    print("MaxPool2d and ReLU commute:", pool_relu_commute, "- Conv2d and ReLU commute:", conv_relu_commute)

    histories = {}
    for name, build in (("custom ops", custom_network), ("torch.nn", torch_network)):
        torch.manual_seed(0)
        _, histories[name + " train"], histories[name + " validation"] = fit(build(), epochs)
    for label, losses in histories.items():
        plt.plot(range(1, epochs + 1), losses, label=label)
    plt.xlabel("epoch")
    plt.ylabel("mean cross-entropy")
    plt.legend()
    plt.savefig("losses.png")

    best, _, _ = fit(better_network(), epochs)
    test_x, test_classes = load_samples(path, "t10k")
    labels = nn.functional.one_hot(test_classes, CLASSES).numpy()
    performance.plot_stats(predict_one_hot(best, test_x), labels, class_labels=CLASS_NAMES, path="stats.png")


if __name__ == "__main__":
    main()
