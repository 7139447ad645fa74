"""The transfer attacks' reference: ResNet18 with its pretrained weights and a new 10-class head."""

import torchvision
from torch import nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torchvision.models.resnet18(weights="IMAGENET1K_V1")
        self.net.fc = nn.Linear(512, 10)

    def forward(self, x):
        return self.net(x)
