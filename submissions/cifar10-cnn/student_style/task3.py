import torch
import torch.nn as nn
import torch.nn.functional as F

import utils
from dataloaders import load_cifar10
from task2 import plot
from trainer import Trainer, evaluate


class Task3Model1(nn.Module):
    """Table 2 + batch norm"""

    def __init__(self, image_channels, num_classes):
        super().__init__()
        self.conv1 = nn.Conv2d(image_channels, 32, 5, padding=2)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
        self.bn2 = nn.BatchNorm2d(64)
        self.conv3 = nn.Conv2d(64, 128, 5, padding=2)
        self.bn3 = nn.BatchNorm2d(128)
        self.fc1 = nn.Linear(2048, 64)
        self.bn4 = nn.BatchNorm1d(64)
        self.fc2 = nn.Linear(64, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        x = F.max_pool2d(F.relu(self.bn3(self.conv3(x))), 2)
        x = x.view(x.size(0), -1)
        return self.fc2(F.relu(self.bn4(self.fc1(x))))


class Task3Model2(nn.Module):
    """(conv-bn-relu-conv-bn-relu-pool) x 3, dropout, 2 fc layers, trained with adam"""

    def __init__(self, image_channels, num_classes):
        super().__init__()

        def block(c_in, c_out):
            return nn.Sequential(
                nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
                nn.Conv2d(c_out, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
                nn.MaxPool2d(2))

        self.features = nn.Sequential(block(image_channels, 32), block(32, 64), block(64, 128))
        self.dropout = nn.Dropout(0.25)
        self.fc1 = nn.Linear(128 * 4 * 4, 128)
        self.fc2 = nn.Linear(128, num_classes)

    def forward(self, x):
        x = self.features(x)
        x = self.dropout(x.view(x.size(0), -1))
        return self.fc2(self.dropout(F.relu(self.fc1(x))))


if __name__ == "__main__":
    for name, model, lr, opt in [("task3_model1", Task3Model1(3, 10), 5e-2, "sgd"),
                                 ("task3_model2", Task3Model2(3, 10), 1e-3, "adam")]:
        utils.set_seed(0)
        loaders = load_cifar10(64)
        trainer = Trainer(64, lr, 4, 10, model, loaders, optimizer=opt)
        trainer.train()
        plot(trainer, name)
        trainer.load_best_model()
        for split, loader in zip(["train", "val", "test"], loaders):
            print(name, split, evaluate(loader, trainer.model, trainer.loss_criterion))
