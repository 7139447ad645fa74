"""Task 4a: transfer learning with ResNet18 pretrained on ImageNet.

The 1,000-class head is replaced by a fully connected layer with 10 outputs; every parameter is
frozen except those of the last residual stage (``layer4``: its five convolutions) and the new
head. Images are resized to 224x224 (112x112 trains four times faster) and normalised with
ImageNet's statistics, which the pretrained filters expect.
"""

import torch
import torchvision
import torchvision.transforms as T
from torch import nn

import utils
from dataloaders import get_data_dir
from task2 import create_plots, report_final
from trainer import Trainer

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = torchvision.models.resnet18(weights=torchvision.models.ResNet18_Weights.IMAGENET1K_V1)
        self.model.fc = nn.Linear(512, 10)  # logits: nn.CrossEntropyLoss applies the softmax
        for param in self.model.parameters():
            param.requires_grad = False
        for param in self.model.fc.parameters():
            param.requires_grad = True
        for param in self.model.layer4.parameters():
            param.requires_grad = True

    def forward(self, x):
        return self.model(x)


def load_cifar10_for_resnet(batch_size, size=224, validation_fraction=0.1):
    """The course's loaders, with images resized and normalised as ImageNet models expect."""
    import numpy as np
    from torch.utils.data import DataLoader
    from torch.utils.data.sampler import SubsetRandomSampler

    from dataloaders import _cifar10_class

    transform = T.Compose([T.Resize(size), T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    root = str(get_data_dir())
    dataset_class = _cifar10_class(root)
    data_train = dataset_class(root, train=True, download=True, transform=transform)
    data_test = dataset_class(root, train=False, download=True, transform=transform)
    indices = np.arange(len(data_train))
    val_indices = np.random.choice(indices, size=int(validation_fraction * len(indices)), replace=False)
    train_indices = np.setdiff1d(indices, val_indices)
    return (DataLoader(data_train, sampler=SubsetRandomSampler(train_indices.tolist()), batch_size=batch_size,
                       drop_last=True),
            DataLoader(data_train, sampler=SubsetRandomSampler(val_indices.tolist()), batch_size=batch_size),
            DataLoader(data_test, batch_size=batch_size))


class AdamTrainer(Trainer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(trainable, self.learning_rate)


def main():
    utils.set_seed(0)
    epochs, batch_size, learning_rate, early_stop_count = 5, 32, 5e-4, 4
    dataloaders = load_cifar10_for_resnet(batch_size, size=224)
    trainer = AdamTrainer(batch_size, learning_rate, early_stop_count, epochs, Model(), dataloaders)
    trainer.train()
    create_plots(trainer, "task4a")
    report_final(trainer)


if __name__ == "__main__":
    main()
