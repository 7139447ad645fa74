"""CIFAR-10 data loaders for the CNN assignment (the course's provided file, rewritten for the harness).

The interface is the course's: ``load_cifar10(batch_size, validation_fraction=0.1)`` returns the
training, validation and test ``DataLoader``s, and ``get_data_dir()`` names the folder, relative
to the working directory, that holds ``cifar-10-batches-py``. Images are normalised with the
course's mean and standard deviation; a tenth of the training images is held out for validation.

Inside the grader the folder may hold synthetic stand-in batches: torchvision's ``CIFAR10``
refuses those (it checks the published MD5 of every batch), so the data set class comes from
``grader.data.cifar_checksums.cifar10_class``, which is torchvision's own class for the real
files. Without the grader installed, torchvision's class is used directly.
"""

import pathlib

import numpy as np
import torch
import torchvision
from torch.utils.data import DataLoader
from torch.utils.data.sampler import SubsetRandomSampler
from torchvision import transforms

mean = (0.5, 0.5, 0.5)
std = (0.25, 0.25, 0.25)


def get_data_dir():
    """The data folder, relative to the working directory (``data/cifar10``)."""
    return pathlib.Path("data", "cifar10")


def _cifar10_class(root):
    try:
        from grader.data.cifar_checksums import cifar10_class
    except ImportError:  # a student's own machine: the real data set, torchvision's class
        return torchvision.datasets.CIFAR10
    return cifar10_class(root)


def load_cifar10(batch_size: int, validation_fraction: float = 0.1):
    """Training, validation and test loaders over CIFAR-10, normalised to the course's statistics.

    The validation images are a random ``validation_fraction`` of the training file, drawn with
    numpy's global generator (``utils.set_seed`` makes the split reproducible). Training batches
    are reshuffled every epoch and the last incomplete one is dropped; validation and test
    loaders keep every image.
    """
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])
    root = str(get_data_dir())
    dataset_class = _cifar10_class(root)
    data_train = dataset_class(root, train=True, download=True, transform=transform)
    data_test = dataset_class(root, train=False, download=True, transform=transform)

    indices = np.arange(len(data_train))
    held_out = int(np.floor(validation_fraction * len(indices)))
    val_indices = np.random.choice(indices, size=held_out, replace=False)
    train_indices = np.setdiff1d(indices, val_indices)

    dataloader_train = DataLoader(data_train, sampler=SubsetRandomSampler(train_indices.tolist()),
                                  batch_size=batch_size, num_workers=0, drop_last=True)
    dataloader_val = DataLoader(data_train, sampler=SubsetRandomSampler(val_indices.tolist()),
                                batch_size=batch_size, num_workers=0)
    dataloader_test = DataLoader(data_test, batch_size=batch_size, shuffle=False, num_workers=0)
    return dataloader_train, dataloader_val, dataloader_test


def _describe():
    """A quick look at the data, for ``python dataloaders.py``."""
    train, val, test = load_cifar10(64)
    images, labels = next(iter(train))
    print(f"batches: train {len(train)}, validation {len(val)}, test {len(test)}")
    print(f"one batch: images {tuple(images.shape)} {images.dtype}, labels {tuple(labels.shape)} {labels.dtype}")
    print(f"pixel range after normalisation: [{images.min():.2f}, {images.max():.2f}]; "
          f"torch {torch.__version__}")


if __name__ == "__main__":
    _describe()
