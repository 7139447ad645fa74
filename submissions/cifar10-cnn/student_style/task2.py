import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F

import utils
from dataloaders import load_cifar10
from trainer import Trainer, evaluate


class ExampleModel(nn.Module):

    def __init__(self, image_channels, num_classes):
        super().__init__()
        self.conv1 = nn.Conv2d(image_channels, 32, 5, padding=2)
        self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
        self.conv3 = nn.Conv2d(64, 128, 5, padding=2)
        self.pool = nn.MaxPool2d(2, 2)
        self.fc1 = nn.Linear(128 * 4 * 4, 64)
        self.fc2 = nn.Linear(64, num_classes)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = self.pool(F.relu(self.conv3(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        return self.fc2(x)


def plot(trainer, name):
    plt.figure(figsize=(16, 6))
    plt.subplot(1, 2, 1)
    utils.plot_loss(trainer.train_history["loss"], label="train loss", npoints_to_average=10)
    utils.plot_loss(trainer.validation_history["loss"], label="val loss")
    plt.legend()
    plt.subplot(1, 2, 2)
    utils.plot_loss(trainer.validation_history["accuracy"], label="val accuracy")
    plt.legend()
    plt.savefig(f"{name}.png")


if __name__ == "__main__":
    utils.set_seed(0)
    loaders = load_cifar10(64)
    trainer = Trainer(64, 5e-2, 4, 10, ExampleModel(3, 10), loaders)
    trainer.train()
    plot(trainer, "task2a")
    trainer.load_best_model()
    for name, loader in zip(["train", "val", "test"], loaders):
        print(name, evaluate(loader, trainer.model, trainer.loss_criterion))
