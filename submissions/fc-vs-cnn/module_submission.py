"""Deep Learning, assignment 6: fully connected vs convolutional networks on MNIST.

Importing this module defines the networks and builds the data loaders; running it as a script
(``python module_submission.py``) trains both networks for 10 epochs and plots the results.

Task 4 (size of the flattened output): a 5x5 convolution with padding 2 and stride 1 keeps the
size, (28 + 2*2 - 5) / 1 + 1 = 28, and each 2x2 pooling with stride 2 halves it: 28 -> 14 -> 7.
The flatten layer therefore outputs Q2 * 7 * 7 values, 3136 for Q2 = 64.

Task 10 (parameters, analytically):
  FC,  K=100:          784*100 + 100 + 100*100 + 100 + 100*10 + 10          = 89,610
  CNN, Q1=32, Q2=64:   1*32*5*5 + 32 + 32*64*5*5 + 64 + 3136*10 + 10          = 83,466
"""

import matplotlib.pyplot as plt
import PIL.Image
import torch
import torchvision
from torch import nn

BATCH_SIZE = 64
TEST_BATCH_SIZE = 256


# Task 1
def datasets(transform):
    """Return the MNIST training and test sets, both with the given transform."""
    train_set = torchvision.datasets.MNIST(root="data", train=True, download=True, transform=transform)
    test_set = torchvision.datasets.MNIST(root="data", train=False, download=True, transform=transform)
    return train_set, test_set


# Task 2: the loaders are built once, when the module is imported
train_set, test_set = datasets(torchvision.transforms.ToTensor())
train_loader = torch.utils.data.DataLoader(train_set, batch_size=BATCH_SIZE, shuffle=True)
test_loader = torch.utils.data.DataLoader(test_set, batch_size=TEST_BATCH_SIZE, shuffle=False)


# Task 3
def fully_connected(D, K, O):
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(D, K), nn.Tanh(),
        nn.Linear(K, K), nn.Tanh(),
        nn.Linear(K, O),
    )


# Task 4
flatten_size = 64 * 7 * 7


# Task 5
def convolutional(Q1, Q2, O):
    return nn.Sequential(
        nn.Conv2d(1, Q1, kernel_size=5, stride=1, padding=2),
        nn.MaxPool2d(kernel_size=2, stride=2),
        nn.Tanh(),
        nn.Conv2d(Q1, Q2, kernel_size=5, stride=1, padding=2),
        nn.MaxPool2d(kernel_size=2, stride=2),
        nn.Tanh(),
        nn.Flatten(),
        nn.Linear(Q2 * 7 * 7, O),
    )


# Task 6
def train(network, epochs, lr):
    """Train with SGD, one step per batch; return the per-epoch test loss and accuracy lists."""
    optimizer = torch.optim.SGD(network.parameters(), lr=lr)
    loss_function = nn.CrossEntropyLoss()
    test_loss, test_accuracy = [], []
    for epoch in range(epochs):
        network.train()
        for x, t in train_loader:
            optimizer.zero_grad()
            loss = loss_function(network(x), t)
            loss.backward()
            optimizer.step()

        # the last test batch may be smaller: weight each batch loss by its size
        network.eval()
        loss_sum, correct, total = 0.0, 0, 0
        with torch.no_grad():
            for x, t in test_loader:
                z = network(x)
                loss_sum += loss_function(z, t).item() * len(t)
                correct += (z.argmax(dim=1) == t).sum().item()
                total += len(t)
        test_loss.append(loss_sum / total)
        test_accuracy.append(correct / total)
        print(f"epoch {epoch + 1}: test loss {test_loss[-1]:.4f}, test accuracy {test_accuracy[-1]:.4f}")
    return test_loss, test_accuracy


# Task 10
def parameter_count(network):
    return sum(p.numel() for p in network.parameters() if p.requires_grad)


def _test_datasets():
    """Test 1: without a transform, items are PIL images with int targets."""
    raw_train, _ = datasets(transform=None)
    image, target = raw_train[0]
    assert isinstance(image, PIL.Image.Image)
    assert isinstance(target, int)


def _test_batches():
    """Test 2: full batches of 64 (but the last), tensors in [0, 1], targets in 0..9."""
    batches = list(train_loader)
    for i, (x, t) in enumerate(batches):
        assert isinstance(x, torch.Tensor) and isinstance(t, torch.Tensor)
        assert i == len(batches) - 1 or len(x) == BATCH_SIZE
        assert torch.all((x >= 0) & (x <= 1))
        assert torch.all((t >= 0) & (t <= 9))


if __name__ == "__main__":
    _test_datasets()
    _test_batches()

    # Task 7 and 8
    fc = fully_connected(28 * 28, 100, 10)
    fc_loss, fc_acc = train(fc, 10, 0.01)
    cnn = convolutional(32, 64, 10)
    cnn_loss, cnn_acc = train(cnn, 10, 0.01)

    # Task 9
    epochs = range(1, 11)
    plt.figure()
    plt.plot(epochs, fc_loss, label="fully connected")
    plt.plot(epochs, cnn_loss, label="convolutional")
    plt.xlabel("epoch"); plt.ylabel("test loss"); plt.legend()
    plt.savefig("loss.png")

    plt.figure()
    plt.plot(epochs, fc_acc, label="fully connected")
    plt.plot(epochs, cnn_acc, label="convolutional")
    plt.xlabel("epoch"); plt.ylabel("test accuracy"); plt.legend()
    plt.savefig("accuracy.png")

    print("parameters: FC", parameter_count(fc), "CNN", parameter_count(cnn))
