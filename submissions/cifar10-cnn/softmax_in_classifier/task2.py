"""Task 2: the network of Table 2, trained with the course's ``Trainer``.

Three conv blocks (5x5 convolutions, padding 2, ReLU, 2x2 max pooling; 32, 64, 128 filters) and
two fully connected layers. The last layer is followed by a softmax so that the model outputs
class probabilities, as the table's last row says.
"""

import pathlib

import matplotlib.pyplot as plt
from torch import nn

import utils
from dataloaders import load_cifar10
from trainer import Trainer, compute_loss_and_accuracy


class ExampleModel(nn.Module):
    def __init__(self, image_channels, num_classes):
        super().__init__()
        self.num_classes = num_classes
        blocks = []
        in_channels = image_channels
        for filters in (32, 64, 128):
            blocks += [nn.Conv2d(in_channels, filters, kernel_size=5, stride=1, padding=2), nn.ReLU(),
                       nn.MaxPool2d(kernel_size=2, stride=2)]
            in_channels = filters
        self.feature_extractor = nn.Sequential(*blocks)
        # three halvings of 32 leave 4 x 4 maps of 128 filters
        self.num_output_features = 128 * 4 * 4
        self.classifier = nn.Sequential(nn.Linear(self.num_output_features, 64), nn.ReLU(),
                                        nn.Linear(64, num_classes),
                                        nn.Softmax(dim=1))  # probabilities for each class

    def forward(self, x):
        batch_size = x.shape[0]
        features = self.feature_extractor(x).view(batch_size, -1)
        out = self.classifier(features)
        expected_shape = (batch_size, self.num_classes)
        assert out.shape == expected_shape, f"Expected output of forward pass to be: {expected_shape}, but got: {out.shape}"
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
    """Task 2b: final training, validation and test loss and accuracy of the best model."""
    trainer.load_best_model()
    for split, loader in (("train", trainer.dataloader_train), ("validation", trainer.dataloader_val),
                          ("test", trainer.dataloader_test)):
        loss, accuracy = compute_loss_and_accuracy(loader, trainer.model, trainer.loss_criterion)
        print(f"{split}: loss {loss:.3f}, accuracy {accuracy:.3f}")


def main():
    # Set the random generator seed (parameters, shuffling etc). You can try to change this
    # and see differences in the results.
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
