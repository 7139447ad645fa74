import torch
import torch.nn as nn
import torchvision
import torchvision.transforms as transforms

import utils
from task2 import plot
from trainer import Trainer, evaluate


class TransferModel(nn.Module):

    def __init__(self):
        super().__init__()
        self.resnet = torchvision.models.resnet18(weights="IMAGENET1K_V1")
        self.resnet.fc = nn.Linear(self.resnet.fc.in_features, 10)
        # freeze everything but the last 5 conv layers (layer4) and fc
        for name, param in self.resnet.named_parameters():
            param.requires_grad = name.startswith("layer4") or name.startswith("fc")

    def forward(self, x):
        return self.resnet(x)


def get_loaders(batch_size):
    from torch.utils.data import DataLoader, random_split

    from dataloaders import get_data_dir
    tf = transforms.Compose([transforms.Resize(112), transforms.ToTensor(),
                             transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    train = torchvision.datasets.CIFAR10(get_data_dir(), train=True, download=True, transform=tf)
    test = torchvision.datasets.CIFAR10(get_data_dir(), train=False, download=True, transform=tf)
    train, val = random_split(train, [45000, 5000])
    return (DataLoader(train, batch_size, shuffle=True, drop_last=True), DataLoader(val, batch_size),
            DataLoader(test, batch_size))


if __name__ == "__main__":
    utils.set_seed(0)
    loaders = get_loaders(32)
    trainer = Trainer(32, 5e-4, 4, 5, TransferModel(), loaders, optimizer="adam")
    trainer.train()
    plot(trainer, "task4a")
    trainer.load_best_model()
    print(evaluate(loaders[2], trainer.model, trainer.loss_criterion))
