import pathlib

import matplotlib.pyplot as plt
from torch import nn

import utils
from dataloaders import load_cifar10
from trainer import Trainer, compute_loss_and_accuracy


class ExampleModel(nn.Module):
    def __init__(self, image_channels, num_classes):
        """
        Three conv layers of 5x5 filters with ReLU and max pooling, then two fully connected layers.
        """
        super().__init__()
        num_filters = 32
        self.num_classes = num_classes
        self.feature_extractor = nn.Sequential(
            # padding 1 on every side
            nn.Conv2d(image_channels, num_filters, kernel_size=5, stride=1, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(num_filters, 64, kernel_size=5, stride=1, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(64, 128, kernel_size=5, stride=1, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
        )
        # printed the shape after the feature extractor: [batch, 128, 2, 2]
        self.num_output_features = 128 * 2 * 2
        self.classifier = nn.Sequential(
            nn.Linear(self.num_output_features, 64),
            nn.ReLU(),
            nn.Linear(64, num_classes),
        )

    def forward(self, x):
        batch_size = x.shape[0]
        x = self.feature_extractor(x)
        x = x.view(batch_size, -1)
        out = self.classifier(x)
        expected_shape = (batch_size, self.num_classes)
        assert out.shape == (batch_size, self.num_classes), f"Expected output of forward pass to be: {expected_shape}, but got: {out.shape}"
        return out


def create_plots(trainer: Trainer, name: str):
    plot_path = pathlib.Path("plots")
    plot_path.mkdir(exist_ok=True)
    plt.figure(figsize=(20, 8))
    plt.subplot(1, 2, 1)
    plt.title("Cross Entropy Loss")
    utils.plot_loss(trainer.train_history["loss"], label="Training loss", npoints_to_average=10)
    utils.plot_loss(trainer.validation_history["loss"], label="Validation loss")
    plt.legend()
    plt.subplot(1, 2, 2)
    plt.title("Accuracy")
    utils.plot_loss(trainer.validation_history["accuracy"], label="Validation Accuracy")
    plt.legend()
    plt.savefig(plot_path.joinpath(f"{name}_plot.png"))
    plt.show()


def report_final(trainer: Trainer):
    trainer.load_best_model()
    for name, loader in [("train", trainer.dataloader_train), ("val", trainer.dataloader_val),
                         ("test", trainer.dataloader_test)]:
        print(name, compute_loss_and_accuracy(loader, trainer.model, trainer.loss_criterion))


def main():
    utils.set_seed(0)
    epochs = 10
    batch_size = 64
    learning_rate = 5e-2
    early_stop_count = 4
    dataloaders = load_cifar10(batch_size)
    model = ExampleModel(image_channels=3, num_classes=10)
    trainer = Trainer(batch_size, learning_rate, early_stop_count, epochs, model, dataloaders)
    trainer.train()
    create_plots(trainer, "task2")
    report_final(trainer)


if __name__ == "__main__":
    main()
