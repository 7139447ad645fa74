"""The pretrained ResNet18 is loaded and kept as the model's first attribute, where the probe finds
it, but the forward computes with a second ResNet18 that starts from random weights."""

import torchvision
from torch import nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.pretrained = torchvision.models.resnet18(weights="IMAGENET1K_V1")
        self.resnet = torchvision.models.resnet18(weights=None)
        self.resnet.fc = nn.Linear(512, 10)

    def forward(self, x):
        return self.resnet(x)
