"""Task 3: two networks that improve on Table 2.

``BatchNormModel`` (task 3a, model 1) keeps Table 2's layout and adds batch normalisation after
every convolution and after the first fully connected layer, which lets a larger learning rate
train stably. ``BestModel`` (task 3a model 2, improved in 3e) uses pairs of 3x3 convolutions per
block (the same receptive field as one 5x5 with fewer weights and one more non-linearity), batch
normalisation, and dropout before the classifier, trained with Adam and light augmentation.
"""

import torch
import torchvision.transforms as T
from torch import nn

import utils
from dataloaders import load_cifar10
from task2 import create_plots, report_final
from trainer import Trainer


class BatchNormModel(nn.Module):
    def __init__(self, image_channels, num_classes):
        super().__init__()
        layers = []
        in_channels = image_channels
        for filters in (32, 64, 128):
            layers += [nn.Conv2d(in_channels, filters, kernel_size=5, padding=2), nn.BatchNorm2d(filters), nn.ReLU(),
                       nn.MaxPool2d(2, 2)]
            in_channels = filters
        self.feature_extractor = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(128 * 4 * 4, 64), nn.BatchNorm1d(64), nn.ReLU(),
                                        nn.Linear(64, num_classes))

    def forward(self, x):
        return self.classifier(self.feature_extractor(x))


def conv_block(in_channels, out_channels):
    """Two 3x3 convolutions with batch norm and ReLU, then a 2x2 max pool."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU(),
        nn.MaxPool2d(2, 2))


class BestModel(nn.Module):
    def __init__(self, image_channels, num_classes):
        super().__init__()
        self.feature_extractor = nn.Sequential(conv_block(image_channels, 32), conv_block(32, 64), conv_block(64, 128))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(128 * 4 * 4, 128), nn.ReLU(),
                                        nn.Dropout(0.3), nn.Linear(128, num_classes))

    def forward(self, x):
        return self.classifier(self.feature_extractor(x))


class AdamTrainer(Trainer):
    """The course's Trainer with Adam and weight decay instead of plain SGD."""

    def __init__(self, *args, weight_decay=5e-4, **kwargs):
        super().__init__(*args, **kwargs)
        self.optimizer = torch.optim.Adam(self.model.parameters(), self.learning_rate, weight_decay=weight_decay)


def add_augmentation(dataloader_train):
    """Random crops and horizontal flips for the training images (the loader's data set is shared
    with validation, so the training loader gets its own copy of it)."""
    import copy

    augmented = copy.copy(dataloader_train.dataset)
    augmented.transform = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), augmented.transform])
    return torch.utils.data.DataLoader(augmented, sampler=dataloader_train.sampler,
                                       batch_size=dataloader_train.batch_size, drop_last=True)


def main():
    utils.set_seed(0)
    epochs, batch_size, early_stop_count = 10, 64, 4
    train, val, test = load_cifar10(batch_size)
    runs = [("task3_model1", BatchNormModel(3, 10), Trainer, 5e-2, (train, val, test)),
            ("task3_best", BestModel(3, 10), AdamTrainer, 1e-3, (add_augmentation(train), val, test))]
    for name, model, trainer_class, lr, loaders in runs:
        trainer = trainer_class(batch_size, lr, early_stop_count, epochs, model, loaders)
        trainer.train()
        create_plots(trainer, name)
        report_final(trainer)


if __name__ == "__main__":
    main()
