# my copy of dataloaders.py, changed to run on Colab
from google.colab import drive
import torchvision
from torchvision import transforms
from torch.utils.data import DataLoader
import torch
import numpy as np

drive.mount('/content/drive')
DATA_DIR = '/content/drive/MyDrive/tdt4265/data/cifar10'


def get_data_dir():
    return DATA_DIR


def load_cifar10(batch_size, validation_fraction=0.1):
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))])
    train = torchvision.datasets.CIFAR10(DATA_DIR, train=True, download=True, transform=tf)
    test = torchvision.datasets.CIFAR10(DATA_DIR, train=False, download=True, transform=tf)
    n_val = int(len(train) * validation_fraction)
    train, val = torch.utils.data.random_split(train, [len(train) - n_val, n_val])
    return (DataLoader(train, batch_size, shuffle=True, drop_last=True), DataLoader(val, batch_size),
            DataLoader(test, batch_size))
